//! The Matrix push gateway (SPEC §2.6; Push Gateway API v1): `POST /_matrix/push/v1/notify`,
//! a drop-in for Sygnal. Stateless: the devices and counts come in the request, nothing is
//! registered or stored; Herald answers once every device's provider answered, so
//! `{"rejected": [...]}` lists exactly the pushkeys a provider called dead.
//!
//! - [`request`]: reading the body (Matrix errors for bad input);
//! - [`compose`]: the payload each provider gets, in the shape Matrix apps read (Sygnal's);
//! - [`gateway`]: resolving app ids, sending through the delivery core within the request's
//!   budget, de-duplicating a homeserver's retries;
//! - [`error`]: `{"errcode", "error"}` answers.
//!
//! Answers: 200 with the rejected pushkeys when every device was sent, skipped or rejected;
//! 502 when a device's provider could not take the push within the budget for a reason that
//! is not the pushkey's (the homeserver retries, and devices already sent are not sent twice);
//! 400 `M_NOT_JSON` / `M_BAD_JSON` and nothing sent for bad input; 413 `M_TOO_LARGE`; any other
//! path under `/_matrix` is 404 `M_UNRECOGNIZED`, another method 405 `M_UNRECOGNIZED`.
//!
//! Homeservers do not authenticate to a push gateway, so the apps that serve it are those of
//! one tenant chosen by the operator (`matrix.tenant`), and a pushkey only ever reaches the
//! provider of the app that lists its app id.

mod compose;
pub mod error;
mod gateway;
mod request;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use herald_engine::ids::TenantId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use self::error::MatrixError;
use self::gateway::{DeviceResult, Gateway, Recent};

/// `[matrix]` of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatrixConfig {
    /// The tenant whose apps serve the gateway (their `matrix.app_ids`).
    pub tenant: String,
    /// How long one `/notify` may take, waiting for providers and retrying them (ms).
    pub budget_ms: u64,
    /// Most devices in one `/notify`.
    pub max_devices: usize,
    /// Largest `/notify` body (bytes); Sygnal's is 512 KiB.
    pub max_body_bytes: usize,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        Self {
            tenant: "default".into(),
            budget_ms: 10_000,
            max_devices: 100,
            max_body_bytes: 512 * 1024,
        }
    }
}

/// `200` of `/notify`.
#[derive(Serialize, ToSchema)]
pub struct NotifyResponse {
    /// Pushkeys the homeserver should remove its pushers for.
    pub rejected: Vec<String>,
}

/// The shared state of the gateway's routes.
pub type GatewayState = Arc<Gateway>;

pub fn gateway(runtime: herald_runtime::Runtime, config: &MatrixConfig) -> GatewayState {
    Arc::new(Gateway {
        runtime,
        tenant: TenantId::parse(config.tenant.clone())
            .expect("matrix.tenant is checked when the configuration loads"),
        budget: std::time::Duration::from_millis(config.budget_ms),
        recent: Recent::default(),
    })
}

/// Hands a Matrix notification to the providers of its devices (Push Gateway API v1).
#[utoipa::path(
    post, path = "/_matrix/push/v1/notify", tag = "matrix",
    request_body(content = Object, description = "`{\"notification\": {event_id, room_id, type, sender, sender_display_name, room_name, room_alias, user_is_target, prio, content, counts, devices: [{app_id, pushkey, pushkey_ts, data, tweaks}]}}` (Matrix Push Gateway API v1)"),
    responses(
        (status = 200, description = "Every device was sent, skipped or rejected", body = NotifyResponse),
        (status = 400, description = "`M_NOT_JSON` or `M_BAD_JSON`; nothing was sent", body = MatrixError),
        (status = 413, description = "`M_TOO_LARGE`; nothing was sent", body = MatrixError),
        (status = 502, description = "A provider could not take a push in time; retry", body = MatrixError),
    )
)]
pub async fn notify(
    State(gateway): State<GatewayState>,
    State(limits): State<Limits>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return MatrixError::too_large(limits.max_body_bytes).into_response();
        }
        Err(_) => return MatrixError::bad_json("the body could not be read").into_response(),
    };
    let n = match request::parse(&body, limits.max_devices) {
        Ok(n) => n,
        Err(e) => {
            metrics::counter!("herald_matrix_requests_total", "result" => "bad_request")
                .increment(1);
            return e.into_response();
        }
    };
    let deadline = started + gateway.budget;
    let results = join_all(n.devices.iter().map(|d| gateway.dispatch(&n, d, deadline))).await;
    let mut rejected = vec![];
    let mut failed = None;
    for (device, result) in n.devices.iter().zip(&results) {
        metrics::counter!("herald_matrix_pushes_total", "result" => result.label()).increment(1);
        match result {
            DeviceResult::Rejected(why) => {
                tracing::info!(matrix.app_id = %device.app_id, event_id = n.event_id.as_deref().unwrap_or(""), why, "Matrix pushkey rejected");
                rejected.push(device.pushkey.clone());
            }
            DeviceResult::Failed(why) => {
                tracing::warn!(matrix.app_id = %device.app_id, event_id = n.event_id.as_deref().unwrap_or(""), why, "Matrix push not sent");
                failed.get_or_insert_with(|| why.clone());
            }
            DeviceResult::Sent | DeviceResult::Duplicate | DeviceResult::Skipped => {
                tracing::debug!(matrix.app_id = %device.app_id, event_id = n.event_id.as_deref().unwrap_or(""), result = result.label(), "Matrix push");
            }
        }
    }
    let outcome = if failed.is_some() { "failed" } else { "ok" };
    metrics::counter!("herald_matrix_requests_total", "result" => outcome).increment(1);
    metrics::histogram!("herald_matrix_notify_seconds", "result" => outcome)
        .record(started.elapsed().as_secs_f64());
    match failed {
        Some(why) => {
            MatrixError::upstream(format!("a push could not be sent: {why}")).into_response()
        }
        None => Json(NotifyResponse { rejected }).into_response(),
    }
}

/// The request limits the handler reads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_devices: usize,
    pub max_body_bytes: usize,
}

/// Both parts of the routes' state.
#[derive(Clone)]
pub struct RouteState {
    pub gateway: GatewayState,
    pub limits: Limits,
}

impl axum::extract::FromRef<RouteState> for GatewayState {
    fn from_ref(state: &RouteState) -> Self {
        state.gateway.clone()
    }
}

impl axum::extract::FromRef<RouteState> for Limits {
    fn from_ref(state: &RouteState) -> Self {
        state.limits
    }
}

/// Anything else under `/_matrix`.
pub async fn unrecognized() -> MatrixError {
    MatrixError::unrecognized(StatusCode::NOT_FOUND)
}

pub async fn method_not_allowed() -> MatrixError {
    MatrixError::unrecognized(StatusCode::METHOD_NOT_ALLOWED)
}
