//! Web Push health checks (SPEC §2.5): every `health_check_interval_s` each subscription gets
//! a silent push carrying a check id, which must be acknowledged within
//! `health_check_timeout_s`.

use time::{Duration, OffsetDateTime};

use crate::app::AppConfig;
use crate::device::Device;
use crate::event::rfc3339;
use crate::ids::{AppId, TenantId};
use crate::notify::compose::{self, Facts, Subject};
use crate::notify::record::{NotificationRecord, Status};
use crate::notify::store::HealthCheck;
use crate::push::{PushKind, Target};

use super::Plan;
use super::dispatch::app;

/// When an app's subscriptions are due for a check at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckWindow {
    /// Subscriptions last checked before then (or never) are due.
    pub checked_before: OffsetDateTime,
    /// A check sent now must be acknowledged by then.
    pub deadline: OffsetDateTime,
}

/// The app's check window, if it checks its Web Push subscriptions at all.
pub fn check_window(app: &AppConfig, now: OffsetDateTime) -> Option<CheckWindow> {
    let webpush = app
        .webpush
        .as_ref()
        .filter(|w| w.health_check_interval_s > 0)?;
    Some(CheckWindow {
        checked_before: now - Duration::seconds(webpush.health_check_interval_s as i64),
        deadline: now + Duration::seconds(webpush.health_check_timeout_s.max(1) as i64),
    })
}

/// A subscription due for a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    pub tenant: TenantId,
    pub app: AppId,
    pub device: Device,
    pub deadline: OffsetDateTime,
}

/// One silent check push per due subscription, to that subscription only.
pub(super) fn check(plan: &mut Plan<'_>, due: &DueCheck) {
    let apps = plan.apps(&due.tenant);
    let Some(app) = app(&apps, &due.app) else {
        return;
    };
    let (device, user) = (&due.device, &due.device.user_id);
    let id = plan.new_id();
    let subject = Subject {
        tenant: &due.tenant,
        user,
        app_id: &due.app,
        app,
        kind: PushKind::HealthCheck,
        notification_id: &id,
        conversation: None,
    };
    let ctx = plan.user_context(&due.tenant, user, None);
    let facts = Facts::about(None, &ctx, &due.app, plan.now, due.deadline);
    let mut push = compose::bare(&subject, &facts);
    // Its own collapse key: a check never replaces what the user was shown.
    push.collapse_key = format!("health:{}", device.id);
    push.data.insert("check_id".into(), id.clone());
    push.data.insert("device_id".into(), device.id.to_string());
    let target = vec![Target::Device {
        device: device.clone(),
    }];
    let deliveries = compose::deliveries(&subject, &push, target, &mut *plan.ids);
    plan.commit.deliveries.extend(deliveries);
    plan.commit.checks.push(HealthCheck {
        tenant: due.tenant.clone(),
        app: due.app.clone(),
        user: user.clone(),
        device: device.id.clone(),
        check_id: id.clone(),
        deadline: due.deadline,
    });
    let mut record = sent(plan, due, id);
    record.push = Some(push);
    plan.record(record);
}

/// The record of a check sent now, saying by when it must be acknowledged.
fn sent(plan: &Plan<'_>, due: &DueCheck, id: String) -> NotificationRecord {
    let reason = format!(
        "health check of subscription {}: it must be acknowledged by {}",
        due.device.id,
        rfc3339(due.deadline)
    );
    let (tenant, user, app) = (&due.tenant, &due.device.user_id, &due.app);
    NotificationRecord::new(
        id,
        tenant.clone(),
        user.clone(),
        Some(app.clone()),
        None,
        PushKind::HealthCheck,
        None,
        None,
        Status::Sent,
        reason,
        plan.now,
    )
}
