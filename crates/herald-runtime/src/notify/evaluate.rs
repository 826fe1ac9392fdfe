//! Evaluating one event from the outbox: who hears about it, when, and what it says.

use herald_engine::event::{CallKind, CallRinging, CallUpdate, EventBody, StoredEvent};
use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
use herald_engine::notify::calls::{self, CallState};
use herald_engine::notify::record::{NotificationRecord, Status};
use herald_engine::notify::store::{OutboxItem, ThreadKey, UserContext};
use herald_engine::notify::timing::{self, MessageStep, Timing};
use herald_engine::notify::{Looking, who};
use herald_engine::participant::Membership;
use herald_engine::push::PushKind;
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::notify::step::{Prefetched, Step};
use herald_engine::notify::compose::{self, Facts, Subject};
use herald_tenancy::apps::Apps;

/// Evaluates one outbox event, read by [`Step::prefetch`] (`None`: it or its conversation is
/// gone, and there is nothing to decide).
pub async fn event(
    step: &mut Step<'_>,
    item: &OutboxItem,
    inputs: Option<Prefetched>,
) -> Result<(), StoreError> {
    step.commit.evaluated.push(item.seq);
    let state = step.state;
    let Some(Prefetched {
        event,
        conversation,
    }) = inputs
    else {
        return Ok(());
    };
    let apps = state.apps.tenant(&item.tenant).await?;
    let members = &conversation.participants;
    match &event.event.body {
        EventBody::MessageCreated(_) | EventBody::Notice(..) => {
            for member in members {
                pushable(step, &item.tenant, &apps, &event, member).await?;
            }
        }
        EventBody::MessageRead(read) => {
            if let Some(member) = members
                .iter()
                .find(|m| m.participant.user_id == read.reader_id)
            {
                read_by(step, &item.tenant, &apps, &event, member).await?;
            }
        }
        EventBody::CallRinging(ringing) => {
            call_ringing(step, &item.tenant, &apps, &event, ringing).await?
        }
        EventBody::Call(kind, update) => {
            call_over(step, &item.tenant, &apps, &event, *kind, update).await?
        }
        EventBody::ParticipantJoined(_) | EventBody::ParticipantLeft(_) => {}
    }
    Ok(())
}

/// Apps that could reach the user with `kind`; each app decides by its own rules.
fn candidate_apps<'a>(
    apps: &'a Apps,
    ctx: &UserContext,
    kind: PushKind,
) -> Vec<&'a (AppId, std::sync::Arc<herald_engine::app::AppConfig>)> {
    apps.iter()
        .filter(|(id, app)| compose::reachable(id, app, &ctx.devices, kind))
        .collect()
}

#[expect(
    clippy::too_many_arguments,
    reason = "a record's identity has this many parts"
)]
fn new_record(
    tenant: &TenantId,
    user: &UserId,
    app: Option<&AppId>,
    conversation: Option<&ConversationId>,
    kind: PushKind,
    position: Option<u64>,
    looking: Looking,
    status: Status,
    reason: impl Into<String>,
    now: OffsetDateTime,
) -> NotificationRecord {
    NotificationRecord::new(
        Step::new_id(),
        tenant.clone(),
        user.clone(),
        app.cloned(),
        conversation.cloned(),
        kind,
        position,
        Some(looking),
        status,
        reason,
        now,
    )
}

