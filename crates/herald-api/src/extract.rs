//! Extractors that turn every rejection into a problem document: JSON bodies with field paths,
//! path and query parameters, and the three kinds of caller (tenant key, client token,
//! operator).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use herald_engine::ids::{TenantId, UserId};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;
use herald_tenancy::auth::{keys, tokens};

/// A JSON body. Syntax errors are 400; well-formed JSON of the wrong shape is 422 with the
/// path of the offending field; an oversized body is 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(
                    "the request body is larger than the server accepts".into(),
                )
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Two steps, so each failure gets the right status: the bytes must be one JSON document
/// (else 400, including trailing garbage and nesting past serde_json's depth limit), and that
/// document must have the expected shape (else 422 with the field's path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not one valid JSON document (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    herald_engine::validate::from_value(value).map_err(ApiError::Validation)
}

/// A path parameter tuple with rejections as problems.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::BadRequest(format!("invalid path parameter: {}", e.body_text())))
    }
}

/// Query parameters with rejections as problems.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A caller holding a tenant server key.
pub struct TenantCaller {
    pub tenant: TenantId,
}

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = bearer(parts).ok_or(ApiError::Unauthorized(
            "send a tenant server key as `Authorization: Bearer …`",
        ))?;
        match keys::authenticate(state.store.as_ref(), secret).await? {
            Some(key) => Ok(TenantCaller {
                tenant: key.tenant_id,
            }),
            None => Err(ApiError::Unauthorized(
                "the server key is unknown or revoked",
            )),
        }
    }
}

/// A caller holding a client token: acts as one user only.
pub struct ClientCaller {
    pub tenant: TenantId,
    pub user: UserId,
}

impl FromRequestParts<AppState> for ClientCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = match bearer(parts) {
            Some(t) => t.to_string(),
            // Browsers cannot set headers on a WebSocket upgrade, so `/v1/live` also takes
            // `?token=`.
            None if parts.uri.path() == "/v1/live" => {
                token_from_query(parts.uri.query()).ok_or(ApiError::Unauthorized(
                    "send a client token as `Authorization: Bearer …` or `?token=`",
                ))?
            }
            None => {
                return Err(ApiError::Unauthorized(
                    "send a client token as `Authorization: Bearer …`",
                ));
            }
        };
        let identity = tokens::verify(
            state.store.as_ref(),
            &state.sealer,
            &token,
            state.config.auth.token_leeway_s,
        )
        .await
        .map_err(|e| match e {
            tokens::TokenError::Store(s) => ApiError::from(s),
            tokens::TokenError::Invalid => {
                ApiError::Unauthorized("the client token is invalid or expired")
            }
        })?;
        Ok(ClientCaller {
            tenant: identity.tenant,
            user: identity.user,
        })
    }
}

fn token_from_query(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The operator (admin API).
pub struct OperatorCaller;

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.operator_key_hash.ok_or(ApiError::NotFound(
            "admin API (no operator key is configured)",
        ))?;
        let given = bearer(parts).ok_or(ApiError::Unauthorized(
            "send the operator key as `Authorization: Bearer …`",
        ))?;
        // Comparing hashes keeps the comparison time independent of the key's contents.
        if keys::hash(given) == expected {
            Ok(OperatorCaller)
        } else {
            Err(ApiError::Unauthorized("wrong operator key"))
        }
    }
}

/// A JSON body that may be absent: an empty body means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let has_body = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            != Some("0")
            && (req.headers().contains_key(header::CONTENT_LENGTH)
                || req.headers().contains_key(header::TRANSFER_ENCODING));
        if !has_body {
            return Ok(OptionalJson(T::default()));
        }
        ApiJson::<T>::from_request(req, state)
            .await
            .map(|ApiJson(v)| OptionalJson(v))
    }
}
