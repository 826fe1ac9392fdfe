//! Independent implementations of the protocols Herald speaks, run as real servers in tests.

pub mod smtp;
pub mod webpush;

pub use smtp::SmtpPeer;
pub use webpush::PushService;
