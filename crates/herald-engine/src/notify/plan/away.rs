//! Failing open (SPEC §5.1): the user turned out to be away since a moment a live session
//! still seemed to be looking — it dropped and did not come back within the reconnect grace,
//! or fell silent until its heartbeats ran out. Every message suppressed since then because
//! of it is decided again, as if the user had been away all along (see
//! `timing::on_away`); an email digest starts from that moment too.

use crate::event::rfc3339;
use crate::ids::{TenantId, UserId};
use crate::notify::Looking;
use crate::notify::record::Status;
use crate::notify::store::ThreadKey;
use crate::notify::timing::{self, AwayStep, Timing};
use time::OffsetDateTime;

use super::dispatch::app;
use super::{Party, Plan, message};

pub(super) fn away(plan: &mut Plan<'_>, tenant: &TenantId, user: &UserId, since: OffsetDateTime) {
    // Back in the foreground meanwhile: whatever was suppressed was seen after all.
    if plan.looking(tenant, user).is_foreground() {
        return;
    }
    let ctx = plan.user_context(tenant, user, None);
    let apps = plan.apps(tenant);
    for ((app_id, conversation), mut thread) in ctx.threads.clone() {
        if thread.looked.is_empty() {
            continue;
        }
        let key = ThreadKey {
            tenant: tenant.clone(),
            user: user.clone(),
            app: app_id.clone(),
            conversation: conversation.clone(),
        };
        let Some(app) = app(&apps, &app_id) else {
            // Nothing can carry them any more; they stay suppressed.
            thread.looked.clear();
            plan.keep(key, thread, None);
            continue;
        };
        let party = Party {
            tenant,
            user,
            app: Some(&app_id),
            conversation: Some(&conversation),
            looking: Looking::Away { since: Some(since) },
        };
        let user_state = ctx.states.get(&app_id).cloned().unwrap_or_default();
        let timing = Timing::of(&app.rules);
        let decided = timing::on_away(&mut thread, &user_state, since, timing, plan.now);
        let first = decided.iter().map(|(looked, _)| looked.position).min();
        for (looked, step) in decided {
            note(plan, party, &looked.notification_id, step, since);
        }
        if let Some(position) = first {
            message::email(plan, party, app, &ctx, &mut thread, position, since);
        }
        plan.keep(key, thread, None);
    }
}

/// Continues a suppression's record with what it was decided again to be.
fn note(plan: &mut Plan<'_>, party: Party<'_>, id: &str, step: AwayStep, since: OffsetDateTime) {
    let Some(mut r) = plan.take_record(party.tenant, id) else {
        return;
    };
    let went = format!(
        "decided again: the live session that was looking went at {} and the user did not come back",
        rfc3339(since)
    );
    match step {
        AwayStep::Waiting(pending) => {
            let reason = format!("{went}; {}", pending.wait.describe());
            r.note(Status::Pending, reason, plan.now);
            r.due_at = Some(pending.due_at);
        }
        AwayStep::Folded { into } => {
            let reason = format!(
                "{went}; folded into notification {into}, which will carry the latest message"
            );
            r.note(Status::Coalesced, reason, plan.now);
        }
    }
    r.looking = Some(party.looking);
    plan.record(r);
}
