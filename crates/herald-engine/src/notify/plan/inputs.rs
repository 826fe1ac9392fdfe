//! What a plan reads: plain values the runtime loads before it calls the plan, so the plan
//! never waits on a store and a test builds them by hand.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::app::AppConfig;
use crate::event::StoredEvent;
use crate::ids::{AppId, ConversationId, TenantId, UserId};
use crate::notify::Looking;
use crate::notify::calls::CallState;
use crate::notify::record::NotificationRecord;
use crate::notify::store::UserContext;
use crate::notify::timing::Thread;
use crate::participant::Membership;
use crate::store::Conversation;

/// A tenant's apps, each deciding by its own rules.
pub type Apps = Vec<(AppId, Arc<AppConfig>)>;

/// Whose context, with the threads of one conversation (`Some`) or of all (`None`).
pub type ContextKey = (TenantId, UserId, Option<ConversationId>);

/// Everything a plan may read. A value the runtime did not load reads as absent (no record,
/// no call, an empty context), so the runtime loads every key the plan will ask for; the
/// helpers below name the ones that depend on rules.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Each tenant's apps; a tenant absent has none.
    pub apps: HashMap<TenantId, Apps>,
    pub contexts: HashMap<ContextKey, UserContext>,
    /// Whether each user is looking, as the live sessions tell; absent: away since unknown.
    pub looking: HashMap<(TenantId, UserId), Looking>,
    /// Memberships by (tenant, conversation, user); absent: not a participant.
    pub memberships: HashMap<(TenantId, ConversationId, UserId), Membership>,
    /// Stored calls by (tenant, call id).
    pub calls: HashMap<(TenantId, String), CallState>,
    /// Stored decision records by (tenant, notification id).
    pub records: HashMap<(TenantId, String), NotificationRecord>,
    /// By (tenant, conversation, position): the newest
    /// [`MAX_TRANSCRIPT_LINES`](crate::notify::store::MAX_TRANSCRIPT_LINES) messages at or
    /// before the position, oldest first.
    pub recent: HashMap<(TenantId, ConversationId, u64), Vec<StoredEvent>>,
    /// Conversations' last positions: an email digest lists what is unread up to there.
    pub last_positions: HashMap<(TenantId, ConversationId), u64>,
}

/// An outbox event to evaluate, with its conversation; `found` is `None` when either is gone
/// (the event is then only marked evaluated).
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub seq: i64,
    pub tenant: TenantId,
    pub found: Option<(StoredEvent, Conversation)>,
}

/// The records a due thread's plan will read: the push and the digest that are due — or,
/// when its app is gone, whatever waits, since all of it is cancelled.
pub fn thread_records(thread: &Thread, app_exists: bool, now: OffsetDateTime) -> Vec<String> {
    let push = thread
        .pending
        .as_ref()
        .filter(|p| !app_exists || p.due_at <= now);
    let digest = thread
        .digest
        .as_ref()
        .filter(|d| !app_exists || d.due_at <= now);
    push.map(|p| p.notification_id.clone())
        .into_iter()
        .chain(digest.map(|d| d.notification_id.clone()))
        .collect()
}

/// The position whose recent messages a due thread's push will carry, if a push is due.
pub fn thread_recent(thread: &Thread, now: OffsetDateTime) -> Option<u64> {
    let pending = thread.pending.as_ref().filter(|p| p.due_at <= now)?;
    Some(pending.latest_position)
}

/// Whether a due thread will email a digest (and so needs the conversation's last position
/// and the messages before it), given how many messages are unread.
pub fn thread_digests(thread: &Thread, unread: u64, now: OffsetDateTime) -> bool {
    unread > 0 && thread.digest.as_ref().is_some_and(|d| d.due_at <= now)
}

/// The records a read leaving nothing unread will read: what waits on the reader's threads.
pub fn read_records(ctx: &UserContext) -> Vec<String> {
    ctx.threads
        .values()
        .flat_map(|t| {
            let push = t.pending.as_ref().map(|p| p.notification_id.clone());
            push.into_iter()
                .chain(t.digest.as_ref().map(|d| d.notification_id.clone()))
        })
        .collect()
}

/// The records cancelling a returning user's pushes reads.
pub fn foreground_records(ctx: &UserContext) -> Vec<String> {
    ctx.threads
        .values()
        .filter_map(|t| t.pending.as_ref().map(|p| p.notification_id.clone()))
        .collect()
}
