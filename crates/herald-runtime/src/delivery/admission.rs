//! Admission: whether one attempt at an endpoint may go now, the slots it holds while it runs,
//! and the attempt itself under its timeout.
//!
//! In order: the endpoint (`Channel::endpoint_key`, per tenant and app) is disabled or its
//! circuit is open → refused with when it may go; the tenant's bulkhead is full → refused (one
//! tenant's slow endpoint fills only its own share of this node); then one of the endpoint's
//! `max_concurrency` slots, waited for within the caller's patience; then, with the slots
//! held, the push's TTL and the endpoint are checked again and the breaker admits the attempt
//! (in half-open state, only its one probe). The attempt runs under a timeout (a timeout is
//! retryable), and its outcome feeds the endpoint's breaker and health
//! ([`super::settle::observe`]).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use herald_engine::app::{AppConfig, DeliveryPolicy};
use herald_engine::delivery::{Attempt, Channel};
use herald_engine::push::{Delivery, DeliveryOutcome};
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;

use super::breaker::{Admission, Settings};
use super::settle::observe;
use super::{DeliveryCore, Endpoint, ms};

/// Why an attempt may not go now. Its `Display` is the reason, fit to show or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The push's TTL ran out before it could go.
    Expired,
    /// The endpoint was disabled for failing too long; looked at again at `retry_at`.
    Disabled {
        since: OffsetDateTime,
        retry_at: OffsetDateTime,
    },
    /// The circuit is open (or its one probe is out) until then.
    CircuitOpen { until: OffsetDateTime },
    /// The tenant's bulkhead is full.
    TenantBusy { retry_at: OffsetDateTime },
    /// Every one of the endpoint's `max_concurrency` slots stayed taken.
    EndpointBusy { retry_at: OffsetDateTime },
}

impl Refused {
    /// When to try again; `None` once the push expired.
    pub fn retry_at(&self) -> Option<OffsetDateTime> {
        match self {
            Refused::Expired => None,
            Refused::Disabled { retry_at, .. }
            | Refused::TenantBusy { retry_at }
            | Refused::EndpointBusy { retry_at } => Some(*retry_at),
            Refused::CircuitOpen { until } => Some(*until),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use herald_engine::event::rfc3339;
        match self {
            Refused::Expired => f.write_str("the push's TTL ran out before delivery"),
            Refused::Disabled { since, .. } => write!(
                f,
                "the endpoint was disabled at {} after failing for too long; waiting for an operator to re-enable it",
                rfc3339(*since)
            ),
            Refused::CircuitOpen { until } => write!(
                f,
                "circuit open: the endpoint failed repeatedly; next probe at {}",
                rfc3339(*until)
            ),
            Refused::TenantBusy { .. } => {
                f.write_str("the tenant's deliveries are at this node's concurrency limit")
            }
            Refused::EndpointBusy { .. } => f.write_str("the endpoint is at its concurrency limit"),
        }
    }
}

/// How long admission may wait for slots.
pub(crate) struct Patience {
    /// `None`: take a bulkhead slot only if one is free now.
    tenant: Option<tokio::time::Instant>,
    endpoint: tokio::time::Instant,
}

impl Patience {
    /// The worker's: no wait for the bulkhead, and at most half of what the lease leaves
    /// beside the attempt timeout for the lane's turn and an endpoint slot together (the waits
    /// and the attempt all fit in the lease).
    pub fn worker(core: &DeliveryCore) -> Patience {
        let s = &core.settings;
        let wait = StdDuration::from_millis(s.lease_ms.saturating_sub(s.attempt_timeout_ms) / 2);
        Patience {
            tenant: None,
            endpoint: tokio::time::Instant::now() + wait,
        }
    }

    /// Until when a slot (or the worker's lane turn) may be waited for.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.endpoint
    }

    /// A synchronous caller's: bulkhead and endpoint slots both waited for until `deadline`.
    pub fn until(deadline: tokio::time::Instant) -> Patience {
        Patience {
            tenant: Some(deadline),
            endpoint: deadline,
        }
    }
}

/// An attempt admitted to go: the slots it holds until it is observed.
pub(crate) struct Admitted {
    endpoint: Arc<Endpoint>,
    key: String,
    breaker: Settings,
    /// When it was admitted: the attempt's time.
    at: OffsetDateTime,
    _tenant_slot: OwnedSemaphorePermit,
    slot: OwnedSemaphorePermit,
}

impl DeliveryCore {
    /// Admits one attempt of `d` at the endpoint `key` (see the module documentation).
    pub(crate) async fn admit(
        &self,
        d: &Delivery,
        key: String,
        policy: &DeliveryPolicy,
        patience: Patience,
    ) -> Result<Admitted, Refused> {
        let breaker = breaker_settings(policy, self.settings.attempt_timeout_ms);
        let id = (d.tenant_id.clone(), d.app_id.clone(), key.clone());
        let endpoint = self.endpoint(id, policy);
        let now = self.clock.now();
        blocked(&endpoint, now, policy, &breaker)?;
        let tenant_slot = self.tenant_slot(d, now, patience.tenant).await?;
        let slot = self.endpoint_slot(&endpoint, patience.endpoint).await?;
        let now = self.clock.now();
        if d.push.expires_at <= now {
            return Err(Refused::Expired);
        }
        blocked(&endpoint, now, policy, &breaker)?;
        let admission = endpoint.lock().breaker.admit(now, &breaker);
        if let Admission::Wait(until) = admission {
            return Err(Refused::CircuitOpen { until });
        }
        Ok(Admitted {
            endpoint,
            key,
            breaker,
            at: now,
            _tenant_slot: tenant_slot,
            slot,
        })
    }

