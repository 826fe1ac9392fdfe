//! Herald's front doors: each turns outside requests into store, tenancy and runtime calls and
//! decides nothing itself: the HTTP API, the live WebSocket protocol, the CometD front door
//! and the Matrix push gateway.
//!
//! Layout:
//! - [`router`]: every route, the OpenAPI document, body limits, tracing and panic layers.
//! - one module per resource, verb-named handlers: [`events`], [`conversations`], [`apps`],
//!   [`users`], [`me`] (the client API and `GET /v1/live`), [`notifications`], [`keys`],
//!   [`admin`], [`ops`] (`/healthz`, `/readyz`, `/metrics`).
//! - [`live`]: the WebSocket session task.
//! - [`matrix`]: the Matrix push gateway (`POST /_matrix/push/v1/notify`).
//! - [`cometd`]: Bayeux at `/cometd` (long-polling and WebSocket), the GMS chat role.
//! - [`error`]: `ApiError`, the only error handlers return, rendered as RFC 9457 problems.
//! - [`extract`]: JSON, path, query and auth extractors with problems as rejections.
//! - [`state`]: what every handler shares; [`config`]: the `limits` and `auth` sections.

pub mod admin;
pub mod apps;
pub mod cometd;
pub mod config;
pub mod conversations;
pub mod error;
pub mod events;
pub mod extract;
pub mod ids;
pub mod keys;
pub mod live;
pub mod matrix;
pub mod me;
pub mod notifications;
pub mod ops;
pub mod router;
pub mod state;
pub mod users;

pub use config::{AuthConfig, LimitsConfig};
pub use router::router;
pub use state::{ApiConfig, AppState, Shared};
