//! What happens to one claimed delivery, in order:
//! 1. its push expired → settled `Expired`, never sent;
//! 2. its app (with secrets, from the cache) is gone → `Failed` ("app deleted"); its channel is
//!    not configured on this server → `Failed`;
//! 3. admission ([`super::admission`]) refuses it: the endpoint is disabled or its circuit is
//!    open → `Postpone`d to when it may go (no attempt counted), or `Expired` if that is past
//!    the push's TTL; the tenant's bulkhead is full or no endpoint slot came free in time →
//!    postponed briefly;
//! 4. the channel is called under `delivery.attempt_timeout_ms` (a timeout is retryable), and
//!    the outcome feeds the endpoint's breaker and health;
//! 5. the outcome is settled ([`super::settle::settlement_for`]): `Delivered`; retryable →
//!    `Retry` after the backoff if the app retries, attempts remain and the retry comes before
//!    the push expires, else `GaveUp`; invalid target → `InvalidTarget` (the store removes the
//!    device); permanent → `Failed`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use herald_engine::app::AppConfig;
use herald_engine::delivery::{Channel, Settlement};
use herald_engine::push::Delivery;
use herald_tenancy::apps::AppLookup;
use time::OffsetDateTime;

use super::admission::Patience;
use super::settle::{expired, not_attempted, refused, settlement_for};
use super::worker::Ctx;

/// What to settle; `None` leaves the delivery leased (the store could not be read).
pub(super) async fn decide(ctx: &Ctx, d: &Delivery) -> Option<Settlement> {
    let now = ctx.now();
    if d.push.expires_at <= now {
        return Some(expired("the push's TTL ran out before delivery"));
    }
    let (app, channel) = match resolve(ctx, d, now).await {
        Ok(found) => found,
        Err(settlement) => return settlement,
    };
    let policy = &app.delivery;
    let key = channel.endpoint_key(d, &app);
    let core = &ctx.core;
    let admitted = match core.admit(d, key, policy, Patience::worker(core)).await {
        Ok(admitted) => admitted,
        Err(why) => return Some(refused(d, &why)),
    };
    let timeout = StdDuration::from_millis(core.settings.attempt_timeout_ms);
    let (attempt, done) = core
        .attempt(admitted, channel.as_ref(), d, &app, timeout)
        .await;
    Some(settlement_for(
        attempt,
        d,
        policy,
        done,
        rand::random::<f64>(),
    ))
}

/// The delivery's app (with secrets) and channel, or what to settle without them.
async fn resolve(
    ctx: &Ctx,
    d: &Delivery,
    now: OffsetDateTime,
) -> Result<(Arc<AppConfig>, Arc<dyn Channel>), Option<Settlement>> {
    let app = match ctx.state.apps.get(&d.tenant_id, &d.app_id).await {
        AppLookup::Found(app) => app,
        AppLookup::Gone => return Err(Some(Settlement::Failed(not_attempted(now, "app deleted")))),
        AppLookup::Unavailable(why) => {
            tracing::warn!(tenant.id = %d.tenant_id, app.id = %d.app_id, delivery.id = %d.id, why, "the app of a delivery cannot be read; retried after the lease");
            return Err(None);
        }
    };
    let Some(channel) = ctx.state.channels.get(&d.channel).cloned() else {
        let reason = format!("no channel `{}` is configured on this server", d.channel);
        return Err(Some(Settlement::Failed(not_attempted(now, &reason))));
    };
    Ok((app, channel))
}
