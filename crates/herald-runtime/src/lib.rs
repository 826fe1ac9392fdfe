//! Herald's running parts: what turns committed events into live frames and pushes. Front
//! doors (`herald-api`) hand work in; the binary (`herald-server`) wires it at start.
//!
//! Layout:
//! - [`runtime`]: [`Runtime`], the parts one node shares (ports, hub, engine handle, delivery
//!   core, app cache), and [`Settings`].
//! - [`notify`]: the notification engine task — loads what a step needs, calls the engine's
//!   pure decisions, commits the step (outbox, timers, presence).
//! - [`delivery`]: the delivery core — leased claims, retries, breakers, bulkheads, and the
//!   guarded synchronous send.
//! - [`live`]: the hub that routes committed events to live sessions, the per-user presence
//!   view, the transport-neutral resume cursor and the live protocol's frames.
//! - [`cluster`]: cluster mode's seams — the other nodes ([`cluster::Peers`]) and whether
//!   this node decides ([`cluster::Leadership`], the engine lease).
//! - [`config`]: the `live`, `delivery` and `engine` sections of the configuration.

pub mod cluster;
pub mod config;
pub mod delivery;
pub mod live;
pub mod notify;
pub mod runtime;

pub use runtime::{Parts, Runtime, Settings};
