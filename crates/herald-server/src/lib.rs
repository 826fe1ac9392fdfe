//! The `herald` binary's library: it wires the store, the channels, the runtime and the front
//! doors together, and holds what only the binary needs. Nothing below it depends on it.
//!
//! Layout:
//! - [`cli`]: the clap commands (`serve`, `tenant`, `key`, `app`, `device`, `token`, `push`,
//!   `listen`).
//! - [`cluster`]: cluster mode's settings and what a node opens: PostgreSQL, the engine
//!   lease, the Redis peers.
//! - [`config`]: defaults → TOML → `HERALD_…` environment, validated once; each section's type
//!   belongs to the crate that reads it.
//! - [`server`]: opening the backend, wiring the runtime, binding, serving, graceful shutdown.
//! - [`telemetry`]: logs and metrics.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod server;
pub mod telemetry;

pub use herald_api::AppState;
