//! Timers and presence: firing pushes that waited (grace delay, coalesce window, quiet hours),
//! sending scheduled proactive notifications, and cancelling what waits when a user comes back.
//! Also the shared last step of every send: `dispatch`.

use herald_engine::app::AppConfig;
use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
use herald_engine::notify::record::{NotificationRecord, Status};
use herald_engine::notify::store::{ThreadKey, UserContext};
use herald_engine::notify::timing::{self, DigestStep, DueStep, Timing};
use herald_engine::push::{Push, PushKind};
use herald_engine::store::StoreError;

use crate::notify::step::Step;
use herald_engine::notify::compose::{self, Facts, Subject};

/// Hands `push` to the delivery core for every target of the subject and records the
/// decision. Answers whether anything could carry it.
pub fn dispatch(
    step: &mut Step<'_>,
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
            step.now,
        );
        step.record(record);
        return false;
    }
    let deliveries = compose::deliveries(subject, &push, targets);
    let count = deliveries.len();
    step.commit.deliveries.extend(deliveries);
    record.push = Some(push);
    record.note(
        Status::Sent,
        format!("{reason}; handed to the delivery core for {count} target(s)"),
        step.now,
    );
    step.record(record);
    true
}

pub async fn send_new_message(
    step: &mut Step<'_>,
    record: NotificationRecord,
    ctx: &UserContext,
    app_id: &AppId,
    app: &AppConfig,
    conversation: &ConversationId,
    facts: &Facts,
) -> Result<(), StoreError> {
    let tenant = record.tenant_id.clone();
    let user = record.user_id.clone();
    let lines = usize::from(app.content.transcript_lines).max(1);
    let position = facts.position.unwrap_or(0);
    let recent = step
        .recent_messages(&tenant, conversation, position, lines)
        .await?;
    let subject = Subject {
        tenant: &tenant,
        user: &user,
        app_id,
        app,
        kind: PushKind::NewMessage,
        notification_id: &record.id.clone(),
        conversation: Some(conversation),
    };
    let push = compose::new_message(
        &subject,
        facts,
        &recent,
        compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id),
    );
    let reason = format!(
        "the user is away: one push for {} message(s)",
        facts.message_count
    );
    dispatch(step, record, &subject, push, ctx, &[], reason);
    Ok(())
}

/// Fires every thread whose timer is due.
pub async fn fire_threads(step: &mut Step<'_>, limit: usize) -> Result<usize, StoreError> {
    let due = step.state.notify.due_threads(step.now, limit).await?;
    step.prefetch_threads(&due).await?;
    for key in &due {
        fire_thread(step, key).await?;
    }
    Ok(due.len())
}

