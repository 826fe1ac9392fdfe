//! One engine step: what it read, what it decided, and the commit that records it.

use std::collections::HashMap;

use futures_util::future::{try_join, try_join_all};
use herald_engine::event::StoredEvent;
use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_engine::notify::Looking;
use herald_engine::notify::calls::CallState;
use herald_engine::notify::record::NotificationRecord;
use herald_engine::notify::store::{
    EventInputs, MAX_TRANSCRIPT_LINES, NotifyCommit, OutboxItem, ThreadKey, UserContext,
};
use herald_engine::participant::Membership;
use herald_engine::store::{Conversation, StoreError};
use time::OffsetDateTime;

use crate::Runtime;
use crate::live::presence::PresenceState;

pub struct Step<'a> {
    pub state: &'a Runtime,
    pub now: OffsetDateTime,
    pub commit: NotifyCommit,
    /// Read for this step's outbox events in one round trip ([`Step::prefetch`]): participants'
    /// contexts by (tenant, user, conversation), and recent messages by (tenant,
    /// conversation, position).
    contexts: HashMap<(TenantId, UserId, ConversationId), UserContext>,
    recent: HashMap<(TenantId, ConversationId, u64), Vec<StoredEvent>>,
    /// Read for this step's due threads ([`Step::prefetch_threads`]): memberships by (tenant,
    /// conversation, user), and records by (tenant, id).
    memberships: HashMap<(TenantId, ConversationId, UserId), Option<Membership>>,
    records: HashMap<(TenantId, String), Option<NotificationRecord>>,
    /// Timers this step fires, by kind, with their due times ([`Step::fired`]).
    fired: Vec<(&'static str, OffsetDateTime)>,
}

/// An outbox event with its conversation, as [`Step::prefetch`] read them.
pub struct Prefetched {
    pub event: StoredEvent,
    pub conversation: Conversation,
}

impl<'a> Step<'a> {
    pub fn new(state: &'a Runtime) -> Self {
        Step {
            state,
            now: state.clock.now(),
            commit: NotifyCommit::default(),
            contexts: HashMap::new(),
            recent: HashMap::new(),
            memberships: HashMap::new(),
            records: HashMap::new(),
            fired: Vec::new(),
        }
    }

    /// Reads what evaluating `items` needs in one round trip: the engine evaluates events one
    /// after another, and a read per participant per event made the store's latency its
    /// throughput. Answers each item's event and conversation (`None` if either is gone);
    /// contexts and recent messages are kept for [`Step::user_context`] and
    /// [`Step::recent_messages`].
    pub async fn prefetch(
        &mut self,
        items: &[OutboxItem],
    ) -> Result<Vec<Option<Prefetched>>, StoreError> {
        let inputs = self.state.notify.event_inputs(items).await?;
        Ok(items
            .iter()
            .zip(inputs)
            .map(|(item, inputs)| {
                let EventInputs {
                    event,
                    conversation,
                    contexts,
                    recent,
                } = inputs;
                for (user, ctx) in contexts {
                    let key = (item.tenant.clone(), user, item.conversation.clone());
                    self.contexts.entry(key).or_insert(ctx);
                }
                self.recent.insert(
                    (
                        item.tenant.clone(),
                        item.conversation.clone(),
                        item.position,
                    ),
                    recent,
                );
                Some(Prefetched {
                    event: event?,
                    conversation: conversation?,
                })
            })
            .collect())
    }

    /// Reads what firing the threads of `keys` needs, every read of a kind at once: fired one
    /// after another, each timer waited for four store round trips in turn, and timers that
    /// came due together fired late by the sum of them (SPEC §4: within 50 ms of due). Fills
    /// what [`Step::user_context`], [`Step::membership`], [`Step::load_record`] and
    /// [`Step::recent_messages`] answer from.
    pub async fn prefetch_threads(&mut self, keys: &[ThreadKey]) -> Result<(), StoreError> {
        let (notify, store) = (&self.state.notify, &self.state.store);
        let (contexts, memberships) = try_join(
            try_join_all(
                keys.iter()
                    .map(|k| notify.user_context(&k.tenant, &k.user, Some(&k.conversation))),
            ),
            try_join_all(
                keys.iter()
                    .map(|k| store.membership(&k.tenant, &k.conversation, &k.user)),
            ),
        )
        .await?;
        let mut records = Vec::new();
        let mut recent = Vec::new();
        for (key, ctx) in keys.iter().zip(&contexts) {
            let Some(thread) = ctx
                .threads
                .get(&(key.app.clone(), key.conversation.clone()))
            else {
                continue;
            };
            if let Some(pending) = thread.pending.as_ref().filter(|p| p.due_at <= self.now) {
                records.push((key.tenant.clone(), pending.notification_id.clone()));
                recent.push((
                    key.tenant.clone(),
                    key.conversation.clone(),
                    pending.latest_position,
                ));
            }
            if let Some(digest) = thread.digest.as_ref().filter(|d| d.due_at <= self.now) {
                records.push((key.tenant.clone(), digest.notification_id.clone()));
            }
        }
        let (loaded, messages) = try_join(
            try_join_all(records.iter().map(|(t, id)| notify.notification(t, id))),
            try_join_all(
                recent
                    .iter()
                    .map(|(t, c, p)| notify.recent_messages(t, c, *p, MAX_TRANSCRIPT_LINES)),
            ),
        )
        .await?;
        for ((key, ctx), membership) in keys.iter().zip(contexts).zip(memberships) {
            let conversation = key.conversation.clone();
            self.contexts.insert(
                (key.tenant.clone(), key.user.clone(), conversation.clone()),
                ctx,
            );
            self.memberships.insert(
                (key.tenant.clone(), conversation, key.user.clone()),
                membership,
            );
        }
        self.records.extend(records.into_iter().zip(loaded));
        self.recent.extend(recent.into_iter().zip(messages));
        Ok(())
    }

