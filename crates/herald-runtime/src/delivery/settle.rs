//! Settlement: how an attempt's outcome (or a refusal) is settled and committed, how an
//! outcome feeds the endpoint's breaker and health ([`observe`]), and the one log line of a
//! delivery that ended without arriving ([`Ended`]).

use herald_engine::app::DeliveryPolicy;
use herald_engine::delivery::{Attempt, Settlement};
use herald_engine::push::{Delivery, DeliveryOutcome, Target};
use time::{Duration, OffsetDateTime};

use super::admission::Refused;
use super::backoff::retry_delay;
use super::breaker::{Class, Settings, classify};
use super::order::Place;
use super::worker::{Ctx, Handling};
use super::{Endpoint, EndpointState, fingerprint, ms};

/// Handles one claimed delivery: decides it, then commits the settlement. `place` (the
/// delivery in its collapse-key lane) is let go after the commit, so the next delivery of the
/// lane goes only once this one's outcome is stored.
pub(super) async fn handle(ctx: &Ctx, delivery: Delivery, handling: Handling, mut place: Place) {
    let Some(settlement) = super::decide::decide(ctx, &delivery, &mut place).await else {
        return;
    };
    drop(handling);
    let outcome = outcome_label(&settlement);
    let pending_again = matches!(
        settlement,
        Settlement::Retry { .. } | Settlement::Postpone { .. }
    );
    let ended = Ended::of(&delivery, &settlement);
    metrics::counter!("herald_deliveries_total", "channel" => delivery.channel.clone(), "outcome" => outcome)
        .increment(1);
    let now = ctx.now();
    match ctx
        .queue
        .settle_delivery(&delivery.tenant_id, &delivery.id, settlement, now)
        .await
    {
        Ok(()) => {
            if !pending_again {
                place.ended();
            }
            match ended {
                Some(ended) => ended.log(&delivery),
                None => tracing::debug!(
                    tenant.id = %delivery.tenant_id,
                    delivery.id = %delivery.id,
                    notification.id = %delivery.notification_id,
                    channel = %delivery.channel,
                    attempt = delivery.attempt,
                    outcome,
                    "delivery settled"
                ),
            }
        }
        Err(e) => tracing::warn!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            error = %e,
            "settling a delivery failed; it is retried after its lease"
        ),
    }
    drop(place);
    if pending_again {
        // The loop may be asleep past this delivery's new due time.
        ctx.core.wake();
    }
}

/// A delivery that ended without arriving, as it is logged: at `warn` when it failed (a
/// permanent failure, or retries given up), at `info` when its target is gone, it expired or
/// it was cancelled (superseded). Ids, the channel, the attempts made and the reason only:
/// never the push's text, a token or an address (a device or webhook endpoint id is fine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ended {
    pub warn: bool,
    pub outcome: &'static str,
    /// Attempts made, this settlement's included.
    pub attempts: u32,
    pub reason: String,
}

/// Longest reason logged, in bytes (rounded down to a character boundary).
const MAX_REASON: usize = 300;

impl Ended {
    /// `None` when the delivery arrived or goes again.
    pub fn of(d: &Delivery, settlement: &Settlement) -> Option<Ended> {
        // `d.attempt` is the number of the attempt this settlement may record.
        let made = d.attempt;
        let before = d.attempt.saturating_sub(1);
        let (warn, attempts, reason) = match settlement {
            Settlement::Delivered(_) | Settlement::Retry { .. } | Settlement::Postpone { .. } => {
                return None;
            }
            Settlement::Failed(a) => (
                true,
                made,
                a.outcome.reason().unwrap_or("delivered").to_string(),
            ),
            Settlement::GaveUp(a) => (
                true,
                made,
                a.outcome.reason().unwrap_or("delivered").to_string(),
            ),
            Settlement::InvalidTarget(a) => (
                false,
                made,
                a.outcome.reason().unwrap_or("delivered").to_string(),
            ),
            Settlement::Expired { reason } | Settlement::Cancelled { reason } => {
                (false, before, reason.clone())
            }
        };
        Some(Ended {
            warn,
            outcome: outcome_label(settlement),
            attempts,
            reason: truncated(reason),
        })
    }

    fn log(&self, d: &Delivery) {
        let (device, webhook) = match &d.target {
            Target::Device { device } => (Some(device.id.as_str()), None),
            Target::Webhook { endpoint_id, .. } => (None, Some(endpoint_id.as_str())),
            Target::Email { .. } => (None, None),
        };
        macro_rules! ended {
            ($level:ident) => {
                tracing::$level!(
                    tenant.id = %d.tenant_id,
                    app.id = %d.app_id,
                    notification.id = %d.notification_id,
                    delivery.id = %d.id,
                    channel = %d.channel,
                    device.id = device,
                    webhook.id = webhook,
                    attempts = self.attempts,
                    outcome = self.outcome,
                    reason = %self.reason,
                    "delivery ended without arriving"
                )
            };
        }
        if self.warn {
            ended!(warn);
        } else {
            ended!(info);
        }
    }
}

fn truncated(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

fn outcome_label(s: &Settlement) -> &'static str {
    match s {
        Settlement::Delivered(_) => "delivered",
        Settlement::Retry { .. } => "retry",
        Settlement::Postpone { .. } => "postponed",
        Settlement::Failed(_) => "failed",
        Settlement::InvalidTarget(_) => "invalid_target",
        Settlement::Expired { .. } => "expired",
        Settlement::GaveUp(_) => "gave_up",
        Settlement::Cancelled { .. } => "cancelled",
    }
}

