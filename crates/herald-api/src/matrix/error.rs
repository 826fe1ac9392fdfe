//! Matrix-style errors (`{"errcode": "M_…", "error": "…"}`), as homeservers expect from a push
//! gateway instead of Herald's problem documents. Like every Herald error, the words never
//! echo what was sent (a pushkey is a credential; content is message text).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct MatrixError {
    #[serde(skip)]
    pub status: StatusCode,
    pub errcode: &'static str,
    pub error: String,
}

impl MatrixError {
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            errcode: "M_BAD_JSON",
            error: message.into(),
        }
    }

    pub fn not_json() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            errcode: "M_NOT_JSON",
            error: "the body is not JSON".into(),
        }
    }

    pub fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            errcode: "M_TOO_LARGE",
            error: format!("the body is over {limit} bytes"),
        }
    }

    pub fn unrecognized(status: StatusCode) -> Self {
        Self {
            status,
            errcode: "M_UNRECOGNIZED",
            error: "unrecognized request".into(),
        }
    }

    /// 502: a provider could not be reached, or refused for a reason that is not the pushkey's;
    /// the homeserver retries with backoff (Sygnal answers the same).
    pub fn upstream(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            errcode: "M_UNKNOWN",
            error: message.into(),
        }
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}
