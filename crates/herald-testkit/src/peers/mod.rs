//! Independent implementations of the protocols Herald speaks, run as real servers and clients in
//! tests.

pub mod cometd;
pub mod smtp;
pub mod webpush;

pub use cometd::CometdClient;
pub use smtp::SmtpPeer;
pub use webpush::PushService;
