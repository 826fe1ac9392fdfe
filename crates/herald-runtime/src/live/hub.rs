//! The hub routes committed events and unread changes to the live sessions of their
//! recipients, and keeps each user's presence. It tells the engine when a user comes back to
//! the foreground and when they go away — for a dropped session only once its reconnect grace
//! has ended without a return ([`Hub::end_graces`], driven by `live::graces`).
//!
//! One std mutex guards the routing table: critical sections are a map lookup and a few
//! `try_send`s, never an await, so a blocking mutex is cheaper than an async one. Each session
//! has a bounded queue; a session that falls that far behind is disconnected (its sender is
//! dropped) rather than allowed to grow without bound — the client resumes and loses nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use herald_engine::clock::Clock;
use herald_engine::ids::{ConversationId, TenantId, UserId};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};

use crate::live::presence::{Ending, Presence, PresenceState, UserPresence};
use crate::live::protocol::{self, SessionState};
use crate::live::routed::{Routed, Unread};
use crate::notify::EngineHandle;

/// A committed event, serialised once for every recipient.
#[derive(Debug)]
pub struct LiveEvent {
    pub conversation_id: ConversationId,
    pub position: u64,
    pub json: String,
}

#[derive(Debug, Clone)]
pub enum Outbound {
    Event(Arc<LiveEvent>),
    /// An `unread` frame, ready to send. Boxed so the enum stays two words: every session's
    /// queue allocates a block of slots up front, idle or not.
    Unread(Box<str>),
}

type UserKey = (TenantId, UserId);

/// Reconnect graces running: (end, drop, user), earliest end first.
type Graces = BinaryHeap<Reverse<(OffsetDateTime, OffsetDateTime, UserKey)>>;

#[derive(Default)]
struct UserEntry {
    senders: HashMap<u64, mpsc::Sender<Outbound>>,
    presence: UserPresence,
}

pub struct Hub {
    users: Mutex<HashMap<UserKey, UserEntry>>,
    next_session: AtomicU64,
    clock: Arc<dyn Clock>,
    reconnect_grace: time::Duration,
    queue: usize,
    shutdown: watch::Sender<bool>,
    /// Told when a user comes back to the foreground (to cancel pushes waiting for them) and
    /// when they go away (to fail open on what a gone session seemed to be looking at).
    engine: EngineHandle,
    /// An entry outlives a grace that a return ended; `end_graces` skips it.
    graces: Mutex<Graces>,
    grace_started: Notify,
}

/// A registered session: its id, its queue, and the server's shutdown signal.
pub struct Registration {
    pub session_id: u64,
    pub outbound: mpsc::Receiver<Outbound>,
    pub shutdown: watch::Receiver<bool>,
}

