//! One CometD client (a handshaken `clientId`): its hub session, its subscriptions, and the
//! messages waiting for its next `/meta/connect`.
//!
//! The hub's queue for the session is the buffer between connects: nothing runs per client
//! while it is idle. A held connect takes what the hub queued ([`Client::wait`], which only
//! moves items and so may be cancelled at any await), then [`Client::collect`] passes them
//! through the session's [`Cursor`] — the same gap-free, duplicate-free ordering as a
//! WebSocket live session — into deliveries for the subscribed conversations.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_runtime::live::cursor::{Cursor, Gone, Item, Reader, Sink};
use herald_runtime::live::hub::Outbound;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

use super::bayeux;

/// The channel of a conversation's events.
pub fn conversation_channel(conversation: &ConversationId) -> String {
    format!("/conversations/{conversation}")
}

/// Unread counts, for clients subscribed to it.
pub const UNREAD_CHANNEL: &str = "/unread";

pub struct Client {
    pub id: String,
    pub tenant: TenantId,
    pub user: UserId,
    pub session_id: u64,
    rx: tokio::sync::Mutex<mpsc::Receiver<Outbound>>,
    /// Items taken from the hub's queue, not yet through the cursor.
    taken: Mutex<VecDeque<Outbound>>,
    pub state: tokio::sync::Mutex<State>,
    /// Messages are ready (a catch-up, a publish's echo): wakes a held connect.
    wake: Notify,
    /// A newer connect replaces a held one.
    superseded: Notify,
    shutdown: watch::Receiver<bool>,
    /// When the client last finished a connect (or handshook): `maxInterval` counts from here.
    last_seen: Mutex<Instant>,
    connecting: AtomicBool,
}

pub struct State {
    pub cursor: Cursor,
    pub subscribed: HashSet<ConversationId>,
    pub unread: bool,
    /// Deliveries waiting for the next connect.
    pub ready: Vec<Value>,
    /// The `/_genesys` catch-up, until the client subscribes to that channel.
    pub genesys: Vec<Value>,
}

/// Why a held connect returns.
#[derive(Debug, PartialEq, Eq)]
pub enum Woke {
    Ready,
    Timeout,
    Superseded,
    /// The hub dropped the session (it fell too far behind) or the server is stopping: the
    /// client must handshake again.
    Gone,
}

impl Client {
    pub fn new(
        id: String,
        tenant: TenantId,
        user: UserId,
        registration: herald_runtime::live::hub::Registration,
    ) -> Client {
        let mut cursor = Cursor::new();
        // Nothing is held: the hub's queue holds live items until the first connect.
        cursor.release();
        Client {
            id,
            tenant,
            user,
            session_id: registration.session_id,
            rx: tokio::sync::Mutex::new(registration.outbound),
            taken: Mutex::default(),
            state: tokio::sync::Mutex::new(State {
                cursor,
                subscribed: HashSet::new(),
                unread: false,
                ready: vec![],
                genesys: vec![],
            }),
            wake: Notify::new(),
            superseded: Notify::new(),
            shutdown: registration.shutdown,
            last_seen: Mutex::new(Instant::now()),
            connecting: AtomicBool::new(false),
        }
    }

    pub fn touch(&self) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Silent for longer than `max_interval` with no connect held: the client is gone.
    pub fn expired(&self, max_interval: std::time::Duration) -> bool {
        !self.connecting.load(Ordering::Acquire)
            && self
                .last_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .elapsed()
                > max_interval
    }

    pub fn last_seen(&self) -> Instant {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Marks a connect held (and supersedes an older one); [`Client::end_connect`] ends it.
    pub fn begin_connect(&self) {
        self.superseded.notify_waiters();
        self.connecting.store(true, Ordering::Release);
    }

    /// [`Client::begin_connect`], ended when the guard drops — also when the request is
    /// cancelled mid-hold (the HTTP client went away), so `maxInterval` still counts.
    pub fn connecting(&self) -> Connecting<'_> {
        self.begin_connect();
        Connecting(self)
    }

