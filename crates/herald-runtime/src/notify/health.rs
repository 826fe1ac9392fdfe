//! Web Push health checks (SPEC §2.5): every `health_check_interval_s` each subscription gets a
//! silent push carrying a check id, which the page's service worker acknowledges at
//! `POST /v1/me/devices/{id}/health/{check_id}`. A check not acknowledged within
//! `health_check_timeout_s` marks the subscription unhealthy, and the user's next live session
//! is told to resubscribe. What a check push is lives in `herald_engine::notify::plan::health`;
//! this sweep finds the due subscriptions, loads their users' contexts, and commits.

use herald_engine::notify::plan::health::{self, DueCheck};
use herald_engine::notify::plan::{self, Inputs};
use herald_engine::store::StoreError;

use crate::Runtime;
use crate::notify::step::{self, SystemIds};

/// Subscriptions checked per app per sweep; the rest wait for the next sweep.
const PER_SWEEP: usize = 256;

/// Sends the due health checks and marks the unanswered ones unhealthy, in one committed step.
pub async fn sweep(state: &Runtime) -> Result<(), StoreError> {
    let now = state.clock.now();
    for (tenant, user, device) in state.notify.expire_checks(now).await? {
        metrics::counter!("herald_webpush_unhealthy_total").increment(1);
        tracing::info!(tenant.id = %tenant, user.id = %user, device.id = %device, "web push subscription missed its health check");
    }
    let mut inputs = Inputs::default();
    let mut due = Vec::new();
    for tenant in state.store.list_tenants().await? {
        let apps = state.apps.tenant(&tenant.id).await?;
        for (app_id, app) in apps.iter() {
            let Some(window) = health::check_window(app, now) else {
                continue;
            };
            let devices = state
                .notify
                .devices_to_check(&tenant.id, app_id, window.checked_before, PER_SWEEP)
                .await?;
            due.extend(devices.into_iter().map(|device| DueCheck {
                tenant: tenant.id.clone(),
                app: app_id.clone(),
                device,
                deadline: window.deadline,
            }));
        }
        inputs.apps.insert(tenant.id, apps.as_ref().clone());
    }
    let users = due
        .iter()
        .map(|d| (d.tenant.clone(), d.device.user_id.clone(), None));
    let contexts = step::contexts(state, &inputs, users.collect::<Vec<_>>()).await?;
    inputs.contexts.extend(contexts);
    let planned = plan::health_checks(inputs, &due, now, &mut SystemIds);
    step::commit(state, planned, now).await
}