impl Hub {
    pub fn new(
        clock: Arc<dyn Clock>,
        reconnect_grace: time::Duration,
        queue: usize,
        engine: EngineHandle,
    ) -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            clock,
            reconnect_grace,
            queue,
            shutdown: watch::channel(false).0,
            engine,
            graces: Mutex::new(BinaryHeap::new()),
            grace_started: Notify::new(),
        }
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<UserKey, UserEntry>> {
        // A panic while holding this lock leaves only routing data behind; keep serving.
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, tenant: &TenantId, user: &UserId, state: SessionState) -> Registration {
        let session_id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        let now = self.clock.now();
        let mut users = self.users();
        let entry = users.entry((tenant.clone(), user.clone())).or_default();
        entry.senders.insert(session_id, tx);
        let before = entry.presence.view(now);
        entry.presence.connect(session_id, state, now);
        self.tell_engine(tenant, user, before, entry.presence.view(now));
        metrics::gauge!("herald_live_sessions").increment(1.0);
        Registration {
            session_id,
            outbound: rx,
            shutdown: self.shutdown.subscribe(),
        }
    }

    pub fn set_state(
        &self,
        tenant: &TenantId,
        user: &UserId,
        session_id: u64,
        state: SessionState,
    ) {
        let now = self.clock.now();
        if let Some(entry) = self.users().get_mut(&(tenant.clone(), user.clone())) {
            let before = entry.presence.view(now);
            entry.presence.set_state(session_id, state, now);
            self.tell_engine(tenant, user, before, entry.presence.view(now));
        }
    }

    pub fn unregister(&self, tenant: &TenantId, user: &UserId, session_id: u64, ending: Ending) {
        let now = self.clock.now();
        let key = (tenant.clone(), user.clone());
        if let Some(entry) = self.users().get_mut(&key) {
            entry.senders.remove(&session_id);
            let before = entry.presence.view(now);
            entry
                .presence
                .disconnect(session_id, ending, self.reconnect_grace, now);
            let after = entry.presence.view(now);
            if let Some(end) = after.grace_until
                && before.grace_until != after.grace_until
            {
                self.graces_lock().push(Reverse((end, now, key.clone())));
                self.grace_started.notify_one();
            }
            self.tell_engine(tenant, user, before, after);
            metrics::gauge!("herald_live_sessions").decrement(1.0);
        }
    }

    fn graces_lock(&self) -> std::sync::MutexGuard<'_, Graces> {
        self.graces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The time on the hub's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// When the earliest reconnect grace running ends.
    pub fn next_grace_end(&self) -> Option<OffsetDateTime> {
        self.graces_lock().peek().map(|Reverse((end, _, _))| *end)
    }

    /// Resolves when a reconnect grace has started since the last call.
    pub async fn grace_started(&self) {
        self.grace_started.notified().await;
    }

    /// Every reconnect grace that has run out: a user not back since is away since the drop,
    /// and the engine is told so.
    pub fn end_graces(&self) {
        let now = self.clock.now();
        let mut ended = Vec::new();
        {
            let mut graces = self.graces_lock();
            while let Some(Reverse((end, _, _))) = graces.peek()
                && *end <= now
            {
                let Reverse((_, dropped_at, key)) = graces.pop().expect("peeked");
                ended.push((dropped_at, key));
            }
        }
        let mut users = self.users();
        for (dropped_at, (tenant, user)) in ended {
            let Some(entry) = users.get_mut(&(tenant.clone(), user.clone())) else {
                continue;
            };
            // Away since this very drop: nobody came back, and nothing has told the engine
            // of this away period yet (a later one would have begun later).
            let view = entry.presence.view(now);
            if view.state == PresenceState::Away && view.since == Some(dropped_at) {
                self.engine.away(&tenant, &user, dropped_at);
            }
        }
    }

    fn tell_engine(&self, tenant: &TenantId, user: &UserId, before: Presence, after: Presence) {
        match (before.state, after.state) {
            (PresenceState::Away, PresenceState::Foreground) => {
                self.engine.foreground(tenant, user)
            }
            (PresenceState::Foreground, PresenceState::Away) => {
                let since = after.since.unwrap_or_else(|| self.clock.now());
                self.engine.away(tenant, user, since);
            }
            _ => {}
        }
    }

    pub fn presence(&self, tenant: &TenantId, user: &UserId) -> Presence {
        let now = self.clock.now();
        match self.users().get_mut(&(tenant.clone(), user.clone())) {
            Some(entry) => entry.presence.view(now),
            None => UserPresence::default().view(now),
        }
    }

    /// Routes what appends did — on this node or, in a cluster, on another — to the sessions
    /// of everyone concerned.
    pub fn publish(&self, tenant: &TenantId, routed: &[Routed]) {
        let mut users = self.users();
        for routed in routed {
            let event = Arc::new(LiveEvent {
                conversation_id: routed.conversation_id.clone(),
                position: routed.position,
                json: routed.json.clone(),
            });
            for user in &routed.recipients {
                deliver(&mut users, tenant, user, Outbound::Event(event.clone()));
            }
            for Unread {
                user_id,
                conversation_id,
                count,
                total,
            } in &routed.unread
            {
                let frame = protocol::unread(conversation_id, *count, *total);
                let frame = Outbound::Unread(frame.into_boxed_str());
                deliver(&mut users, tenant, user_id, frame);
            }
        }
    }

    /// Forgets users with no sessions who have been away longer than `keep`.
    pub fn sweep(&self, keep: time::Duration) {
        let now = self.clock.now();
        self.users()
            .retain(|_, entry| !entry.presence.forgettable(now, keep));
    }

    /// Tells every session the server is going away.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn session_count(&self) -> usize {
        self.users().values().map(|e| e.senders.len()).sum()
    }
}

fn deliver(
    users: &mut HashMap<UserKey, UserEntry>,
    tenant: &TenantId,
    user: &UserId,
    frame: Outbound,
) {
    let Some(entry) = users.get_mut(&(tenant.clone(), user.clone())) else {
        return;
    };
    entry
        .senders
        .retain(|session_id, tx| match tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    session.id = session_id,
                    "live session fell behind; disconnecting it so it resumes"
                );
                metrics::counter!("herald_live_sessions_overflowed_total").increment(1);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
}