    /// The client is dropped: a held connect returns now.
    pub fn close(&self) {
        self.superseded.notify_waiters();
    }

    pub fn end_connect(&self) {
        self.connecting.store(false, Ordering::Release);
        self.touch();
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, VecDeque<Outbound>> {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until something is ready for the client or `deadline` passes.
    pub async fn wait(&self, deadline: tokio::time::Instant) -> Woke {
        let superseded = self.superseded.notified();
        tokio::pin!(superseded);
        superseded.as_mut().enable();
        let mut shutdown = self.shutdown.clone();
        let mut rx = tokio::select! {
            rx = self.rx.lock() => rx,
            () = &mut superseded => return Woke::Superseded,
        };
        if !self.taken().is_empty() {
            return Woke::Ready;
        }
        tokio::select! {
            item = rx.recv() => match item {
                Some(item) => {
                    let mut taken = self.taken();
                    taken.push_back(item);
                    while let Ok(item) = rx.try_recv() {
                        taken.push_back(item);
                    }
                    Woke::Ready
                }
                None => Woke::Gone,
            },
            () = self.wake.notified() => Woke::Ready,
            () = tokio::time::sleep_until(deadline) => Woke::Timeout,
            () = &mut superseded => Woke::Superseded,
            _ = shutdown.changed() => Woke::Gone,
        }
    }

    /// Everything ready for the client: what [`Client::wait`] took (and whatever else the hub
    /// queued meanwhile) through the cursor, for its subscriptions.
    pub async fn collect(
        &self,
        store: &dyn herald_engine::store::Store,
        page: usize,
    ) -> Vec<Value> {
        if let Ok(mut rx) = self.rx.try_lock() {
            let mut taken = self.taken();
            while let Ok(item) = rx.try_recv() {
                taken.push_back(item);
            }
        }
        let mut state = self.state.lock().await;
        let reader = Reader {
            store,
            tenant: &self.tenant,
            page,
        };
        // Peek, then pop once handled: a collect cancelled mid-way loses nothing.
        loop {
            let Some(item) = self.taken().front().cloned() else {
                break;
            };
            let State {
                cursor,
                subscribed,
                unread,
                ready,
                ..
            } = &mut *state;
            let mut sink = Deliveries {
                subscribed,
                unread: *unread,
                out: ready,
            };
            if let Err(stopped) = cursor.live(reader, &item, &mut sink).await {
                // The store could not fill a gap: keep the item for the next connect.
                tracing::warn!(?stopped, "a CometD client's events could not be read");
                break;
            }
            self.taken().pop_front();
        }
        std::mem::take(&mut state.ready)
    }
}

/// A held connect; see [`Client::connecting`].
pub struct Connecting<'a>(&'a Client);

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        self.0.end_connect();
    }
}

/// The cursor's items as Bayeux deliveries, for the client's subscriptions only.
pub struct Deliveries<'a> {
    pub subscribed: &'a HashSet<ConversationId>,
    pub unread: bool,
    pub out: &'a mut Vec<Value>,
}

impl Sink for Deliveries<'_> {
    async fn emit(&mut self, item: Item<'_>) -> Result<(), Gone> {
        match item {
            Item::Event {
                conversation,
                position,
                json,
            } if self.subscribed.contains(conversation) => {
                let event: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                self.out.push(bayeux::delivery(
                    &conversation_channel(conversation),
                    json!({"type": "event", "conversation_id": conversation, "position": position, "event": event}),
                ));
            }
            Item::Unread(frame) if self.unread => {
                let frame: Value = serde_json::from_str(frame).unwrap_or(Value::Null);
                self.out.push(bayeux::delivery(UNREAD_CHANNEL, frame));
            }
            _ => {}
        }
        Ok(())
    }
}