    /// A membership: prefetched for this step's due threads, else read.
    pub async fn membership(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let key = (tenant.clone(), conversation.clone(), user.clone());
        match self.memberships.get(&key) {
            Some(membership) => Ok(membership.clone()),
            None => {
                self.state
                    .store
                    .membership(tenant, conversation, user)
                    .await
            }
        }
    }

    /// The newest `n` messages at or before `position`, oldest first: prefetched for this
    /// step's events, else read.
    pub async fn recent_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        position: u64,
        n: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let key = (tenant.clone(), conversation.clone(), position);
        match self.recent.get(&key) {
            Some(recent) => Ok(recent[recent.len().saturating_sub(n)..].to_vec()),
            None => {
                self.state
                    .notify
                    .recent_messages(tenant, conversation, position, n)
                    .await
            }
        }
    }

    pub fn looking(&self, tenant: &TenantId, user: &UserId) -> Looking {
        let presence = self.state.hub.presence(tenant, user);
        match presence.state {
            PresenceState::Foreground => Looking::Foreground,
            PresenceState::Away => Looking::Away {
                since: presence.since,
            },
        }
    }

    pub fn record(&mut self, record: NotificationRecord) {
        metrics::counter!("herald_decisions_total", "status" => record.status.as_str(), "kind" => record.kind.as_str()).increment(1);
        self.commit.records.push(record);
    }

    pub fn new_id() -> String {
        format!("ntf_{}", uuid::Uuid::now_v7().simple())
    }

    /// A user's context as this step has changed it so far: a batch evaluates several events,
    /// and each must see what the earlier ones decided.
    pub async fn user_context(
        &self,
        tenant: &TenantId,
        user: &UserId,
        conversation: Option<&ConversationId>,
    ) -> Result<UserContext, StoreError> {
        let prefetched = conversation.and_then(|c| {
            self.contexts
                .get(&(tenant.clone(), user.clone(), c.clone()))
        });
        let mut ctx = match prefetched {
            Some(ctx) => ctx.clone(),
            None => {
                self.state
                    .notify
                    .user_context(tenant, user, conversation)
                    .await?
            }
        };
        for (key, thread) in &self.commit.threads {
            if &key.tenant == tenant
                && &key.user == user
                && conversation.is_none_or(|c| *c == key.conversation)
            {
                ctx.threads
                    .insert((key.app.clone(), key.conversation.clone()), thread.clone());
            }
        }
        for (t, u, app, state) in &self.commit.user_states {
            if t == tenant && u == user {
                ctx.states.insert(app.clone(), state.clone());
            }
        }
        Ok(ctx)
    }

    /// A call as this step has changed it so far.
    pub async fn call(
        &self,
        tenant: &TenantId,
        call_id: &str,
    ) -> Result<Option<CallState>, StoreError> {
        if let Some((_, _, call)) = self
            .commit
            .calls
            .iter()
            .rev()
            .find(|(t, id, _)| t == tenant && id == call_id)
        {
            return Ok(Some(call.clone()));
        }
        self.state.notify.call(tenant, call_id).await
    }

    /// A record decided earlier in this step, or stored (prefetched for this step's due
    /// threads, else read).
    pub async fn load_record(
        &mut self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        if let Some(i) = self.commit.records.iter().position(|r| r.id == id) {
            return Ok(Some(self.commit.records.remove(i)));
        }
        if let Some(record) = self.records.remove(&(tenant.clone(), id.to_string())) {
            return Ok(record);
        }
        self.state.notify.notification(tenant, id).await
    }

    /// A timer (`push`, `digest` or `scheduled`) due at `due_at` fires in this step; its
    /// lateness is observed when the step commits.
    pub fn fired(&mut self, timer: &'static str, due_at: OffsetDateTime) {
        self.fired.push((timer, due_at));
    }

    pub async fn finish(self) -> Result<bool, StoreError> {
        let deliveries = !self.commit.deliveries.is_empty();
        self.state
            .notify
            .commit_notify(self.commit, self.now)
            .await?;
        // A timer has fired once what it decided is durable: lateness runs to the commit, so
        // a slow step or a busy writer counts against it.
        if !self.fired.is_empty() {
            let committed = self.state.clock.now();
            for (timer, due_at) in self.fired {
                metrics::histogram!("herald_timer_lateness_seconds", "timer" => timer)
                    .record((committed - due_at).as_seconds_f64().max(0.0));
            }
        }
        Ok(deliveries)
    }
}
