//! The `herald` server: HTTP/WebSocket API, live sessions, store wiring and the operator CLI.
//!
//! Layout:
//! - [`channels`]: the `Channel` implementations and the guarded outbound HTTP client.
//! - [`cli`]: the clap commands (`serve`, `tenant`, `key`, `app`, `device`, `token`, `listen`).
//! - [`config`]: defaults → TOML → `HERALD_…` environment, validated once.
//! - [`server`]: opening the backend, binding, serving, graceful shutdown.
//! - [`bootstrap`]: creating tenants; the `default` tenant on first start.
//! - [`app_state`]: what every handler shares.
//! - [`api`]: one module per resource, errors as RFC 9457 problems, extractors.
//! - [`auth`]: server keys and client tokens.
//! - [`delivery`]: the delivery core (workers, retries, breakers, bulkheads) and the channel registry.
//! - [`live`]: the hub, sessions, presence and the live protocol's frames.
//! - [`notify`]: the notification engine task (outbox, timers, presence) and push composition.
//! - [`seal`]: AES-256-GCM sealing of secrets at rest.
//! - [`telemetry`]: logs and metrics.
//! - [`fsutil`]: owner-only, fsynced key files.

pub mod api;
pub mod app_state;
pub mod auth;
pub mod bootstrap;
pub mod channels;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod fsutil;
pub mod live;
pub mod notify;
pub mod seal;
pub mod server;
pub mod telemetry;
