//! Whole engine steps as pure plans: `(inputs, now, ids) → NotifyCommit`. The runtime loads
//! everything a step reads into [`Inputs`], calls one plan — [`events`], [`timers`],
//! [`foreground`], [`away`] or [`health_checks`] — and commits what it answers. Every SPEC §3 rule and
//! every decision-log wording lives here or in the rule modules the plan calls (`who`,
//! `timing`, `quiet`, `calls`, `lead`, `compose`).
//!
//! A plan owns the commit it builds: a step decides several events or timers in turn, and each
//! must see what the earlier ones decided (threads, user states, calls, records), so every read
//! goes through the overlay in this file.

mod away;
mod calls;
mod dispatch;
pub mod health;
pub mod inputs;
mod invitation;
mod message;
mod proactive;
mod read;
mod timers;

#[cfg(test)]
mod tests;

use time::OffsetDateTime;

use crate::event::{EventBody, StoredEvent};
use crate::ids::{AppId, ConversationId, TenantId, UserId};
use crate::notify::calls::CallState;
use crate::notify::record::{NotificationRecord, Status};
use crate::notify::store::{NotifyCommit, ThreadKey, UserContext};
use crate::notify::timing::{Thread, UserState};
use crate::notify::{Looking, NewIds};
use crate::participant::Membership;
use crate::push::PushKind;
use crate::store::Conversation;

pub use inputs::{Apps, Inputs, OutboxEvent};

/// Why an event is not pushed to a user who sees it live, for every kind that says so.
const LOOKING: &str = "the user is looking at a live session, which carries the event";

/// What a plan decided: the commit, and what the runtime observes about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planned {
    pub commit: NotifyCommit,
    /// Every decision in the order it was made, for the decision counter (a record decided
    /// twice in one step counts twice, as it is two decisions).
    pub decisions: Vec<(Status, PushKind)>,
    /// Timers fired, by kind (`push`, `digest`, `scheduled`), with their due times: their
    /// lateness is measured once the commit is durable.
    pub fired: Vec<(&'static str, OffsetDateTime)>,
}

/// Evaluates a batch of outbox events, in order; each is marked evaluated.
pub fn events(
    inputs: Inputs,
    events: &[OutboxEvent],
    now: OffsetDateTime,
    ids: &mut dyn NewIds,
) -> Planned {
    let mut plan = Plan::new(inputs, now, ids);
    for item in events {
        plan.commit.evaluated.push(item.seq);
        if let Some((event, conversation)) = &item.found {
            plan.event(&item.tenant, event, conversation);
        }
    }
    plan.finish()
}

/// Fires due threads (pushes that waited, email digests), then due scheduled notifications
/// (proactive ones, by tenant and id).
pub fn timers(
    inputs: Inputs,
    threads: &[ThreadKey],
    scheduled: &[(TenantId, String)],
    now: OffsetDateTime,
    ids: &mut dyn NewIds,
) -> Planned {
    let mut plan = Plan::new(inputs, now, ids);
    for key in threads {
        timers::due_thread(&mut plan, key);
    }
    for (tenant, id) in scheduled {
        proactive::due(&mut plan, tenant, id);
    }
    plan.finish()
}

/// The user came back to the foreground: every push waiting for them is cancelled.
pub fn foreground(
    inputs: Inputs,
    tenant: &TenantId,
    user: &UserId,
    now: OffsetDateTime,
    ids: &mut dyn NewIds,
) -> Planned {
    let mut plan = Plan::new(inputs, now, ids);
    timers::foreground(&mut plan, tenant, user);
    plan.finish()
}

/// The user is away since `since`, a moment a live session still seemed to be looking (it
/// dropped and never came back, or fell silent): what was suppressed since is decided again
/// (SPEC §5.1). Nothing is, if the user is looking again.
pub fn away(
    inputs: Inputs,
    tenant: &TenantId,
    user: &UserId,
    since: OffsetDateTime,
    now: OffsetDateTime,
    ids: &mut dyn NewIds,
) -> Planned {
    let mut plan = Plan::new(inputs, now, ids);
    away::away(&mut plan, tenant, user, since);
    plan.finish()
}

/// Sends the due Web Push health checks (see [`health::check_window`]).
pub fn health_checks(
    inputs: Inputs,
    due: &[health::DueCheck],
    now: OffsetDateTime,
    ids: &mut dyn NewIds,
) -> Planned {
    let mut plan = Plan::new(inputs, now, ids);
    for check in due {
        health::check(&mut plan, check);
    }
    plan.finish()
}