async fn pushable(
    step: &mut Step<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    member: &Membership,
) -> Result<(), StoreError> {
    let user = &member.participant.user_id;
    if event.event.body.actor_id() == Some(user) {
        return Ok(());
    }
    let conversation = &event.event.conversation_id;
    let ctx = step.user_context(tenant, user, Some(conversation)).await?;
    let looking = step.looking(tenant, user);
    let candidates = candidate_apps(apps, &ctx, PushKind::NewMessage);
    if candidates.is_empty() {
        let reason = "the user has no device registered in any app, and no app has a webhook for new messages";
        let record = new_record(
            tenant,
            user,
            None,
            Some(conversation),
            PushKind::NewMessage,
            Some(event.position),
            looking,
            Status::Suppressed,
            reason,
            step.now,
        );
        step.record(record);
        return Ok(());
    }
    for (app_id, app) in candidates {
        let now = step.now;
        let record = |status, reason: String| {
            new_record(
                tenant,
                user,
                Some(app_id),
                Some(conversation),
                PushKind::NewMessage,
                Some(event.position),
                looking,
                status,
                reason,
                now,
            )
        };
        if let Err(exclusion) = who::check(&event.event.body, &member.participant, &app.rules) {
            let r = record(Status::Suppressed, exclusion.describe());
            step.record(r);
            continue;
        }
        let key = ThreadKey {
            tenant: tenant.clone(),
            user: user.clone(),
            app: app_id.clone(),
            conversation: conversation.clone(),
        };
        let mut thread = ctx
            .threads
            .get(&(app_id.clone(), conversation.clone()))
            .cloned()
            .unwrap_or_default();
        let mut user_state = ctx.states.get(app_id).cloned().unwrap_or_default();
        let new_id = Step::new_id();
        let decided = timing::on_message(
            &mut thread,
            &mut user_state,
            looking,
            &ctx.preferences,
            Timing::of(&app.rules),
            event.position,
            new_id.clone(),
            step.now,
        );
        match decided {
            MessageStep::Foreground => {
                let r = record(
                    Status::Suppressed,
                    "the user is looking at a live session, which carries the event".into(),
                );
                step.record(r);
            }
            MessageStep::Folded { into } => {
                let r = record(
                    Status::Coalesced,
                    format!(
                        "folded into notification {into}, which is waiting and will carry the latest message"
                    ),
                );
                step.record(r);
            }
            MessageStep::Waiting(pending) => {
                let mut r = record(Status::Pending, pending.wait.describe().into());
                r.id = pending.notification_id.clone();
                r.due_at = Some(pending.due_at);
                step.record(r);
            }
            MessageStep::Send(send) => {
                let mut r = record(Status::Pending, "due at once".into());
                r.id = send.notification_id.clone();
                let facts = Facts {
                    position: Some(send.latest_position),
                    message_count: send.count,
                    unread: member.unread,
                    missed_calls: user_state.missed_calls,
                    ..Facts::about(Some(event), &ctx, app_id, step.now, send.expires_at)
                };
                super::timers::send_new_message(step, r, &ctx, app_id, app, conversation, &facts)
                    .await?;
            }
        }
        if app.smtp.is_some() && ctx.email.is_some() {
            let delay = time::Duration::milliseconds(app.rules.email_delay_ms as i64);
            if let Some(digest) = timing::on_message_email(
                &mut thread,
                looking,
                delay,
                event.position,
                Step::new_id(),
                step.now,
            ) {
                let mut r = new_record(
                    tenant,
                    user,
                    Some(app_id),
                    Some(conversation),
                    PushKind::Digest,
                    Some(event.position),
                    looking,
                    Status::Pending,
                    "an email digest waits the app's email delay; it goes only if the conversation is still unread then",
                    step.now,
                );
                r.id = digest.notification_id;
                r.due_at = Some(digest.due_at);
                step.record(r);
            }
        }
        step.commit.threads.push((key, thread));
        step.commit
            .user_states
            .push((tenant.clone(), user.clone(), app_id.clone(), user_state));
    }
    Ok(())
}

