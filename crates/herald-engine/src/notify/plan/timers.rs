//! Timers and presence: firing a thread whose push (grace delay, coalesce window, quiet hours)
//! or email digest is due, and cancelling what waits when a user comes back.

use crate::app::AppConfig;
use crate::event::rfc3339;
use crate::ids::{TenantId, UserId};
use crate::notify::compose::Facts;
use crate::notify::record::Status;
use crate::notify::store::{ThreadKey, UserContext};
use crate::notify::timing::{self, DigestStep, DueStep, Pending, Thread, Timing, UserState};

use super::Plan;
use super::dispatch::{self, app};

/// What a thread's due timer means: the push that waited, then the email digest.
pub(super) fn due_thread(plan: &mut Plan<'_>, key: &ThreadKey) {
    let ctx = plan.user_context(&key.tenant, &key.user, Some(&key.conversation));
    let at = (key.app.clone(), key.conversation.clone());
    let Some(mut thread) = ctx.threads.get(&at).cloned() else {
        return;
    };
    if let Some(pending) = thread.pending.as_ref().filter(|p| p.due_at <= plan.now) {
        plan.fired.push(("push", pending.due_at));
    }
    let apps = plan.apps(&key.tenant);
    let Some(app) = app(&apps, &key.app) else {
        app_deleted(plan, key, thread);
        return;
    };
    let member = plan.membership(key);
    let unread = member.map_or(0, |m| m.unread);
    // Someone no longer in the conversation has nothing left to be told there.
    let read = member.map_or(u64::MAX, |m| m.read_position);
    let mut user_state = ctx.states.get(&key.app).cloned().unwrap_or_default();
    push_due(
        plan,
        key,
        app,
        &ctx,
        &mut thread,
        &mut user_state,
        (unread, read),
    );
    if let Some(digest) = thread.digest.as_ref().filter(|d| d.due_at <= plan.now) {
        plan.fired.push(("digest", digest.due_at));
    }
    digest_due(plan, key, app, &ctx, &mut thread, unread);
    plan.keep(key.clone(), thread, Some(user_state));
}

/// The app was deleted: nothing can carry what waited — a push or an email digest. Left on
/// the thread, a due digest would be due again at every round, for ever.
fn app_deleted(plan: &mut Plan<'_>, key: &ThreadKey, mut thread: Thread) {
    let push = timing::on_foreground(&mut thread);
    let digest = thread.digest.take().map(|d| d.notification_id);
    for id in push.into_iter().chain(digest) {
        plan.note(&key.tenant, &id, Status::Cancelled, "the app was deleted");
    }
    plan.keep(key.clone(), thread, None);
}

fn push_due(
    plan: &mut Plan<'_>,
    key: &ThreadKey,
    app: &AppConfig,
    ctx: &UserContext,
    thread: &mut Thread,
    user_state: &mut UserState,
    (unread, read): (u64, u64),
) {
    let looking = plan.looking(&key.tenant, &key.user);
    let timing = Timing::of(&app.rules);
    let prefs = &ctx.preferences;
    let tenant = &key.tenant;
    match timing::on_due(thread, user_state, looking, prefs, timing, read, plan.now) {
        DueStep::Nothing => {}
        DueStep::Expired { notification_id } => {
            let reason = "its TTL ran out before it could be sent";
            plan.note(tenant, &notification_id, Status::Expired, reason);
        }
        DueStep::Cancelled {
            notification_id,
            why,
        } => plan.note(tenant, &notification_id, Status::Cancelled, why.describe()),
        DueStep::Held(pending) => held(plan, tenant, &pending),
        DueStep::Send(send) => {
            let Some(record) = plan.take_record(tenant, &send.notification_id) else {
                return;
            };
            let facts = Facts {
                position: Some(send.latest_position),
                first_position: Some(send.first_position),
                message_count: send.count,
                unread,
                missed_calls: user_state.missed_calls,
                ..Facts::about(None, ctx, &key.app, plan.now, send.expires_at)
            };
            let conversation = &key.conversation;
            dispatch::new_message(plan, record, ctx, &key.app, app, conversation, &facts);
        }
    }
}

/// A push due inside pause or quiet hours waits for their end (SPEC §3.2 rule 4).
fn held(plan: &mut Plan<'_>, tenant: &TenantId, pending: &Pending) {
    if let Some(mut r) = plan.take_record(tenant, &pending.notification_id) {
        let until = rfc3339(pending.due_at);
        let reason = format!("deferred to {until}: {}", pending.wait.describe());
        r.note(Status::Pending, reason, plan.now);
        r.due_at = Some(pending.due_at);
        plan.record(r);
    }
}

/// SPEC §3.3 rule 6: a due digest goes only if something is still unread.
fn digest_due(
    plan: &mut Plan<'_>,
    key: &ThreadKey,
    app: &AppConfig,
    ctx: &UserContext,
    thread: &mut Thread,
    unread: u64,
) {
    match timing::on_digest_due(thread, unread, plan.now) {
        DigestStep::Nothing => {}
        DigestStep::Cancelled { notification_id } => {
            let reason = "everything was read before the email digest was due";
            plan.note(&key.tenant, &notification_id, Status::Cancelled, reason);
        }
        DigestStep::Send(digest) => {
            if let Some(record) = plan.take_record(&key.tenant, &digest.notification_id) {
                let conversation = &key.conversation;
                dispatch::digest(plan, record, ctx, &key.app, app, conversation, unread);
            }
        }
    }
}

/// The user came back: every push waiting for them is cancelled (SPEC §3.3 rule 2).
pub(super) fn foreground(plan: &mut Plan<'_>, tenant: &TenantId, user: &UserId) {
    let ctx = plan.user_context(tenant, user, None);
    for ((app, conversation), mut thread) in ctx.threads {
        if let Some(id) = timing::on_foreground(&mut thread) {
            let reason = timing::Cancel::UserReturned.describe();
            plan.note(tenant, &id, Status::Cancelled, reason);
            let key = ThreadKey {
                tenant: tenant.clone(),
                user: user.clone(),
                app,
                conversation,
            };
            plan.keep(key, thread, None);
        }
    }
}
