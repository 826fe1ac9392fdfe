//! What happens to one claimed delivery, in order:
//! 1. its push expired → settled `Expired`, never sent;
//! 2. its app (with secrets, from the cache) is gone → `Failed` ("app deleted"); its channel is
//!    not configured on this server → `Failed`;
//! 3. it waits for its lane's turn ([`super::order`]: attempts per target and collapse key go
//!    one at a time, oldest first) within the worker's patience, else it is `Postpone`d
//!    briefly; a newer delivery of its lane was already attempted → `Cancelled` (superseded),
//!    never sent;
//! 4. admission ([`super::admission`]) refuses it: the endpoint is disabled or its circuit is
//!    open → `Postpone`d to when it may go (no attempt counted), or `Expired` if that is past
//!    the push's TTL; the tenant's bulkhead is full or no endpoint slot came free in time →
//!    postponed briefly;
//! 5. the channel is called under `delivery.attempt_timeout_ms` (a timeout is retryable), and
//!    the outcome feeds the endpoint's breaker and health;
//! 6. the outcome is settled ([`super::settle::settlement_for`]): `Delivered`; retryable →
//!    `Retry` after the backoff if the app retries, attempts remain and the retry comes before
//!    the push expires, else `GaveUp`; invalid target → `InvalidTarget` (the store removes the
//!    device); permanent → `Failed`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use herald_engine::app::AppConfig;
use herald_engine::delivery::{Channel, Settlement};
use herald_engine::push::{Delivery, DeliveryOutcome};
use herald_tenancy::apps::AppLookup;
use time::OffsetDateTime;

use super::admission::Patience;
use super::order::{BEHIND, Place, SUPERSEDED};
use super::settle::{expired, not_attempted, refused, settlement_for, wait};
use super::worker::Ctx;
use super::{DeliveryCore, ms};

/// What to settle; `None` leaves the delivery leased (the store could not be read). `place` is
/// the delivery in its lane, entered when it was claimed.
pub(super) async fn decide(ctx: &Ctx, d: &Delivery, place: &mut Place) -> Option<Settlement> {
    let now = ctx.now();
    if d.push.expires_at <= now {
        return Some(expired("the push's TTL ran out before delivery"));
    }
    let (app, channel) = match resolve(ctx, d, now).await {
        Ok(found) => found,
        Err(settlement) => return settlement,
    };
    Some(ctx.core.deliver(d, &app, channel.as_ref(), place).await)
}

impl DeliveryCore {
    /// Steps 3 to 6 of the module documentation for a delivery whose app and channel are
    /// known.
    pub(super) async fn deliver(
        &self,
        d: &Delivery,
        app: &AppConfig,
        channel: &dyn Channel,
        place: &mut Place,
    ) -> Settlement {
        let patience = Patience::worker(self);
        if !place.turn(patience.deadline()).await {
            return wait(d, self.clock.now() + ms(self.settings.poll_ms), BEHIND);
        }
        if place.superseded() {
            return Settlement::Cancelled {
                reason: SUPERSEDED.to_string(),
            };
        }
        let policy = &app.delivery;
        let key = channel.endpoint_key(d, app);
        let admitted = match self.admit(d, key, policy, patience).await {
            Ok(admitted) => admitted,
            Err(why) => return refused(d, &why),
        };
        let timeout = StdDuration::from_millis(self.settings.attempt_timeout_ms);
        let (attempt, done) = self.attempt(admitted, channel, d, app, timeout).await;
        // A permanent refusal, or a request the provider gave back unprocessed, left nothing at
        // the provider to be replaced by an older push.
        if !matches!(
            attempt.outcome,
            DeliveryOutcome::Permanent { .. } | DeliveryOutcome::Unsent { .. }
        ) {
            place.attempted();
        }
        settlement_for(attempt, d, policy, done, rand::random::<f64>())
    }
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
