//! What a plan reads: plain values the runtime loads before it calls the plan, so the plan
//! never waits on a store and a test builds them by hand.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::app::{AppConfig, ContentShape};
use crate::event::StoredEvent;
use crate::ids::{AppId, ConversationId, TenantId, UserId};
use crate::notify::Looking;
use crate::notify::calls::CallState;
use crate::notify::record::NotificationRecord;
use crate::notify::store::{ThreadKey, UserContext};
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
    /// before the position, oldest first, then the event at the position when it is a notice
    /// ([`lead::with_lead`](crate::notify::lead::with_lead)): a push standing for it says it.
    pub recent: HashMap<(TenantId, ConversationId, u64), Vec<StoredEvent>>,
    /// By (tenant, conversation, first, latest position): every event of a due push's span,
    /// oldest first — for apps whose pushes take the GMS shape, whose `lastTranscript` lists
    /// the notices between the messages too. A push due at once stands for its one event,
    /// which [`Inputs::recent`] holds.
    pub spans: HashMap<(TenantId, ConversationId, u64, u64), Vec<StoredEvent>>,
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

/// What firing a due thread reads beyond its context and membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadReads {
    /// The records of the push and the digest that are due — or, when the thread's app is
    /// gone, of whatever waits, since all of it is cancelled.
    pub records: Vec<String>,
    /// The position whose recent messages (and notice) the due push carries.
    pub recent: Option<u64>,
    /// The first and latest positions of a due push whose app wants the GMS shape: it lists
    /// every event between them ([`Inputs::spans`]).
    pub span: Option<(u64, u64)>,
    /// An email digest is due with messages unread: it lists them up to the conversation's
    /// last position ([`Inputs::last_positions`], then [`Inputs::recent`] there).
    pub digest: bool,
}

impl Inputs {
    /// What firing `key` at `now` reads, given its context, membership and apps (loaded).
    pub fn thread_reads(&self, key: &ThreadKey, now: OffsetDateTime) -> ThreadReads {
        let ctx_key = (
            key.tenant.clone(),
            key.user.clone(),
            Some(key.conversation.clone()),
        );
        let at = (key.app.clone(), key.conversation.clone());
        let Some(thread) = self.contexts.get(&ctx_key).and_then(|c| c.threads.get(&at)) else {
            return ThreadReads::default();
        };
        let apps = self.apps.get(&key.tenant);
        let app = apps.and_then(|apps| apps.iter().find(|(id, _)| *id == key.app));
        let app_exists = app.is_some();
        let push = thread
            .pending
            .as_ref()
            .filter(|p| !app_exists || p.due_at <= now);
        let digest = thread
            .digest
            .as_ref()
            .filter(|d| !app_exists || d.due_at <= now);
        let records = push.map(|p| p.notification_id.clone());
        let records = records
            .into_iter()
            .chain(digest.map(|d| d.notification_id.clone()));
        if !app_exists {
            return ThreadReads {
                records: records.collect(),
                ..ThreadReads::default()
            };
        }
        let member = (
            key.tenant.clone(),
            key.conversation.clone(),
            key.user.clone(),
        );
        let unread = self.memberships.get(&member).map_or(0, |m| m.unread);
        ThreadReads {
            records: records.collect(),
            recent: push.map(|p| p.latest_position),
            span: push
                .filter(|_| app.is_some_and(|(_, a)| a.content.shape == ContentShape::Gms))
                .map(|p| (p.first_position, p.latest_position)),
            digest: digest.is_some() && unread > 0,
        }
    }

    /// The contexts the loaded proactive notifications read: their users', of every
    /// conversation (the badge, the preferences).
    pub fn proactive_contexts(&self) -> Vec<ContextKey> {
        let proactive = self
            .records
            .values()
            .filter(|r| r.proactive.is_some() && r.app_id.is_some());
        proactive
            .map(|r| (r.tenant_id.clone(), r.user_id.clone(), None))
            .collect()
    }
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

/// The records deciding a user's suppressions again reads: those their threads remember.
pub fn away_records(ctx: &UserContext) -> Vec<String> {
    let looked = ctx.threads.values().flat_map(|t| &t.looked);
    looked.map(|l| l.notification_id.clone()).collect()
}

/// Everyone the end of a call may tell: who it rang (revocations) and the callees who may
/// have missed it; nobody once it stopped ringing.
pub fn call_parties(call: &CallState) -> Vec<UserId> {
    if call.over {
        return vec![];
    }
    let rang = call.rang.iter().map(|(user, _)| user);
    let callees = call.callees.iter().filter(|u| **u != call.caller);
    rang.chain(callees).cloned().collect()
}