async fn read_by(
    step: &mut Step<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    member: &Membership,
) -> Result<(), StoreError> {
    let conversation = &event.event.conversation_id;
    let user = &member.participant.user_id;
    let ctx = step.user_context(tenant, user, Some(conversation)).await?;
    let looking = step.looking(tenant, user);
    for ((app_id, _), thread) in &ctx.threads {
        let Some((_, app)) = apps.iter().find(|(id, _)| id == app_id) else {
            continue;
        };
        let mut thread = thread.clone();
        let read = timing::on_read(&mut thread, member.unread);
        if let Some(id) = &read.cancelled
            && let Some(mut r) = step.load_record(tenant, id).await?
        {
            r.note(
                Status::Cancelled,
                timing::Cancel::AlreadyRead.describe(),
                step.now,
            );
            step.record(r);
        }
        if let Some(id) = &read.digest_cancelled
            && let Some(mut r) = step.load_record(tenant, id).await?
        {
            r.note(
                Status::Cancelled,
                "the conversation was read before the email digest was due",
                step.now,
            );
            step.record(r);
        }
        if let Some(shown) = &read.invalidate {
            let record = new_record(
                tenant,
                user,
                Some(app_id),
                Some(conversation),
                PushKind::Read,
                None,
                looking,
                Status::Pending,
                "",
                step.now,
            );
            let record_id = record.id.clone();
            let subject = Subject {
                tenant,
                user,
                app_id,
                app,
                kind: PushKind::Read,
                notification_id: &record_id,
                conversation: Some(conversation),
            };
            let facts = Facts {
                position: Some(member.read_position),
                ..Facts::about(
                    Some(event),
                    &ctx,
                    app_id,
                    step.now,
                    step.now + Timing::of(&app.rules).ttl,
                )
            };
            let push = compose::bare(&subject, &facts);
            let reason =
                format!("the conversation was read: clearing what notification {shown} showed");
            super::timers::dispatch(step, record, &subject, push, &ctx, &[], reason);
        }
        let key = ThreadKey {
            tenant: tenant.clone(),
            user: user.clone(),
            app: app_id.clone(),
            conversation: conversation.clone(),
        };
        step.commit.threads.push((key, thread));
    }
    Ok(())
}

async fn call_ringing(
    step: &mut Step<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    ringing: &CallRinging,
) -> Result<(), StoreError> {
    let conversation = &event.event.conversation_id;
    let ring = calls::ring_timeout(ringing);
    let mut call = CallState {
        conversation_id: conversation.clone(),
        caller: ringing.caller.id.clone(),
        callees: ringing.callees.clone(),
        rang: vec![],
        over: false,
        ring_until: step.now + ring,
        caller_name: ringing.caller.name.clone(),
    };
    let caller_name = ringing
        .caller
        .name
        .clone()
        .unwrap_or_else(|| ringing.caller.id.to_string());
    for callee in ringing.callees.iter().filter(|c| **c != ringing.caller.id) {
        let ctx = step
            .user_context(tenant, callee, Some(conversation))
            .await?;
        let looking = step.looking(tenant, callee);
        for (app_id, app) in candidate_apps(apps, &ctx, PushKind::IncomingCall) {
            let mut record = new_record(
                tenant,
                callee,
                Some(app_id),
                Some(conversation),
                PushKind::IncomingCall,
                Some(event.position),
                looking,
                Status::Pending,
                "",
                step.now,
            );
            let record_id = record.id.clone();
            let refusal = if app.rules.auto_join_calls {
                Some("the app joins calls automatically: no incoming-call push".to_string())
            } else if looking.is_foreground() {
                Some("the user is looking at a live session, which carries the call".to_string())
            } else {
                ctx.preferences
                    .hold(step.now)
                    .map(|h| format!("{}; a ringing call cannot wait", h.reason.describe()))
            };
            if let Some(reason) = refusal {
                record.note(Status::Suppressed, reason, step.now);
                step.record(record);
                continue;
            }
            let subject = Subject {
                tenant,
                user: callee,
                app_id,
                app,
                kind: PushKind::IncomingCall,
                notification_id: &record_id,
                conversation: Some(conversation),
            };
            let facts = Facts {
                position: Some(event.position),
                call_id: Some(ringing.call_id.clone()),
                ..Facts::about(Some(event), &ctx, app_id, step.now, step.now + ring)
            };
            let push = compose::call(
                &subject,
                &facts,
                &caller_name,
                compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id),
            );
            if super::timers::dispatch(
                step,
                record,
                &subject,
                push,
                &ctx,
                &[],
                "ringing: pushed at once, without a grace delay".into(),
            ) {
                call.rang.push((callee.clone(), app_id.clone()));
            }
        }
    }
    step.commit
        .calls
        .push((tenant.clone(), ringing.call_id.clone(), call));
    Ok(())
}

