//! Test kit for Herald: a real server on a real socket ([`TestHub`]), an HTTP helper that
//! returns status and JSON, and a live-session client ([`LiveClient`]).
//! [`recycler::Recycler`] stands in front of a fake APNs or FCM and recycles HTTP/2 connections.
//!
//! ```ignore
//! let hub = TestHub::builder().configure(|c| c.live.reconnect_grace_ms = 0).start().await;
//! let (status, body) = hub.post("/v1/events", &hub.key, json!({...})).await;
//! let mut alice = hub.live("alice").await;
//! ```

pub mod capture;
pub mod fake_apns;
pub mod fake_fcm;
mod hub;
pub mod keys;
mod live;
pub mod peers;
pub mod python;
pub mod recording;
pub mod recycler;

pub use hub::{TestHub, TestHubBuilder};
pub use live::LiveClient;
pub use recording::RecordingChannel;

/// A generous bound for "this should happen": it exists so a broken build fails instead of
/// hanging, not to assert speed.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
