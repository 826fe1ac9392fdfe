//! Calls (SPEC §3.3 rule 5): a ringing call pushes at once to every callee who can be rung,
//! and remembers exactly who was; when it stops ringing, exactly they get a silent revocation,
//! and a call nobody took leaves a visible missed call (never for a decliner). A decline by one
//! of several callees stops the ringing for that callee only.

use crate::app::AppConfig;
use crate::event::{CallKind, CallRinging, CallUpdate, StoredEvent};
use crate::ids::TenantId;
use crate::notify::calls::{self, CallState};
use crate::notify::compose::{self, Facts, Subject};
use crate::notify::record::Status;
use crate::notify::store::UserContext;
use crate::notify::timing::Timing;
use crate::push::PushKind;

use super::dispatch::{self, app, candidate_apps};
use super::{Apps, Party, Plan};

/// A revocation lives at least this long, even for a call whose ringing already timed out:
/// the device must still hear that it should stop.
const REVOKE_TTL: time::Duration = time::Duration::seconds(30);

pub(super) fn ringing(
    plan: &mut Plan<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    ringing: &CallRinging,
) {
    let conversation = &event.event.conversation_id;
    let mut call = CallState {
        conversation_id: conversation.clone(),
        caller: ringing.caller.id.clone(),
        callees: ringing.callees.clone(),
        rang: vec![],
        over: false,
        ring_until: plan.now + calls::ring_timeout(ringing),
        caller_name: ringing.caller.name.clone(),
        declined: vec![],
    };
    for callee in ringing.callees.iter().filter(|c| **c != ringing.caller.id) {
        let ctx = plan.user_context(tenant, callee, Some(conversation));
        let party = plan.party(tenant, callee, conversation);
        for (app_id, app) in candidate_apps(apps, &ctx, PushKind::IncomingCall) {
            if ring(plan, party.with_app(app_id), app, &ctx, event, ringing) {
                call.rang.push((callee.clone(), app_id.clone()));
            }
        }
    }
    let id = ringing.call_id.clone();
    plan.commit.calls.push((tenant.clone(), id, call));
}

/// Why a callee's app is not rung, if it is not.
fn refusal(
    plan: &Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    ctx: &UserContext,
) -> Option<String> {
    if app.rules.auto_join_calls {
        Some("the app joins calls automatically: no incoming-call push".to_string())
    } else if party.looking.is_foreground() {
        Some("the user is looking at a live session, which carries the call".to_string())
    } else {
        let hold = ctx.preferences.hold(plan.now);
        hold.map(|h| format!("{}; a ringing call cannot wait", h.reason.describe()))
    }
}

/// Rings one callee in one app; answers whether a push went out.
fn ring(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    ctx: &UserContext,
    event: &StoredEvent,
    ringing: &CallRinging,
) -> bool {
    let app_id = party.app.expect("a call rings in an app");
    let kind = PushKind::IncomingCall;
    let mut record = plan.open(party, kind, Some(event.position), Status::Pending, "");
    if let Some(reason) = refusal(plan, party, app, ctx) {
        record.note(Status::Suppressed, reason, plan.now);
        plan.record(record);
        return false;
    }
    let record_id = record.id.clone();
    let subject = subject(party, app, kind, &record_id);
    let facts = Facts {
        position: Some(event.position),
        call_id: Some(ringing.call_id.clone()),
        ..Facts::about(
            Some(event),
            ctx,
            app_id,
            plan.now,
            plan.now + calls::ring_timeout(ringing),
        )
    };
    let caller = ringing.caller.name.clone();
    let caller_name = caller.unwrap_or_else(|| ringing.caller.id.to_string());
    let locale = compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id);
    let push = compose::call(&subject, &facts, &caller_name, locale);
    let reason = "ringing: pushed at once, without a grace delay".to_string();
    dispatch::dispatch(plan, record, &subject, push, ctx, &[], reason)
}

