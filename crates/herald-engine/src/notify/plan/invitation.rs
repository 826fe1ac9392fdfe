//! Someone added a participant to a conversation — an agent invited into it or forwarded it
//! (Unblu's invitation and forwarding notifications): the one added is told with a visible
//! push at once if they are away, per the app's who-rules. Like a ringing call, it is not
//! deferred through pause or quiet hours: by their end the conversation has moved on, and it
//! is in the user's list when they are back.

use crate::app::AppConfig;
use crate::event::{ParticipantJoined, StoredEvent};
use crate::ids::TenantId;
use crate::notify::compose::{self, Facts, Subject};
use crate::notify::record::Status;
use crate::notify::store::UserContext;
use crate::notify::timing::Timing;
use crate::notify::who;
use crate::participant::Membership;
use crate::push::PushKind;

use super::dispatch::{self, candidate_apps};
use super::{Apps, LOOKING, Party, Plan};

const KIND: PushKind = PushKind::Invitation;

pub(super) fn added(
    plan: &mut Plan<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    joined: &ParticipantJoined,
    members: &[Membership],
) {
    let user = &joined.participant.user_id;
    let Some(by) = joined.by.as_ref().filter(|by| *by != user) else {
        return;
    };
    // Gone again by the time the join is evaluated: there is nothing to invite them to.
    let Some(member) = members.iter().find(|m| &m.participant.user_id == user) else {
        return;
    };
    let inviter = members
        .iter()
        .find(|m| &m.participant.user_id == by)
        .and_then(|m| m.participant.name.clone())
        .unwrap_or_else(|| by.to_string());
    let conversation = &event.event.conversation_id;
    let ctx = plan.user_context(tenant, user, Some(conversation));
    let party = plan.party(tenant, user, conversation);
    let candidates = candidate_apps(apps, &ctx, KIND);
    if candidates.is_empty() {
        let reason = "the user has no device registered in any app";
        plan.suppress(party, KIND, Some(event.position), reason);
        return;
    }
    for (app_id, app) in candidates {
        let party = party.with_app(app_id);
        match refusal(plan, party, app, &ctx, event, member) {
            Some(reason) => plan.suppress(party, KIND, Some(event.position), reason),
            None => push(plan, party, app, &ctx, event, member, &inviter),
        }
    }
}

/// Why the one added is not pushed in this app, if they are not.
fn refusal(
    plan: &Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    ctx: &UserContext,
    event: &StoredEvent,
    member: &Membership,
) -> Option<String> {
    if let Err(exclusion) = who::check(&event.event.body, &member.participant, &app.rules) {
        Some(exclusion.describe())
    } else if party.looking.is_foreground() {
        Some(LOOKING.into())
    } else {
        let hold = ctx.preferences.hold(plan.now);
        hold.map(|h| format!("{}; an invitation is not deferred", h.reason.describe()))
    }
}

fn push(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    ctx: &UserContext,
    event: &StoredEvent,
    member: &Membership,
    inviter: &str,
) {
    let app_id = party.app.expect("a push belongs to an app");
    let record = plan.open(party, KIND, Some(event.position), Status::Pending, "");
    let id = record.id.clone();
    let subject = Subject {
        tenant: party.tenant,
        user: party.user,
        app_id,
        app,
        kind: KIND,
        notification_id: &id,
        conversation: party.conversation,
    };
    let expires_at = plan.now + Timing::of(&app.rules).ttl;
    let facts = Facts {
        position: Some(event.position),
        unread: member.unread,
        ..Facts::about(Some(event), ctx, app_id, plan.now, expires_at)
    };
    let locale = compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id);
    let push = compose::invitation(&subject, &facts, inviter, locale);
    let reason = format!("{inviter} added the user while they were away: pushed at once");
    dispatch::dispatch(plan, record, &subject, push, ctx, &[], reason);
}