async fn fire_thread(step: &mut Step<'_>, key: &ThreadKey) -> Result<(), StoreError> {
    let state = step.state;
    let ctx = step
        .user_context(&key.tenant, &key.user, Some(&key.conversation))
        .await?;
    let Some(mut thread) = ctx
        .threads
        .get(&(key.app.clone(), key.conversation.clone()))
        .cloned()
    else {
        return Ok(());
    };
    if let Some(pending) = thread.pending.as_ref().filter(|p| p.due_at <= step.now) {
        step.fired("push", pending.due_at);
    }
    let apps = state.apps.tenant(&key.tenant).await?;
    let Some((_, app)) = apps.iter().find(|(id, _)| *id == key.app) else {
        // The app was deleted: nothing can carry what waited — a push or an email digest.
        // Left on the thread, a due digest would be due again at every round, for ever.
        let push = timing::on_foreground(&mut thread);
        let digest = thread.digest.take().map(|d| d.notification_id);
        for id in push.into_iter().chain(digest) {
            if let Some(mut r) = step.load_record(&key.tenant, &id).await? {
                r.note(Status::Cancelled, "the app was deleted", step.now);
                step.record(r);
            }
        }
        step.commit.threads.push((key.clone(), thread));
        return Ok(());
    };
    let membership = step
        .membership(&key.tenant, &key.conversation, &key.user)
        .await?;
    let unread = membership.as_ref().map_or(0, |m| m.unread);
    let mut user_state = ctx.states.get(&key.app).cloned().unwrap_or_default();
    let looking = step.looking(&key.tenant, &key.user);
    let timing = Timing::of(&app.rules);
    match timing::on_due(
        &mut thread,
        &mut user_state,
        looking,
        &ctx.preferences,
        timing,
        unread,
        step.now,
    ) {
        DueStep::Nothing => {}
        DueStep::Expired { notification_id } => {
            note(
                step,
                &key.tenant,
                &notification_id,
                Status::Expired,
                "its TTL ran out before it could be sent",
            )
            .await?
        }
        DueStep::Cancelled {
            notification_id,
            why,
        } => {
            note(
                step,
                &key.tenant,
                &notification_id,
                Status::Cancelled,
                why.describe(),
            )
            .await?
        }
        DueStep::Held(pending) => {
            if let Some(mut r) = step
                .load_record(&key.tenant, &pending.notification_id)
                .await?
            {
                r.note(
                    Status::Pending,
                    format!(
                        "deferred to {}: {}",
                        herald_engine::event::rfc3339(pending.due_at),
                        pending.wait.describe()
                    ),
                    step.now,
                );
                r.due_at = Some(pending.due_at);
                step.record(r);
            }
        }
        DueStep::Send(send) => {
            if let Some(record) = step.load_record(&key.tenant, &send.notification_id).await? {
                let facts = Facts {
                    position: Some(send.latest_position),
                    message_count: send.count,
                    unread,
                    missed_calls: user_state.missed_calls,
                    ..Facts::about(None, &ctx, &key.app, step.now, send.expires_at)
                };
                send_new_message(step, record, &ctx, &key.app, app, &key.conversation, &facts)
                    .await?;
            }
        }
    }
    if let Some(digest) = thread.digest.as_ref().filter(|d| d.due_at <= step.now) {
        step.fired("digest", digest.due_at);
    }
    match timing::on_digest_due(&mut thread, unread, step.now) {
        DigestStep::Nothing => {}
        DigestStep::Cancelled { notification_id } => {
            note(
                step,
                &key.tenant,
                &notification_id,
                Status::Cancelled,
                "everything was read before the email digest was due",
            )
            .await?
        }
        DigestStep::Send(digest) => {
            if let Some(record) = step
                .load_record(&key.tenant, &digest.notification_id)
                .await?
            {
                send_digest(step, record, &ctx, &key.app, app, &key.conversation, unread).await?;
            }
        }
    }
    step.commit.threads.push((key.clone(), thread));
    step.commit.user_states.push((
        key.tenant.clone(),
        key.user.clone(),
        key.app.clone(),
        user_state,
    ));
    Ok(())
}

/// Emails what is still unread in a conversation: one email per conversation.
async fn send_digest(
    step: &mut Step<'_>,
    record: NotificationRecord,
    ctx: &UserContext,
    app_id: &AppId,
    app: &AppConfig,
    conversation: &ConversationId,
    unread: u64,
) -> Result<(), StoreError> {
    const MOST_LINES: u64 = 20;
    let (tenant, user) = (record.tenant_id.clone(), record.user_id.clone());
    let last = step
        .state
        .store
        .get_conversation(&tenant, conversation)
        .await?
        .map_or(0, |c| c.last_position);
    let recent = step
        .state
        .notify
        .recent_messages(&tenant, conversation, last, unread.min(MOST_LINES) as usize)
        .await?;
    let id = record.id.clone();
    let subject = Subject {
        tenant: &tenant,
        user: &user,
        app_id,
        app,
        kind: PushKind::Digest,
        notification_id: &id,
        conversation: Some(conversation),
    };
    let ttl = step.now + Timing::of(&app.rules).ttl;
    let facts = Facts {
        position: recent.last().map(|e| e.position),
        message_count: u32::try_from(unread).unwrap_or(u32::MAX),
        unread,
        ..Facts::about(recent.last(), ctx, app_id, step.now, ttl)
    };
    let push = compose::digest(
        &subject,
        &facts,
        &recent,
        compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id),
    );
    dispatch(
        step,
        record,
        &subject,
        push,
        ctx,
        &[],
        format!("{unread} message(s) still unread after the email delay"),
    );
    Ok(())
}

