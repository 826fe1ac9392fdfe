//! A message or notice (SPEC §3.2, §3.3 rules 1–3 and 6): for every participant but its
//! actor, in every app that can reach them, the who-rules, then the timing (foreground, grace
//! delay, coalesce window, quiet hours), then an email digest when the app and user have email.

use time::OffsetDateTime;

use crate::app::AppConfig;
use crate::event::StoredEvent;
use crate::ids::TenantId;
use crate::notify::compose::Facts;
use crate::notify::lead;
use crate::notify::record::Status;
use crate::notify::store::UserContext;
use crate::notify::timing::{self, MessageStep, Thread, Timing};
use crate::notify::who;
use crate::participant::Membership;
use crate::push::PushKind;

use super::dispatch::{self, candidate_apps};
use super::{Apps, LOOKING, Party, Plan};

const NO_DEVICE: &str =
    "the user has no device registered in any app, and no app has a webhook for new messages";

pub(super) fn pushable(
    plan: &mut Plan<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    member: &Membership,
) {
    let user = &member.participant.user_id;
    // Nobody is told of their own event.
    if event.event.body.actor_id() == Some(user) {
        return;
    }
    let conversation = &event.event.conversation_id;
    let ctx = plan.user_context(tenant, user, Some(conversation));
    let party = plan.party(tenant, user, conversation);
    let kind = lead::kind(event).unwrap_or(PushKind::NewMessage);
    let candidates = candidate_apps(apps, &ctx, kind);
    if candidates.is_empty() {
        // Support reads the first rule that decided, in SPEC §3.3 order: a user who is looking
        // would get no push even with a device, so that is the reason; the missing device
        // comes second.
        let reason = if party.looking.is_foreground() {
            format!("{LOOKING}; besides, {NO_DEVICE}")
        } else {
            NO_DEVICE.to_string()
        };
        plan.suppress(party, kind, Some(event.position), reason);
        return;
    }
    for (app_id, app) in candidates {
        in_app(plan, party.with_app(app_id), app, &ctx, event, member);
    }
}

/// One app's decision for one recipient.
fn in_app(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    ctx: &UserContext,
    event: &StoredEvent,
    member: &Membership,
) {
    let app_id = party.app.expect("an app's decision");
    let position = Some(event.position);
    let kind = lead::kind(event).unwrap_or(PushKind::NewMessage);
    if let Err(exclusion) = who::check(&event.event.body, &member.participant, &app.rules) {
        let reason = exclusion.describe();
        plan.suppress(party, kind, position, reason);
        return;
    }
    let conversation = &event.event.conversation_id;
    let key = (app_id.clone(), conversation.clone());
    let mut thread = ctx.threads.get(&key).cloned().unwrap_or_default();
    let mut user_state = ctx.states.get(app_id).cloned().unwrap_or_default();
    let new_id = plan.new_id();
    let decided = timing::on_message(
        &mut thread,
        &mut user_state,
        party.looking,
        &ctx.preferences,
        Timing::of(&app.rules),
        event.position,
        new_id,
        plan.now,
    );
    let missed_calls = user_state.missed_calls;
    record(plan, party, app, ctx, event, member, decided, missed_calls);
    email(plan, party, app, ctx, &mut thread, event.position, plan.now);
    plan.keep(party.thread_key(), thread, Some(user_state));
}

/// Records what the timing decided, and sends what is due at once.
#[expect(
    clippy::too_many_arguments,
    reason = "the decision and everything its record and push say"
)]
fn record(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    ctx: &UserContext,
    event: &StoredEvent,
    member: &Membership,
    decided: MessageStep,
    missed_calls: u64,
) {
    let app_id = party.app.expect("an app's decision");
    let kind = lead::kind(event).unwrap_or(PushKind::NewMessage);
    let open = |plan: &mut Plan<'_>, status, reason: String| {
        plan.open(party, kind, Some(event.position), status, reason)
    };
    match decided {
        MessageStep::Foreground { notification_id } => {
            let mut r = open(plan, Status::Suppressed, LOOKING.into());
            r.id = notification_id;
            plan.record(r);
        }
        MessageStep::Folded { into } => {
            let reason = format!(
                "folded into notification {into}, which is waiting and will carry the latest message"
            );
            let r = open(plan, Status::Coalesced, reason);
            plan.record(r);
        }
        MessageStep::Waiting(pending) => {
            let mut r = open(plan, Status::Pending, pending.wait.describe().into());
            r.id = pending.notification_id.clone();
            r.due_at = Some(pending.due_at);
            plan.record(r);
        }
        MessageStep::Send(send) => {
            let mut r = open(plan, Status::Pending, "due at once".into());
            r.id = send.notification_id.clone();
            let facts = Facts {
                position: Some(send.latest_position),
                first_position: Some(send.first_position),
                message_count: send.count,
                unread: member.unread,
                missed_calls,
                ..Facts::about(Some(event), ctx, app_id, plan.now, send.expires_at)
            };
            let conversation = &event.event.conversation_id;
            dispatch::new_message(plan, r, ctx, app_id, app, conversation, &facts);
        }
    }
}

/// SPEC §3.3 rule 6: with email possible (the app has SMTP settings, the user an address), a
/// pushable message starts an email digest, due `email_delay` after `from` — now, or for a
/// message decided again, when the user went away.
pub(super) fn email(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    ctx: &UserContext,
    thread: &mut Thread,
    position: u64,
    from: OffsetDateTime,
) {
    if app.smtp.is_none() || ctx.email.is_none() {
        return;
    }
    let delay = time::Duration::milliseconds(app.rules.email_delay_ms as i64);
    let new_id = plan.new_id();
    let started = timing::on_message_email(thread, party.looking, delay, position, new_id, from);
    if let Some(digest) = started {
        let reason = "an email digest waits the app's email delay; it goes only if the conversation is still unread then";
        let mut r = plan.open(
            party,
            PushKind::Digest,
            Some(position),
            Status::Pending,
            reason,
        );
        r.id = digest.notification_id;
        r.due_at = Some(digest.due_at);
        plan.record(r);
    }
}