    async fn tenant_slot(
        &self,
        d: &Delivery,
        now: OffsetDateTime,
        until: Option<tokio::time::Instant>,
    ) -> Result<OwnedSemaphorePermit, Refused> {
        let slots = self.tenant_slots(&d.tenant_id);
        let slot = match until {
            None => slots.try_acquire_owned().ok(),
            Some(until) => match tokio::time::timeout_at(until, slots.acquire_owned()).await {
                Ok(Ok(slot)) => Some(slot),
                _ => None,
            },
        };
        slot.ok_or(Refused::TenantBusy {
            retry_at: now + ms(self.settings.poll_ms),
        })
    }

    async fn endpoint_slot(
        &self,
        endpoint: &Endpoint,
        until: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, Refused> {
        match tokio::time::timeout_at(until, endpoint.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(Refused::EndpointBusy {
                retry_at: self.clock.now() + ms(self.settings.poll_ms),
            }),
        }
    }

    /// Makes the admitted attempt under `timeout`, then feeds its outcome to the endpoint's
    /// breaker and health. Answers the attempt and when it ended. A `timeout` shorter than
    /// `delivery.attempt_timeout_ms` is a caller's budget: running out of it is answered as a
    /// retryable timeout but not held against the endpoint (it was not given its full time).
    pub(crate) async fn attempt(
        &self,
        admitted: Admitted,
        channel: &dyn Channel,
        d: &Delivery,
        app: &AppConfig,
        timeout: StdDuration,
    ) -> (Attempt, OffsetDateTime) {
        let full = StdDuration::from_millis(self.settings.attempt_timeout_ms);
        let (outcome, elapsed, counted) = call(channel, d, app, timeout, full).await;
        drop(admitted.slot);
        let done = self.clock.now();
        if counted {
            let (endpoint, key) = (&admitted.endpoint, &admitted.key);
            observe(
                d,
                endpoint,
                key,
                done,
                &outcome,
                &app.delivery,
                &admitted.breaker,
            );
        }
        let attempt = Attempt {
            at: admitted.at,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            outcome,
        };
        (attempt, done)
    }
}

/// Calls the channel under `timeout`; answers the outcome, how long it took, and whether it
/// counts for the endpoint (not when a timeout shorter than `full` ran out).
async fn call(
    channel: &dyn Channel,
    d: &Delivery,
    app: &AppConfig,
    timeout: StdDuration,
    full: StdDuration,
) -> (DeliveryOutcome, StdDuration, bool) {
    let in_flight = InFlight::start();
    let started = Instant::now();
    let answer = tokio::time::timeout(timeout, channel.deliver(d, app)).await;
    let elapsed = started.elapsed();
    drop(in_flight);
    metrics::histogram!("herald_delivery_seconds", "channel" => d.channel.clone())
        .record(elapsed.as_secs_f64());
    let cut_short = timeout < full;
    let reason = match answer {
        Ok(outcome) => return (outcome, elapsed, true),
        Err(_) if cut_short => format!(
            "the caller's budget ran out after {} ms, before the provider answered",
            timeout.as_millis()
        ),
        Err(_) => format!("timed out after {} ms", timeout.as_millis()),
    };
    let outcome = DeliveryOutcome::Retryable {
        after_ms: None,
        reason,
        status: None,
    };
    (outcome, elapsed, !cut_short)
}

/// Counts an attempt in `herald_deliveries_in_flight` while it lives (also when its task is
/// aborted mid-attempt).
struct InFlight;

impl InFlight {
    fn start() -> InFlight {
        metrics::gauge!("herald_deliveries_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("herald_deliveries_in_flight").decrement(1.0);
    }
}

/// Whether the endpoint holds attempts back (disabled, or its circuit open).
fn blocked(
    endpoint: &Endpoint,
    now: OffsetDateTime,
    policy: &DeliveryPolicy,
    breaker: &Settings,
) -> Result<(), Refused> {
    let state = endpoint.lock();
    if let Some(since) = state.disabled_at {
        let retry_at = now + ms(policy.breaker_cool_down_ms.max(1_000));
        return Err(Refused::Disabled { since, retry_at });
    }
    match state.breaker.blocked_until(now, breaker) {
        Some(until) => Err(Refused::CircuitOpen { until }),
        None => Ok(()),
    }
}

fn breaker_settings(policy: &DeliveryPolicy, attempt_timeout_ms: u64) -> Settings {
    Settings {
        failures: policy.breaker_failures,
        cool_down: ms(policy.breaker_cool_down_ms),
        // The probe is sent right after it is admitted, so it is back within the attempt
        // timeout unless its task was lost.
        probe_timeout: ms(attempt_timeout_ms) + time::Duration::seconds(5),
    }
}