async fn call_over(
    step: &mut Step<'_>,
    tenant: &TenantId,
    apps: &Apps,
    event: &StoredEvent,
    kind: CallKind,
    update: &CallUpdate,
) -> Result<(), StoreError> {
    let conversation = &event.event.conversation_id;
    let Some(mut call) = step.call(tenant, &update.call_id).await? else {
        return Ok(());
    };
    let Some(end) = calls::on_end(&mut call, kind) else {
        return Ok(());
    };
    for (user, app_id) in &end.revoke {
        let Some((_, app)) = apps.iter().find(|(id, _)| id == app_id) else {
            continue;
        };
        let ctx = step.user_context(tenant, user, Some(conversation)).await?;
        let looking = step.looking(tenant, user);
        let record = new_record(
            tenant,
            user,
            Some(app_id),
            Some(conversation),
            PushKind::RevokedCall,
            None,
            looking,
            Status::Pending,
            "",
            step.now,
        );
        let record_id = record.id.clone();
        let subject = Subject {
            tenant,
            user,
            app_id,
            app,
            kind: PushKind::RevokedCall,
            notification_id: &record_id,
            conversation: Some(conversation),
        };
        let facts = Facts {
            call_id: Some(update.call_id.clone()),
            ..Facts::about(
                Some(event),
                &ctx,
                app_id,
                step.now,
                call.ring_until.max(step.now + time::Duration::seconds(30)),
            )
        };
        let push = compose::bare(&subject, &facts);
        super::timers::dispatch(
            step,
            record,
            &subject,
            push,
            &ctx,
            &[],
            "the call stopped ringing: dismiss the incoming call".into(),
        );
    }
    let caller_name = call
        .caller_name
        .clone()
        .unwrap_or_else(|| call.caller.to_string());
    for user in &end.missed {
        let ctx = step.user_context(tenant, user, Some(conversation)).await?;
        let looking = step.looking(tenant, user);
        for (app_id, app) in candidate_apps(apps, &ctx, PushKind::MissedCall) {
            let mut user_state = ctx.states.get(app_id).cloned().unwrap_or_default();
            user_state.missed_calls += 1;
            step.commit.user_states.push((
                tenant.clone(),
                user.clone(),
                app_id.clone(),
                user_state.clone(),
            ));
            let mut record = new_record(
                tenant,
                user,
                Some(app_id),
                Some(conversation),
                PushKind::MissedCall,
                None,
                looking,
                Status::Pending,
                "",
                step.now,
            );
            let record_id = record.id.clone();
            if looking.is_foreground() {
                record.note(
                    Status::Suppressed,
                    "the user is looking at a live session, which shows the missed call",
                    step.now,
                );
                step.record(record);
                continue;
            }
            let subject = Subject {
                tenant,
                user,
                app_id,
                app,
                kind: PushKind::MissedCall,
                notification_id: &record_id,
                conversation: Some(conversation),
            };
            let facts = Facts {
                call_id: Some(update.call_id.clone()),
                missed_calls: user_state.missed_calls,
                ..Facts::about(
                    Some(event),
                    &ctx,
                    app_id,
                    step.now,
                    step.now + Timing::of(&app.rules).ttl,
                )
            };
            let push = compose::call(
                &subject,
                &facts,
                &caller_name,
                compose::locale(ctx.preferences.locale.as_deref(), &ctx.devices, app_id),
            );
            super::timers::dispatch(
                step,
                record,
                &subject,
                push,
                &ctx,
                &[],
                "a call nobody answered".into(),
            );
        }
    }
    step.commit
        .calls
        .push((tenant.clone(), update.call_id.clone(), call));
    Ok(())
}