/// One step being planned: what it read, and the commit it builds.
struct Plan<'a> {
    inputs: Inputs,
    now: OffsetDateTime,
    ids: &'a mut dyn NewIds,
    commit: NotifyCommit,
    decisions: Vec<(Status, PushKind)>,
    fired: Vec<(&'static str, OffsetDateTime)>,
}

/// Whom a new decision record is about.
#[derive(Clone, Copy)]
struct Party<'a> {
    tenant: &'a TenantId,
    user: &'a UserId,
    app: Option<&'a AppId>,
    conversation: Option<&'a ConversationId>,
    looking: Looking,
}

impl<'a> Party<'a> {
    fn with_app(self, app: &'a AppId) -> Party<'a> {
        Party {
            app: Some(app),
            ..self
        }
    }

    /// The thread of this party's app and conversation.
    fn thread_key(self) -> ThreadKey {
        ThreadKey {
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            app: self.app.expect("a thread belongs to an app").clone(),
            conversation: self
                .conversation
                .expect("a thread has a conversation")
                .clone(),
        }
    }
}

impl<'a> Plan<'a> {
    fn new(inputs: Inputs, now: OffsetDateTime, ids: &'a mut dyn NewIds) -> Self {
        Plan {
            inputs,
            now,
            ids,
            commit: NotifyCommit::default(),
            decisions: Vec::new(),
            fired: Vec::new(),
        }
    }

    fn finish(self) -> Planned {
        Planned {
            commit: self.commit,
            decisions: self.decisions,
            fired: self.fired,
        }
    }

    fn event(&mut self, tenant: &TenantId, event: &StoredEvent, conversation: &Conversation) {
        let apps = self.apps(tenant);
        let members = &conversation.participants;
        match &event.event.body {
            EventBody::MessageCreated(_) | EventBody::Notice(..) => {
                for member in members {
                    message::pushable(self, tenant, &apps, event, member);
                }
            }
            EventBody::MessageRead(r) => {
                if let Some(member) = members
                    .iter()
                    .find(|m| m.participant.user_id == r.reader_id)
                {
                    read::read_by(self, tenant, &apps, event, member);
                }
            }
            EventBody::CallRinging(ringing) => {
                calls::ringing(self, tenant, &apps, event, ringing);
            }
            EventBody::Call(kind, update) => calls::over(self, tenant, &apps, event, *kind, update),
            EventBody::ParticipantJoined(joined) => {
                invitation::added(self, tenant, &apps, event, joined, members);
            }
            EventBody::ParticipantLeft(_) => {}
        }
    }

    fn apps(&self, tenant: &TenantId) -> Apps {
        self.inputs.apps.get(tenant).cloned().unwrap_or_default()
    }

