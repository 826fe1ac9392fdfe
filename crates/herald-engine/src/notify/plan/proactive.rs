//! Scheduled proactive notifications (`POST /v1/notifications` with `send_at`): when due, one
//! goes out unless its TTL ran out, its app is gone, or the user is paused or in quiet hours
//! (it then waits for their end, like any push).

use time::OffsetDateTime;

use crate::app::AppConfig;
use crate::event::rfc3339;
use crate::ids::{AppId, TenantId};
use crate::notify::compose::{self, Facts, Subject};
use crate::notify::record::{NotificationRecord, Proactive, Status};
use crate::notify::store::UserContext;
use crate::push::PushKind;

use super::Plan;
use super::dispatch::{self, app};

/// A scheduled notification is due.
pub(super) fn due(plan: &mut Plan<'_>, tenant: &TenantId, id: &str) {
    let Some(record) = plan.take_record(tenant, id) else {
        return;
    };
    if let Some(due_at) = record.due_at {
        plan.fired.push(("scheduled", due_at));
    }
    send(plan, record);
}

fn send(plan: &mut Plan<'_>, mut record: NotificationRecord) {
    let (Some(request), Some(app_id)) = (record.proactive.clone(), record.app_id.clone()) else {
        return;
    };
    // The TTL counts from when it was due, not from when it was asked for.
    let from = record
        .created_at
        .max(record.due_at.unwrap_or(record.created_at));
    let expires_at = from + time::Duration::seconds(request.ttl_s as i64);
    if plan.now >= expires_at {
        let reason = "its TTL ran out before it could be sent";
        record.note(Status::Expired, reason, plan.now);
        plan.record(record);
        return;
    }
    let apps = plan.apps(&record.tenant_id);
    let Some(app) = app(&apps, &app_id) else {
        record.note(Status::Failed, "the app was deleted", plan.now);
        plan.record(record);
        return;
    };
    let ctx = plan.user_context(&record.tenant_id, &record.user_id, None);
    if let Some(hold) = ctx.preferences.hold(plan.now) {
        record.due_at = Some(hold.until);
        let reason = format!(
            "deferred to {}: {}",
            rfc3339(hold.until),
            hold.reason.describe()
        );
        record.note(Status::Scheduled, reason, plan.now);
        plan.record(record);
        return;
    }
    record.due_at = None;
    push(plan, record, &request, (&app_id, app), &ctx, expires_at);
}

/// The push as the request asked for it: its title, body and data, at normal priority, on
/// the channels it named.
fn push(
    plan: &mut Plan<'_>,
    record: NotificationRecord,
    request: &Proactive,
    (app_id, app): (&AppId, &AppConfig),
    ctx: &UserContext,
    expires_at: OffsetDateTime,
) {
    let (tenant, user, id) = (
        record.tenant_id.clone(),
        record.user_id.clone(),
        record.id.clone(),
    );
    let subject = Subject {
        tenant: &tenant,
        user: &user,
        app_id,
        app,
        kind: PushKind::Proactive,
        notification_id: &id,
        conversation: None,
    };
    let facts = Facts::about(None, ctx, app_id, plan.now, expires_at);
    let mut push = compose::bare(&subject, &facts);
    push.title = Some(request.title.clone());
    push.body = Some(request.body.clone());
    push.data = request.data.clone();
    push.high_priority = false;
    let reason = "proactive notification".to_string();
    let channels = &request.channels;
    dispatch::dispatch(plan, record, &subject, push, ctx, channels, reason);
}
