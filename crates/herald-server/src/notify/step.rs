//! One engine step: what it read, what it decided, and the commit that records it.

use std::collections::HashMap;

use herald_engine::event::StoredEvent;
use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_engine::notify::Looking;
use herald_engine::notify::calls::CallState;
use herald_engine::notify::record::NotificationRecord;
use herald_engine::notify::store::{EventInputs, NotifyCommit, OutboxItem, UserContext};
use herald_engine::store::Conversation;
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::app_state::AppState;
use crate::live::presence::PresenceState;

pub struct Step<'a> {
    pub state: &'a AppState,
    pub now: OffsetDateTime,
    pub commit: NotifyCommit,
    /// Read for this step's outbox events in one round trip ([`Step::prefetch`]): participants'
    /// contexts by (tenant, user, conversation), and recent messages by (tenant,
    /// conversation, position).
    contexts: HashMap<(TenantId, UserId, ConversationId), UserContext>,
    recent: HashMap<(TenantId, ConversationId, u64), Vec<StoredEvent>>,
}

/// An outbox event with its conversation, as [`Step::prefetch`] read them.
pub struct Prefetched {
    pub event: StoredEvent,
    pub conversation: Conversation,
}

impl<'a> Step<'a> {
    pub fn new(state: &'a AppState) -> Self {
        Step {
            state,
            now: state.clock.now(),
            commit: NotifyCommit::default(),
            contexts: HashMap::new(),
            recent: HashMap::new(),
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

    /// A record decided earlier in this step, or stored.
    pub async fn load_record(
        &mut self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        if let Some(i) = self.commit.records.iter().position(|r| r.id == id) {
            return Ok(Some(self.commit.records.remove(i)));
        }
        self.state.notify.notification(tenant, id).await
    }

    pub async fn finish(self) -> Result<bool, StoreError> {
        let deliveries = !self.commit.deliveries.is_empty();
        self.state
            .notify
            .commit_notify(self.commit, self.now)
            .await?;
        Ok(deliveries)
    }
}
