//! The engine's persistence port. The engine task is the only writer of this state; each of
//! its steps reads what it needs, decides with the pure functions, and commits a
//! [`NotifyCommit`] in one transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::device::Device;
use crate::event::StoredEvent;
use crate::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use crate::lease::Fence;
use crate::notify::calls::CallState;
use crate::notify::quiet::Preferences;
use crate::notify::record::NotificationRecord;
use crate::notify::timing::{Thread, UserState};
use crate::push::Delivery;
use crate::store::{Conversation, StoreError};

/// An event waiting for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub seq: i64,
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadKey {
    pub tenant: TenantId,
    pub user: UserId,
    pub app: AppId,
    pub conversation: ConversationId,
}

/// What the engine knows of one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserContext {
    pub devices: Vec<Device>,
    /// Threads: of one conversation, or all, as asked.
    pub threads: BTreeMap<(AppId, ConversationId), Thread>,
    pub states: BTreeMap<AppId, UserState>,
    pub preferences: Preferences,
    /// Where emails go: the preferences' address, else the participant record's (when the
    /// context is about one conversation).
    pub email: Option<String>,
    /// The badge: unread over every conversation.
    pub unread_total: u64,
}

/// The most transcript lines a push may carry (`content.transcript_lines` is validated
/// against it); [`EventInputs::recent`] holds that many.
pub const MAX_TRANSCRIPT_LINES: usize = 20;

/// What evaluating one outbox event reads, gathered for a whole batch in one round trip
/// ([`NotifyStore::event_inputs`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventInputs {
    /// `None` if the event or its conversation is gone.
    pub event: Option<StoredEvent>,
    pub conversation: Option<Conversation>,
    /// The context of each participant but the event's actor (who is not told of their own
    /// event; the rare paths that need the actor's context, a read, read it on their own),
    /// with the threads of this conversation only. An agent in thousands of conversations
    /// would otherwise cost a badge sum over all of them per event.
    pub contexts: BTreeMap<UserId, UserContext>,
    /// The newest [`MAX_TRANSCRIPT_LINES`] messages at or before the event, oldest first.
    pub recent: Vec<StoredEvent>,
}

/// Everything one engine step changes, committed atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyCommit {
    /// Outbox rows evaluated.
    pub evaluated: Vec<i64>,
    /// New thread states (a thread with nothing pending and nothing shown may be deleted).
    pub threads: Vec<(ThreadKey, Thread)>,
    pub user_states: Vec<(TenantId, UserId, AppId, UserState)>,
    pub calls: Vec<(TenantId, String, CallState)>,
    /// Inserted, or replaced by id.
    pub records: Vec<NotificationRecord>,
    pub deliveries: Vec<Delivery>,
    /// Health checks sent to Web Push subscriptions.
    pub checks: Vec<HealthCheck>,
    /// In cluster mode, the engine lease this commit is decided under: the store writes
    /// nothing unless it still holds (`StoreError::Fenced`). `None` on the embedded store.
    pub fence: Option<Fence>,
}

/// A health-check push sent to a subscription, which must be acknowledged by `deadline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub tenant: TenantId,
    pub app: AppId,
    pub user: UserId,
    pub device: DeviceId,
    pub check_id: String,
    pub deadline: OffsetDateTime,
}

impl NotifyCommit {
    /// Nothing to write (whatever the fence).
    pub fn is_empty(&self) -> bool {
        let NotifyCommit {
            evaluated,
            threads,
            user_states,
            calls,
            records,
            deliveries,
            checks,
            fence: _,
        } = self;
        evaluated.is_empty()
            && threads.is_empty()
            && user_states.is_empty()
            && calls.is_empty()
            && records.is_empty()
            && deliveries.is_empty()
            && checks.is_empty()
    }
}

#[async_trait]
pub trait NotifyStore: Send + Sync + 'static {
    /// The oldest events not yet evaluated.
    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;
    /// For each item, in order, what evaluating it reads: the same as `events_after`,
    /// `get_conversation`, `user_context` of every participant but the actor and
    /// `recent_messages` would answer, read together (one snapshot, one round trip).
    async fn event_inputs(&self, items: &[OutboxItem]) -> Result<Vec<EventInputs>, StoreError>;
    /// A user's devices, engine state, preferences and badge; threads of `conversation` only,
    /// or of every conversation when `None`.
    async fn user_context(
        &self,
        tenant: &TenantId,
        user: &UserId,
        conversation: Option<&ConversationId>,
    ) -> Result<UserContext, StoreError>;
    async fn call(&self, tenant: &TenantId, call_id: &str)
    -> Result<Option<CallState>, StoreError>;
    /// The newest `n` messages at or before `position`, oldest first.
    async fn recent_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        position: u64,
        n: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Threads whose timer is due at `now`.
    async fn due_threads(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ThreadKey>, StoreError>;
    /// Scheduled or held notifications due at `now`: (tenant, id).
    async fn due_notifications(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>, StoreError>;
    /// The earliest timer of either kind.
    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError>;
    async fn commit_notify(
        &self,
        commit: NotifyCommit,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn notification(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError>;
    /// A user's most recent decisions, newest first.
    async fn user_notifications(
        &self,
        tenant: &TenantId,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError>;
    async fn put_preferences(
        &self,
        tenant: &TenantId,
        user: &UserId,
        preferences: &Preferences,
    ) -> Result<(), StoreError>;

    /// Web Push devices of an app whose last health check was sent before `checked_before`
    /// (or never), with no check outstanding.
    async fn devices_to_check(
        &self,
        tenant: &TenantId,
        app: &AppId,
        checked_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Device>, StoreError>;
    /// Marks every check unacknowledged past its deadline: its device is unhealthy. Answers
    /// the devices that just became unhealthy.
    async fn expire_checks(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(TenantId, UserId, DeviceId)>, StoreError>;
    /// The device's owner acknowledges a check; the device is healthy again. False when no
    /// such outstanding check belongs to this user.
    async fn acknowledge_check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        device: &DeviceId,
        check_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// The user's devices that failed a health check: (device, app).
    async fn unhealthy_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<(DeviceId, AppId)>, StoreError>;
}
