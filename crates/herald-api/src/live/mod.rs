//! The live WebSocket front door (SPEC §2.4): one task per connection.

pub mod session;