async fn note(
    step: &mut Step<'_>,
    tenant: &TenantId,
    id: &str,
    status: Status,
    reason: &str,
) -> Result<(), StoreError> {
    if let Some(mut r) = step.load_record(tenant, id).await? {
        r.note(status, reason, step.now);
        step.record(r);
    }
    Ok(())
}

/// The user came back: every push waiting for them is cancelled.
pub async fn foreground(
    step: &mut Step<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<(), StoreError> {
    let ctx = step.user_context(tenant, user, None).await?;
    for ((app, conversation), thread) in ctx.threads {
        let mut thread = thread;
        if let Some(id) = timing::on_foreground(&mut thread) {
            note(
                step,
                tenant,
                &id,
                Status::Cancelled,
                timing::Cancel::UserReturned.describe(),
            )
            .await?;
            let key = ThreadKey {
                tenant: tenant.clone(),
                user: user.clone(),
                app,
                conversation,
            };
            step.commit.threads.push((key, thread));
        }
    }
    Ok(())
}

/// Sends scheduled proactive notifications that are due.
pub async fn fire_scheduled(step: &mut Step<'_>, limit: usize) -> Result<usize, StoreError> {
    let due = step.state.notify.due_notifications(step.now, limit).await?;
    for (tenant, id) in &due {
        let Some(record) = step.load_record(tenant, id).await? else {
            continue;
        };
        if let Some(due_at) = record.due_at {
            step.fired("scheduled", due_at);
        }
        proactive(step, record).await?;
    }
    Ok(due.len())
}

async fn proactive(step: &mut Step<'_>, mut record: NotificationRecord) -> Result<(), StoreError> {
    let (Some(request), Some(app_id)) = (record.proactive.clone(), record.app_id.clone()) else {
        return Ok(());
    };
    let expires_at = record
        .created_at
        .max(record.due_at.unwrap_or(record.created_at))
        + time::Duration::seconds(request.ttl_s as i64);
    if step.now >= expires_at {
        record.note(
            Status::Expired,
            "its TTL ran out before it could be sent",
            step.now,
        );
        step.record(record);
        return Ok(());
    }
    let state = step.state;
    let apps = state.apps.tenant(&record.tenant_id).await?;
    let Some((_, app)) = apps.iter().find(|(id, _)| *id == app_id) else {
        record.note(Status::Failed, "the app was deleted", step.now);
        step.record(record);
        return Ok(());
    };
    let ctx = step
        .user_context(&record.tenant_id, &record.user_id, None)
        .await?;
    if let Some(hold) = ctx.preferences.hold(step.now) {
        record.due_at = Some(hold.until);
        record.note(
            Status::Scheduled,
            format!(
                "deferred to {}: {}",
                herald_engine::event::rfc3339(hold.until),
                hold.reason.describe()
            ),
            step.now,
        );
        step.record(record);
        return Ok(());
    }
    let (tenant, user) = (record.tenant_id.clone(), record.user_id.clone());
    let id = record.id.clone();
    let subject = Subject {
        tenant: &tenant,
        user: &user,
        app_id: &app_id,
        app,
        kind: PushKind::Proactive,
        notification_id: &id,
        conversation: None,
    };
    let facts = Facts::about(None, &ctx, &app_id, step.now, expires_at);
    let mut push = compose::bare(&subject, &facts);
    push.title = Some(request.title.clone());
    push.body = Some(request.body.clone());
    push.data = request.data.clone();
    push.high_priority = false;
    record.due_at = None;
    dispatch(
        step,
        record,
        &subject,
        push,
        &ctx,
        &request.channels,
        "proactive notification".into(),
    );
    Ok(())
}
