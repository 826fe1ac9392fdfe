//! Live sessions (SPEC §2.4): the hub that routes committed events to connected users, the
//! per-connection session task, the per-user presence view, and the wire frames.

pub mod hub;
pub mod presence;
pub mod protocol;
