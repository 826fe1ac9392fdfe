//! The last step of every send: composing the push, handing it to the delivery core for every
//! target, and recording the decision.

use std::sync::Arc;

use crate::app::{AppConfig, ContentShape};
use crate::ids::{AppId, ConversationId};
use crate::notify::compose::{self, Facts, Subject};
use crate::notify::content::gms;
use crate::notify::lead::{self, Lead};
use crate::notify::record::{NotificationRecord, Status};
use crate::notify::store::UserContext;
use crate::notify::timing::Timing;
use crate::push::{Push, PushKind};

use super::{Apps, Plan};

/// The most unread messages an email digest lists.
const DIGEST_LINES: u64 = 20;

/// Apps that could reach the user with `kind`; each app decides by its own rules.
pub(super) fn candidate_apps<'a>(
    apps: &'a Apps,
    ctx: &UserContext,
    kind: PushKind,
) -> Vec<&'a (AppId, Arc<AppConfig>)> {
    apps.iter()
        .filter(|(id, app)| compose::reachable(id, app, &ctx.devices, kind))
        .collect()
}

/// The app of that id, if the tenant still has it.
pub(super) fn app<'a>(apps: &'a Apps, id: &AppId) -> Option<&'a Arc<AppConfig>> {
    apps.iter().find(|(app, _)| app == id).map(|(_, app)| app)
}

/// Hands `push` to the delivery core for every target of the subject and records the
/// decision. Answers whether anything could carry it.
pub(super) fn dispatch(
    plan: &mut Plan<'_>,
    mut record: NotificationRecord,
    subject: &Subject<'_>,
    push: Push,
    ctx: &UserContext,
    channels: &[String],
    reason: String,
) -> bool {
    // A record created just to be sent has no earlier step worth showing.
    record.log.retain(|e| !e.reason.is_empty());
    let targets = compose::targets(subject, &ctx.devices, channels, ctx.email.as_deref());
    if targets.is_empty() {
        record.note(
            Status::Failed,
            "nothing can carry it: no device of the user in this app, and no webhook for it",
            plan.now,
        );
        plan.record(record);
        return false;
    }
    let deliveries = compose::deliveries(subject, &push, targets, &mut *plan.ids);
    let count = deliveries.len();
    plan.commit.deliveries.extend(deliveries);
    record.push = Some(push);
    record.note(
        Status::Sent,
        format!("{reason}; handed to the delivery core for {count} target(s)"),
        plan.now,
    );
    plan.record(record);
    true
}

/// Sends the push of a conversation's thread (due at once, or fired), led by the event at
/// its position — the latest message, or a notice — and carrying, in `full` mode, the app's
/// number of transcript lines.
pub(super) fn new_message(
    plan: &mut Plan<'_>,
    mut record: NotificationRecord,
    ctx: &UserContext,
    app_id: &AppId,
    app: &AppConfig,
    conversation: &ConversationId,
    facts: &Facts,
) {
    let (tenant, user, id) = (
        record.tenant_id.clone(),
        record.user_id.clone(),
        record.id.clone(),
    );
    let lines = usize::from(app.content.transcript_lines).max(1);
    let recent = plan.recent(&tenant, conversation, facts.position.unwrap_or(0), lines);
    // A message folded into a pending push can be overtaken by a notice, and the other way
    // round: the record says what the push that went out was.
    let lead = lead::of(&recent, facts.position);
    record.kind = lead.map_or(PushKind::NewMessage, Lead::kind);
    let subject = Subject {
        tenant: &tenant,
        user: &user,
        app_id,
        app,
        kind: record.kind,
        notification_id: &id,
        conversation: Some(conversation),
    };
    let locale = compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id);
    let mut push = compose::new_message(&subject, facts, &recent, locale);
    if app.content.shape == ContentShape::Gms {
        let latest = facts.position.unwrap_or(0);
        let first = facts.first_position.unwrap_or(latest);
        let span = plan.span(&tenant, conversation, first, latest);
        let (content, rules) = (&app.content.gms, &app.rules);
        push.gms = Some(gms::notification(
            content,
            rules,
            conversation,
            &user,
            &span,
        ));
    }
    let reason = format!(
        "the user is away: one push for {} message(s)",
        facts.message_count
    );
    dispatch(plan, record, &subject, push, ctx, &[], reason);
}

/// Emails what is still unread in a conversation: one email per conversation.
pub(super) fn digest(
    plan: &mut Plan<'_>,
    record: NotificationRecord,
    ctx: &UserContext,
    app_id: &AppId,
    app: &AppConfig,
    conversation: &ConversationId,
    unread: u64,
) {
    let (tenant, user, id) = (
        record.tenant_id.clone(),
        record.user_id.clone(),
        record.id.clone(),
    );
    let last = plan
        .inputs
        .last_positions
        .get(&(tenant.clone(), conversation.clone()))
        .copied()
        .unwrap_or(0);
    let recent = plan.recent(
        &tenant,
        conversation,
        last,
        unread.min(DIGEST_LINES) as usize,
    );
    let subject = Subject {
        tenant: &tenant,
        user: &user,
        app_id,
        app,
        kind: PushKind::Digest,
        notification_id: &id,
        conversation: Some(conversation),
    };
    let ttl = plan.now + Timing::of(&app.rules).ttl;
    let facts = Facts {
        position: recent.last().map(|e| e.position),
        message_count: u32::try_from(unread).unwrap_or(u32::MAX),
        unread,
        ..Facts::about(recent.last(), ctx, app_id, plan.now, ttl)
    };
    let locale = compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id);
    let push = compose::digest(&subject, &facts, &recent, locale);
    let reason = format!("{unread} message(s) still unread after the email delay");
    dispatch(plan, record, &subject, push, ctx, &[], reason);
}
