//! What the fake shares between its handle and its endpoints.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use herald_engine::clock::Clock;
use time::OffsetDateTime;

use super::*;

pub(super) struct Issued {
    pub(super) expires_at: OffsetDateTime,
    pub(super) revoked: bool,
}

pub(super) struct Config {
    pub(super) project_id: String,
    pub(super) client_email: String,
    pub(super) key_id: Option<String>,
    pub(super) public_key_pem: String,
    pub(super) expires_in: u64,
    pub(super) clock: Arc<dyn Clock>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) issued: HashMap<String, Issued>,
    pub(super) scripts: HashMap<String, VecDeque<Reply>>,
    pub(super) default: Option<Reply>,
    pub(super) messages: Vec<FcmMessage>,
    pub(super) rejections: Vec<Rejection>,
    pub(super) assertions: Vec<String>,
    pub(super) token_latency: Duration,
}

pub(super) struct Shared {
    pub(super) config: Config,
    pub(super) token_uri: String,
    pub(super) inner: Mutex<Inner>,
    pub(super) fetches: AtomicU64,
    pub(super) next_id: AtomicU64,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
