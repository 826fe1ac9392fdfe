//! Live sessions (SPEC §2.4): the hub that routes committed events to connected users, the
//! per-user presence view, the transport-neutral resume cursor and the wire frames.
//!
//! - [`hub`]: routing of committed events and unread changes to each recipient's sessions.
//! - [`cursor`]: what a session sends, in order, with no gap and no duplicate (resume,
//!   catch-up pages, `caught_up`, live events held until the client's first frame); the
//!   WebSocket session (`herald-api`) and the CometD session drive one through a `Sink`.
//! - [`presence`]: the per-user foreground/away view with reconnect grace.
//! - [`graces`]: the task that ends reconnect graces on time, so the engine hears of them.
//! - [`protocol`]: the frames of the WebSocket protocol.

pub mod cursor;
pub mod graces;
pub mod hub;
pub mod presence;
pub mod protocol;
pub mod routed;