    /// A user of a conversation as a party to new decisions, looking as they are now.
    fn party<'p>(
        &self,
        tenant: &'p TenantId,
        user: &'p UserId,
        conversation: &'p ConversationId,
    ) -> Party<'p> {
        Party {
            tenant,
            user,
            app: None,
            conversation: Some(conversation),
            looking: self.looking(tenant, user),
        }
    }

    fn looking(&self, tenant: &TenantId, user: &UserId) -> Looking {
        let key = (tenant.clone(), user.clone());
        let away = Looking::Away { since: None };
        self.inputs.looking.get(&key).copied().unwrap_or(away)
    }

    fn membership(&self, key: &ThreadKey) -> Option<&Membership> {
        let (t, c, u) = (&key.tenant, &key.conversation, &key.user);
        let key = (t.clone(), c.clone(), u.clone());
        self.inputs.memberships.get(&key)
    }

    /// The newest `n` messages at or before `position`, oldest first, then the notice at
    /// `position` if there is one (it leads the push: [`crate::notify::lead`]).
    fn recent(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        position: u64,
        n: usize,
    ) -> Vec<StoredEvent> {
        let key = (tenant.clone(), conversation.clone(), position);
        let recent = self.inputs.recent.get(&key).map_or(&[][..], Vec::as_slice);
        let notice = recent
            .last()
            .is_some_and(|e| matches!(e.event.body, EventBody::Notice(..)));
        let n = n + usize::from(notice);
        recent[recent.len().saturating_sub(n)..].to_vec()
    }

    /// Every event a push from `first` to `latest` stands for, oldest first: the span the
    /// runtime loaded for a due push, else (a push due at once stands for its one event) what
    /// `recent` holds in that range.
    fn span(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        first: u64,
        latest: u64,
    ) -> Vec<StoredEvent> {
        let key = (tenant.clone(), conversation.clone(), first, latest);
        if let Some(span) = self.inputs.spans.get(&key) {
            return span.clone();
        }
        let key = (tenant.clone(), conversation.clone(), latest);
        let recent = self.inputs.recent.get(&key).map_or(&[][..], Vec::as_slice);
        let within = |e: &&StoredEvent| (first..=latest).contains(&e.position);
        recent.iter().filter(within).cloned().collect()
    }

    /// A user's context as this step has changed it so far.
    fn user_context(
        &self,
        tenant: &TenantId,
        user: &UserId,
        conversation: Option<&ConversationId>,
    ) -> UserContext {
        let key = (tenant.clone(), user.clone(), conversation.cloned());
        let mut ctx = self.inputs.contexts.get(&key).cloned().unwrap_or_default();
        for (key, thread) in &self.commit.threads {
            if &key.tenant == tenant
                && &key.user == user
                && conversation.is_none_or(|c| *c == key.conversation)
            {
                let at = (key.app.clone(), key.conversation.clone());
                ctx.threads.insert(at, thread.clone());
            }
        }
        for (t, u, app, state) in &self.commit.user_states {
            if t == tenant && u == user {
                ctx.states.insert(app.clone(), state.clone());
            }
        }
        ctx
    }

    /// A call as this step has changed it so far.
    fn call(&self, tenant: &TenantId, call_id: &str) -> Option<CallState> {
        let decided = self.commit.calls.iter().rev();
        match decided
            .into_iter()
            .find(|(t, id, _)| t == tenant && id == call_id)
        {
            Some((_, _, call)) => Some(call.clone()),
            None => {
                let key = (tenant.clone(), call_id.to_string());
                self.inputs.calls.get(&key).cloned()
            }
        }
    }

    /// A record to decide on again: taken from this step's decisions (it is recorded again
    /// with the new one), else from what was loaded.
    fn take_record(&mut self, tenant: &TenantId, id: &str) -> Option<NotificationRecord> {
        if let Some(i) = self.commit.records.iter().position(|r| r.id == id) {
            return Some(self.commit.records.remove(i));
        }
        self.inputs
            .records
            .remove(&(tenant.clone(), id.to_string()))
    }

    /// Notes a further decision on a stored or earlier record, if there is one.
    fn note(&mut self, tenant: &TenantId, id: &str, status: Status, reason: &str) {
        if let Some(mut r) = self.take_record(tenant, id) {
            r.note(status, reason, self.now);
            self.record(r);
        }
    }

    fn record(&mut self, record: NotificationRecord) {
        self.decisions.push((record.status, record.kind));
        self.commit.records.push(record);
    }

    fn new_id(&mut self) -> String {
        self.ids.notification()
    }

    /// Records a new decision not to push.
    fn suppress(
        &mut self,
        party: Party<'_>,
        kind: PushKind,
        position: Option<u64>,
        reason: impl Into<String>,
    ) {
        let r = self.open(party, kind, position, Status::Suppressed, reason);
        self.record(r);
    }

    /// A new record with its first decision.
    fn open(
        &mut self,
        party: Party<'_>,
        kind: PushKind,
        position: Option<u64>,
        status: Status,
        reason: impl Into<String>,
    ) -> NotificationRecord {
        NotificationRecord::new(
            self.new_id(),
            party.tenant.clone(),
            party.user.clone(),
            party.app.cloned(),
            party.conversation.cloned(),
            kind,
            position,
            Some(party.looking),
            status,
            reason,
            self.now,
        )
    }

    /// Keeps a thread's new state, and the user's in that app when it changed.
    fn keep(&mut self, key: ThreadKey, thread: Thread, user: Option<UserState>) {
        if let Some(user) = user {
            let (t, u, app) = (key.tenant.clone(), key.user.clone(), key.app.clone());
            self.commit.threads.push((key, thread));
            self.commit.user_states.push((t, u, app, user));
        } else {
            self.commit.threads.push((key, thread));
        }
    }
}
