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
pub(super) mod tests {
    use herald_engine::ids::{AppId, TenantId, UserId};
    use herald_engine::push::{Push, PushKind, Target};

    use super::*;

    pub(crate) fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    /// A webhook delivery of tenant `acme`, app `mobile`, expiring `expires` s after `t(0)`.
    pub(crate) fn delivery(attempt: u32, expires: i64) -> Delivery {
        let tenant = TenantId::parse("acme").unwrap();
        let app = AppId::parse("mobile").unwrap();
        Delivery {
            id: "d1".into(),
            notification_id: "n1".into(),
            tenant_id: tenant.clone(),
            app_id: app.clone(),
            channel: "webhook".into(),
            target: Target::Webhook {
                endpoint_id: "w".into(),
                devices: vec![],
            },
            push: Push {
                kind: PushKind::NewMessage,
                tenant_id: tenant,
                app_id: app,
                user_id: UserId::parse("u").unwrap(),
                conversation_id: None,
                position: None,
                event_id: None,
                event_at: None,
                title: None,
                body: None,
                lines: vec![],
                sender: None,
                message_count: 1,
                unread: 1,
                badge: 1,
                call_id: None,
                missed_calls: 0,
                collapse_key: "c".into(),
                high_priority: false,
                data: Default::default(),
                created_at: t(0),
                expires_at: t(expires),
            },
            attempt,
        }
    }

    fn attempt(outcome: DeliveryOutcome) -> Attempt {
        Attempt {
            at: t(0),
            duration_ms: 1,
            outcome,
        }
    }

    fn unavailable(after_ms: Option<u64>) -> Attempt {
        attempt(DeliveryOutcome::Retryable {
            after_ms,
            reason: "503".into(),
            status: Some(503),
        })
    }

    fn policy() -> DeliveryPolicy {
        DeliveryPolicy {
            retry_base_delay_ms: 1_000,
            retry_max_delay_ms: 60_000,
            max_attempts: 3,
            ..DeliveryPolicy::default()
        }
    }

    #[test]
    fn a_retryable_failure_is_retried_after_the_backoff() {
        let s = settlement_for(unavailable(None), &delivery(2, 3_600), &policy(), t(0), 1.0);
        assert_eq!(
            s,
            Settlement::Retry {
                attempt: unavailable(None),
                next_at: t(2),
            }
        );
        let s = settlement_for(
            unavailable(Some(10_000)),
            &delivery(1, 3_600),
            &policy(),
            t(0),
            0.0,
        );
        assert!(matches!(s, Settlement::Retry { next_at, .. } if next_at == t(10)));
    }

    #[test]
    fn an_unsent_request_is_retried_like_a_retryable_failure_and_gives_up_the_same_way() {
        let unsent = || {
            attempt(DeliveryOutcome::Unsent {
                reason: "FCM: the connection was recycled".into(),
            })
        };
        let s = settlement_for(unsent(), &delivery(2, 3_600), &policy(), t(0), 1.0);
        assert_eq!(
            s,
            Settlement::Retry {
                attempt: unsent(),
                next_at: t(2),
            }
        );
        let s = settlement_for(unsent(), &delivery(3, 3_600), &policy(), t(0), 1.0);
        assert_eq!(s, Settlement::GaveUp(unsent()));
    }

    #[test]
    fn retries_stop_at_max_attempts_when_retry_is_off_and_at_the_ttl() {
        let p = policy();
        let gave_up = |s: Settlement| matches!(s, Settlement::GaveUp(_));
        assert!(gave_up(settlement_for(
            unavailable(None),
            &delivery(3, 3_600),
            &p,
            t(0),
            0.5
        )));
        let off = DeliveryPolicy {
            retry: false,
            ..policy()
        };
        assert!(gave_up(settlement_for(
            unavailable(None),
            &delivery(1, 3_600),
            &off,
            t(0),
            0.5
        )));
        assert!(gave_up(settlement_for(
            unavailable(Some(5_000)),
            &delivery(1, 4),
            &p,
            t(0),
            0.5
        )));
    }

    #[test]
    fn other_outcomes_settle_as_they_are() {
        let p = policy();
        let d = delivery(1, 3_600);
        let ok = attempt(DeliveryOutcome::Delivered { provider_id: None });
        assert_eq!(
            settlement_for(ok.clone(), &d, &p, t(0), 0.5),
            Settlement::Delivered(ok)
        );
        let gone = attempt(DeliveryOutcome::InvalidTarget {
            reason: "gone".into(),
        });
        assert_eq!(
            settlement_for(gone.clone(), &d, &p, t(0), 0.5),
            Settlement::InvalidTarget(gone)
        );
        let bad = attempt(DeliveryOutcome::Permanent {
            reason: "400".into(),
            status: Some(400),
        });
        assert_eq!(
            settlement_for(bad.clone(), &d, &p, t(0), 0.5),
            Settlement::Failed(bad)
        );
    }

    #[test]
    fn waiting_past_the_ttl_expires_instead() {
        let d = delivery(1, 10);
        assert!(
            matches!(wait(&d, t(5), "x"), Settlement::Postpone { next_at, .. } if next_at == t(5))
        );
        assert!(matches!(wait(&d, t(10), "x"), Settlement::Expired { .. }));
    }

    #[test]
    fn deliveries_that_end_without_arriving_are_logged_with_level_attempts_and_reason() {
        let d = delivery(3, 3_600);
        let bad = attempt(DeliveryOutcome::Permanent {
            reason: "400 from the provider".into(),
            status: Some(400),
        });
        let gone = attempt(DeliveryOutcome::InvalidTarget {
            reason: "Unregistered".into(),
        });
        let ended =
            |s: Settlement| Ended::of(&d, &s).map(|e| (e.warn, e.outcome, e.attempts, e.reason));
        let reason = |r: &str| r.to_string();
        assert_eq!(
            ended(Settlement::Failed(bad)),
            Some((true, "failed", 3, reason("400 from the provider")))
        );
        assert_eq!(
            ended(Settlement::GaveUp(unavailable(None))),
            Some((true, "gave_up", 3, reason("503")))
        );
        assert_eq!(
            ended(Settlement::InvalidTarget(gone)),
            Some((false, "invalid_target", 3, reason("Unregistered")))
        );
        assert_eq!(
            ended(expired("the push's TTL ran out before delivery")),
            Some((
                false,
                "expired",
                2,
                reason("the push's TTL ran out before delivery")
            ))
        );
        let superseded = Settlement::Cancelled {
            reason: crate::delivery::order::SUPERSEDED.into(),
        };
        assert_eq!(
            ended(superseded),
            Some((
                false,
                "cancelled",
                2,
                reason(crate::delivery::order::SUPERSEDED)
            ))
        );
        let ok = attempt(DeliveryOutcome::Delivered { provider_id: None });
        assert_eq!(ended(Settlement::Delivered(ok)), None);
        assert_eq!(
            ended(Settlement::Retry {
                attempt: unavailable(None),
                next_at: t(5)
            }),
            None
        );
        assert_eq!(ended(wait(&d, t(5), "busy")), None);
    }

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_REASON);
        let cut = truncated(long);
        assert!(cut.len() <= MAX_REASON + '…'.len_utf8(), "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(truncated("short".into()), "short");
    }

    #[test]
    fn fingerprints_never_show_the_key() {
        let key = "webhook:https://user:pass@example.com/hook?token=abc";
        let f = fingerprint(key);
        assert!(f.starts_with("webhook#"), "{f}");
        assert!(!f.contains("pass") && !f.contains("example"), "{f}");
        assert_eq!(f, fingerprint(key), "stable");
    }
}
