//! Web Push health checks (SPEC §2.5): every `health_check_interval_s` each subscription gets a
//! silent push carrying a check id, which the page's service worker acknowledges at
//! `POST /v1/me/devices/{id}/health/{check_id}`. A check not acknowledged within
//! `health_check_timeout_s` marks the subscription unhealthy, and the user's next live session
//! is told to resubscribe.

use herald_engine::notify::record::{NotificationRecord, Status};
use herald_engine::notify::store::HealthCheck;
use herald_engine::push::{PushKind, Target};
use herald_engine::store::StoreError;

use crate::Runtime;
use crate::notify::step::{self, SystemIds};
use herald_engine::notify::NewIds;
use herald_engine::notify::compose::{self, Facts, Subject};
use herald_engine::notify::plan::Planned;

/// Subscriptions checked per app per sweep; the rest wait for the next sweep.
const PER_SWEEP: usize = 256;

/// Sends the due health checks and marks the unanswered ones unhealthy, in one committed step.
pub async fn sweep(state: &Runtime) -> Result<(), StoreError> {
    let now = state.clock.now();
    let mut planned = Planned::default();
    let ids = &mut SystemIds;
    for (tenant, user, device) in state.notify.expire_checks(now).await? {
        metrics::counter!("herald_webpush_unhealthy_total").increment(1);
        tracing::info!(tenant.id = %tenant, user.id = %user, device.id = %device, "web push subscription missed its health check");
    }
    for tenant in state.store.list_tenants().await? {
        let apps = state.apps.tenant(&tenant.id).await?;
        for (app_id, app) in apps.iter() {
            let Some(webpush) = app
                .webpush
                .as_ref()
                .filter(|w| w.health_check_interval_s > 0)
            else {
                continue;
            };
            let checked_before =
                now - time::Duration::seconds(webpush.health_check_interval_s as i64);
            let deadline =
                now + time::Duration::seconds(webpush.health_check_timeout_s.max(1) as i64);
            for device in state
                .notify
                .devices_to_check(&tenant.id, app_id, checked_before, PER_SWEEP)
                .await?
            {
                let mut record = NotificationRecord::new(
                    ids.notification(),
                    tenant.id.clone(),
                    device.user_id.clone(),
                    Some(app_id.clone()),
                    None,
                    PushKind::HealthCheck,
                    None,
                    None,
                    Status::Sent,
                    format!(
                        "health check of subscription {}: it must be acknowledged by {}",
                        device.id,
                        herald_engine::event::rfc3339(deadline)
                    ),
                    now,
                );
                let id = record.id.clone();
                let subject = Subject {
                    tenant: &tenant.id,
                    user: &device.user_id,
                    app_id,
                    app,
                    kind: PushKind::HealthCheck,
                    notification_id: &id,
                    conversation: None,
                };
                let ctx = state
                    .notify
                    .user_context(&tenant.id, &device.user_id, None)
                    .await?;
                let mut push =
                    compose::bare(&subject, &Facts::about(None, &ctx, app_id, now, deadline));
                push.collapse_key = format!("health:{}", device.id);
                push.data.insert("check_id".into(), id.clone());
                push.data.insert("device_id".into(), device.id.to_string());
                record.push = Some(push.clone());
                planned.commit.checks.push(HealthCheck {
                    tenant: tenant.id.clone(),
                    app: app_id.clone(),
                    user: device.user_id.clone(),
                    device: device.id.clone(),
                    check_id: id.clone(),
                    deadline,
                });
                planned.commit.deliveries.extend(compose::deliveries(
                    &subject,
                    &push,
                    vec![Target::Device {
                        device: device.clone(),
                    }],
                    ids,
                ));
                planned.decisions.push((record.status, record.kind));
                planned.commit.records.push(record);
            }
        }
    }
    step::commit(state, planned, now).await
}
