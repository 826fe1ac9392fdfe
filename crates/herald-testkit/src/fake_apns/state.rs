//! What the fake shares between its handle, its connections and its requests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::*;

#[derive(Default)]
pub(super) struct State {
    pub(super) scripts: HashMap<String, VecDeque<Reply>>,
    pub(super) default: Option<Reply>,
    pub(super) requests: Vec<ApnsRequest>,
    pub(super) arrivals: Vec<Arrival>,
    pub(super) rejections: Vec<Rejection>,
    pub(super) latency: Duration,
}

/// A provider token that verified.
#[derive(Clone)]
pub(super) struct Verified {
    pub(super) kid: String,
    pub(super) iat: i64,
}

pub(super) struct Shared {
    pub(super) team_id: String,
    pub(super) key_id: String,
    pub(super) decoding_key: DecodingKey,
    pub(super) topic: Option<String>,
    pub(super) max_concurrent_streams: u32,
    pub(super) record: bool,
    pub(super) state: Mutex<State>,
    /// Signature checks are cached per token, as a real server would.
    pub(super) verified: Mutex<HashMap<String, Result<Verified, &'static str>>>,
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    pub(super) connections: AtomicU64,
    /// HTTP/2 streams clients opened (HEADERS frames received).
    pub(super) streams: AtomicU64,
    /// Open connections, to send them GOAWAY.
    pub(super) live: Mutex<HashMap<u64, Arc<Connection>>>,
    pub(super) recorded: watch::Sender<usize>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the fake knows about one connection.
pub(super) struct Connection {
    pub(super) id: u64,
    pub(super) goaway: Notify,
    /// The key of the first token on this connection, and the newest token seen.
    pub(super) auth: Mutex<Option<(String, String, i64)>>,
}

pub(super) struct Running {
    pub(super) stop: watch::Sender<bool>,
    pub(super) accept: JoinHandle<()>,
}
