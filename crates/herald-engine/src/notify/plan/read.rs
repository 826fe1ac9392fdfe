//! A read (SPEC §3.4): once it leaves nothing unread in the conversation, what waits is
//! cancelled (the push and the email digest), and a visible push that was shown is cleared by
//! a silent read push.

use crate::event::StoredEvent;
use crate::ids::{AppId, TenantId};
use crate::notify::compose::{self, Facts, Subject};
use crate::notify::record::Status;
use crate::notify::store::UserContext;
use crate::notify::timing::{self, ReadStep, Timing};
use crate::participant::Membership;
use crate::push::PushKind;

use super::dispatch::{self, app};
use super::{Apps, Party, Plan};

pub(super) fn read_by(
    plan: &mut Plan<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    member: &Membership,
) {
    let conversation = &event.event.conversation_id;
    let user = &member.participant.user_id;
    let ctx = plan.user_context(tenant, user, Some(conversation));
    let party = plan.party(tenant, user, conversation);
    for ((app_id, _), thread) in &ctx.threads {
        // A thread of a deleted app is left as it is: its timer cancels what waits.
        if app(apps, app_id).is_none() {
            continue;
        }
        let party = party.with_app(app_id);
        let mut thread = thread.clone();
        let read = timing::on_read(&mut thread, member.unread);
        cancel(plan, tenant, &read);
        if let Some(shown) = &read.invalidate {
            clear(plan, party, apps, &ctx, event, member, shown);
        }
        plan.keep(party.thread_key(), thread, None);
    }
}

/// What waited for the conversation to stay unread: the push and the email digest.
fn cancel(plan: &mut Plan<'_>, tenant: &TenantId, read: &ReadStep) {
    if let Some(id) = &read.cancelled {
        let reason = timing::Cancel::AlreadyRead.describe();
        plan.note(tenant, id, Status::Cancelled, reason);
    }
    if let Some(id) = &read.digest_cancelled {
        let reason = "the conversation was read before the email digest was due";
        plan.note(tenant, id, Status::Cancelled, reason);
    }
}

/// The silent read push that clears what notification `shown` showed.
fn clear(
    plan: &mut Plan<'_>,
    party: Party<'_>,
    apps: &Apps,
    ctx: &UserContext,
    event: &StoredEvent,
    member: &Membership,
    shown: &str,
) {
    let app_id: &AppId = party.app.expect("a read push belongs to an app");
    let Some(app) = app(apps, app_id) else {
        return;
    };
    let record = plan.open(party, PushKind::Read, None, Status::Pending, "");
    let record_id = record.id.clone();
    let subject = Subject {
        tenant: party.tenant,
        user: party.user,
        app_id,
        app,
        kind: PushKind::Read,
        notification_id: &record_id,
        conversation: party.conversation,
    };
    let expires_at = plan.now + Timing::of(&app.rules).ttl;
    let facts = Facts {
        position: Some(member.read_position),
        ..Facts::about(Some(event), ctx, app_id, plan.now, expires_at)
    };
    let push = compose::bare(&subject, &facts);
    let reason = format!("the conversation was read: clearing what notification {shown} showed");
    dispatch::dispatch(plan, record, &subject, push, ctx, &[], reason);
}