fn subject<'a>(party: Party<'a>, app: &'a AppConfig, kind: PushKind, id: &'a str) -> Subject<'a> {
    Subject {
        tenant: party.tenant,
        user: party.user,
        app_id: party.app.expect("a push belongs to an app"),
        app,
        kind,
        notification_id: id,
        conversation: party.conversation,
    }
}

/// The call stopped ringing (answered, declined, cancelled, timed out or ended).
pub(super) fn over(
    plan: &mut Plan<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    kind: CallKind,
    update: &CallUpdate,
) {
    let Some(mut call) = plan.call(tenant, &update.call_id) else {
        return;
    };
    let Some(end) = calls::on_end(&mut call, kind, update.by.as_ref()) else {
        return;
    };
    let conversation = &event.event.conversation_id;
    for (user, app_id) in &end.revoke {
        let party = plan.party(tenant, user, conversation);
        if let Some(app) = app(apps, app_id) {
            revoke(plan, party.with_app(app_id), app, &call, event, update);
        }
    }
    for user in &end.missed {
        let party = plan.party(tenant, user, conversation);
        missed(plan, party, apps, &call, event, update);
    }
    let id = update.call_id.clone();
    plan.commit.calls.push((tenant.clone(), id, call));
}

/// The silent push that stops one (user, app) that rang from ringing.
fn revoke(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    app: &AppConfig,
    call: &CallState,
    event: &StoredEvent,
    update: &CallUpdate,
) {
    let ctx = plan.user_context(party.tenant, party.user, party.conversation);
    let app_id = party.app.expect("a revocation belongs to an app");
    let kind = PushKind::RevokedCall;
    let record = plan.open(party, kind, None, Status::Pending, "");
    let record_id = record.id.clone();
    let subject = subject(party, app, kind, &record_id);
    let expires_at = call.ring_until.max(plan.now + REVOKE_TTL);
    let facts = Facts {
        call_id: Some(update.call_id.clone()),
        ..Facts::about(Some(event), &ctx, app_id, plan.now, expires_at)
    };
    let push = compose::bare(&subject, &facts);
    let reason = "the call stopped ringing: dismiss the incoming call".to_string();
    dispatch::dispatch(plan, record, &subject, push, &ctx, &[], reason);
}

/// A missed call for one callee, in every app that can reach them: +1 missed call, and a
/// visible push unless they are looking.
fn missed(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    apps: &Apps,
    call: &CallState,
    event: &StoredEvent,
    update: &CallUpdate,
) {
    let ctx = plan.user_context(party.tenant, party.user, party.conversation);
    let caller_name = call.caller_name.clone();
    let caller_name = caller_name.unwrap_or_else(|| call.caller.to_string());
    for (app_id, app) in candidate_apps(apps, &ctx, PushKind::MissedCall) {
        let party = party.with_app(app_id);
        let mut user_state = ctx.states.get(app_id).cloned().unwrap_or_default();
        user_state.missed_calls += 1;
        let missed_calls = user_state.missed_calls;
        let (t, u) = (party.tenant.clone(), party.user.clone());
        plan.commit
            .user_states
            .push((t, u, app_id.clone(), user_state));
        let kind = PushKind::MissedCall;
        let mut record = plan.open(party, kind, None, Status::Pending, "");
        if party.looking.is_foreground() {
            let reason = "the user is looking at a live session, which shows the missed call";
            record.note(Status::Suppressed, reason, plan.now);
            plan.record(record);
            continue;
        }
        let record_id = record.id.clone();
        let subject = subject(party, app, kind, &record_id);
        let expires_at = plan.now + Timing::of(&app.rules).ttl;
        let facts = Facts {
            call_id: Some(update.call_id.clone()),
            missed_calls,
            ..Facts::about(Some(event), &ctx, app_id, plan.now, expires_at)
        };
        let locale = compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id);
        let push = compose::call(&subject, &facts, &caller_name, locale);
        let reason = "a call nobody answered".to_string();
        dispatch::dispatch(plan, record, &subject, push, &ctx, &[], reason);
    }
}