/// A delivery admission refused: postponed to when it may go, or expired.
pub(super) fn refused(d: &Delivery, why: &Refused) -> Settlement {
    match why.retry_at() {
        Some(next_at) => wait(d, next_at, &why.to_string()),
        None => expired(&why.to_string()),
    }
}

/// Postponed, or expired if it could not go before its push expires.
pub(super) fn wait(d: &Delivery, next_at: OffsetDateTime, reason: &str) -> Settlement {
    if next_at >= d.push.expires_at {
        expired(&format!("the push's TTL ran out while waiting ({reason})"))
    } else {
        Settlement::Postpone {
            next_at,
            reason: reason.to_string(),
        }
    }
}

pub(super) fn expired(reason: &str) -> Settlement {
    Settlement::Expired {
        reason: reason.to_string(),
    }
}

/// A failure decided before any channel was called.
pub(super) fn not_attempted(now: OffsetDateTime, reason: &str) -> Attempt {
    Attempt {
        at: now,
        duration_ms: 0,
        outcome: DeliveryOutcome::Permanent {
            reason: reason.to_string(),
            status: None,
        },
    }
}

/// Feeds an outcome to the endpoint's breaker and health; disables an endpoint that has failed
/// without a success for `disable_after_ms`.
pub(super) fn observe(
    d: &Delivery,
    endpoint: &Endpoint,
    key: &str,
    now: OffsetDateTime,
    outcome: &DeliveryOutcome,
    policy: &DeliveryPolicy,
    breaker: &Settings,
) {
    let class = classify(outcome, &policy.breaker_statuses);
    let gone_webhook = matches!(outcome, DeliveryOutcome::InvalidTarget { .. })
        && matches!(d.target, herald_engine::push::Target::Webhook { .. });
    let (opened, disabled) = record(
        &mut endpoint.lock(),
        now,
        class,
        gone_webhook,
        policy,
        breaker,
    );
    if opened {
        metrics::counter!("herald_circuit_open_total", "channel" => d.channel.clone()).increment(1);
        tracing::info!(tenant.id = %d.tenant_id, app.id = %d.app_id, channel = %d.channel, endpoint = %fingerprint(key), "circuit opened");
    }
    if disabled {
        metrics::counter!("herald_endpoints_disabled_total", "channel" => d.channel.clone())
            .increment(1);
        tracing::warn!(
            tenant.id = %d.tenant_id,
            app.id = %d.app_id,
            channel = %d.channel,
            endpoint = %fingerprint(key),
            disable_after_ms = policy.disable_after_ms,
            "endpoint disabled after failing without a success; its deliveries wait until it is re-enabled"
        );
    }
}

/// Records one outcome in the endpoint's state; answers whether that opened the circuit and
/// whether it disabled the endpoint.
fn record(
    state: &mut EndpointState,
    now: OffsetDateTime,
    class: Class,
    gone_webhook: bool,
    policy: &DeliveryPolicy,
    breaker: &Settings,
) -> (bool, bool) {
    let opened = state.breaker.record(now, class, breaker);
    let mut disabled = false;
    match class {
        Class::Success => {
            state.last_success_at = Some(now);
            state.failing_since = None;
        }
        Class::Failure => {
            let since = *state.failing_since.get_or_insert(now);
            if policy.disable_after_ms > 0
                && state.disabled_at.is_none()
                && now - since >= ms(policy.disable_after_ms)
            {
                state.disabled_at = Some(now);
                disabled = true;
            }
        }
        Class::Neutral | Class::Ignored => {}
    }
    // A webhook endpoint that says it is gone (410) is disabled at once; a device that is
    // gone is removed by the settlement instead.
    if gone_webhook && state.disabled_at.is_none() {
        state.disabled_at = Some(now);
        disabled = true;
    }
    (opened, disabled)
}

/// How an attempt's outcome is settled. `unit` is the jitter draw in `[0, 1)`.
pub fn settlement_for(
    attempt: Attempt,
    d: &Delivery,
    policy: &DeliveryPolicy,
    now: OffsetDateTime,
    unit: f64,
) -> Settlement {
    let after_ms = match &attempt.outcome {
        DeliveryOutcome::Delivered { .. } => return Settlement::Delivered(attempt),
        DeliveryOutcome::InvalidTarget { .. } => return Settlement::InvalidTarget(attempt),
        DeliveryOutcome::Permanent { .. } => return Settlement::Failed(attempt),
        DeliveryOutcome::Retryable { after_ms, .. } => *after_ms,
        // Never reached the endpoint: retried the same way (the breaker ignores it).
        DeliveryOutcome::Unsent { .. } => None,
    };
    if !policy.retry || d.attempt >= policy.max_attempts {
        return Settlement::GaveUp(attempt);
    }
    let delay = retry_delay(policy, d.attempt, after_ms, unit);
    let next_at = now + Duration::try_from(delay).unwrap_or(Duration::MAX);
    if next_at >= d.push.expires_at {
        Settlement::GaveUp(attempt)
    } else {
        Settlement::Retry { attempt, next_at }
    }
}

#[cfg(test)]
#[path = "settle_tests.rs"]
pub(super) mod tests;
