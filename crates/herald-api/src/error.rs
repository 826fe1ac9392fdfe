//! The one error type handlers return, rendered as RFC 9457 `application/problem+json`.
//!
//! Policy: every client mistake is a 4xx with a stable `code` (also in `type` as
//! `urn:herald:problem:<code>`), a human `detail` and, for validation, the offending field path
//! in `errors[].path`. Details never echo submitted values (they may be secrets or message
//! text). Internal failures are logged once here with an id and answered as an opaque 500
//! carrying only that id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_engine::store::StoreError;
use herald_engine::validate::Invalid;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the body is not the JSON it should be.
    BadRequest(String),
    /// 401: no credentials, or wrong ones.
    Unauthorized(&'static str),
    /// 403: valid credentials that may not do this.
    Forbidden(&'static str),
    /// 404: absent, or belongs to someone else (never distinguished).
    NotFound(&'static str),
    /// 409: the event id was used before with another body.
    EventConflict { path: String },
    /// 409: something with this id exists already.
    AlreadyExists(&'static str),
    /// 409: the resource is not in a state that allows this.
    Conflict(&'static str),
    /// 405.
    MethodNotAllowed,
    /// 413.
    PayloadTooLarge(String),
    /// 415.
    UnsupportedMediaType,
    /// 422: well-formed but invalid.
    Validation(Invalid),
    /// 503: a dependency is down; safe to retry.
    Unavailable,
    /// 500: our fault.
    Internal(String),
}

#[derive(Serialize, ToSchema)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    /// A stable machine-readable code.
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "Malformed request",
            ),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::EventConflict { .. } => {
                (StatusCode::CONFLICT, "event_conflict", "Event id reused")
            }
            ApiError::AlreadyExists(_) => {
                (StatusCode::CONFLICT, "already_exists", "Already exists")
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let mut errors = vec![];
        let detail = match self {
            ApiError::BadRequest(d) | ApiError::PayloadTooLarge(d) => d.clone(),
            ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::AlreadyExists(d)
            | ApiError::Conflict(d) => d.to_string(),
            ApiError::NotFound(what) => format!("{what} not found"),
            ApiError::EventConflict { path } => {
                errors.push(FieldError {
                    path: path.clone(),
                    message: "event_id was used before with a different body".into(),
                });
                "an event_id was reused with a different body; nothing was stored".into()
            }
            ApiError::MethodNotAllowed => "this route does not take that method".into(),
            ApiError::UnsupportedMediaType => "send Content-Type: application/json".into(),
            ApiError::Validation(invalid) => {
                errors.push(FieldError {
                    path: invalid.path.clone(),
                    message: invalid.message.clone(),
                });
                if invalid.path.is_empty() {
                    invalid.message.clone()
                } else {
                    format!("{}: {}", invalid.path, invalid.message)
                }
            }
            ApiError::Unavailable => "storage is unavailable; retry later".into(),
            ApiError::Internal(id) => format!("internal error (reference {id})"),
        };
        Problem {
            type_uri: format!("urn:herald:problem:{code}"),
            title,
            status: status.as_u16(),
            code,
            detail,
            errors,
        }
    }

    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        let id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(error.id = %id, error.context = context, error.message = %error, "internal error");
        ApiError::Internal(id)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::Validation(invalid)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists => {
                ApiError::AlreadyExists("a resource with this id already exists")
            }
            StoreError::EventConflict { index } => ApiError::EventConflict {
                path: format!("events[{index}].event_id"),
            },
            StoreError::EventInvalid { index, invalid } => {
                ApiError::Validation(invalid.within(&format!("events[{index}]")))
            }
            StoreError::Unavailable(message) => {
                tracing::error!(error.message = %message, "store unavailable");
                ApiError::Unavailable
            }
            // Only engine commits carry a fence; a request never should.
            StoreError::Fenced => ApiError::Unavailable,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<herald_tenancy::apps::AppError> for ApiError {
    fn from(error: herald_tenancy::apps::AppError) -> Self {
        use herald_tenancy::apps::AppError;
        match error {
            AppError::Invalid(invalid) => ApiError::Validation(invalid),
            AppError::Store(e) => e.into(),
            AppError::Sealed(why) => ApiError::internal("open app secrets", why),
        }
    }
}
