//! The delivery worker: one claim loop per node and one task per claimed delivery.
//!
//! The loop claims due deliveries (up to `delivery.batch`, while fewer than
//! `delivery.max_in_flight` are in flight here), starts a task for each, then sleeps until the
//! queue's next due time, a wake-up (`DeliveryCore::wake`, after new deliveries are committed
//! or a delivery was rescheduled), or `delivery.poll_ms`.
//!
//! One delivery, in order:
//! 1. its push expired → settled `Expired`, never sent;
//! 2. its app (with secrets, from the cache) is gone → `Failed` ("app deleted"); its channel is
//!    not configured on this server → `Failed`;
//! 3. its endpoint (`Channel::endpoint_key`) is disabled or its circuit is open → `Postpone`d
//!    to when it may go (no attempt counted), or `Expired` if that is past the push's TTL;
//! 4. the tenant's bulkhead is full → postponed briefly (one tenant's slow endpoint fills only
//!    its own share of this node); otherwise it waits for one of the endpoint's
//!    `max_concurrency` slots (at most half of what the lease leaves beside the attempt
//!    timeout, then postponed);
//! 5. the channel is called under `delivery.attempt_timeout_ms` (a timeout is retryable);
//! 6. the outcome feeds the endpoint's breaker and health, and is settled: `Delivered`;
//!    retryable → `Retry` after the backoff if the app retries, attempts remain and the retry
//!    comes before the push expires, else `GaveUp`; invalid target → `InvalidTarget` (the
//!    store removes the device); permanent → `Failed`.
//!
//! A settlement that fails to commit leaves the delivery leased: it is claimed again when the
//! lease runs out (at-least-once). Logs carry ids and outcomes only.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration as StdDuration, Instant};

use herald_engine::app::DeliveryPolicy;
use herald_engine::delivery::{Attempt, DeliveryQueue, Settlement};
use herald_engine::ids::{AppId, TenantId};
use herald_engine::push::{Delivery, DeliveryOutcome};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::backoff::retry_delay;
use super::breaker::{Admission, Class, Settings, classify};
use super::{DeliveryCore, Endpoint, EndpointHealth, fingerprint};
use crate::Runtime;
use herald_tenancy::apps::AppLookup;

/// How long a stopping worker lets in-flight deliveries finish before abandoning them (they
/// are claimed again when their lease runs out).
const DRAIN: StdDuration = StdDuration::from_secs(2);
/// Shortest sleep when the queue says something is due but the claim found nothing.
const MIN_NAP: StdDuration = StdDuration::from_millis(5);

/// The running worker. Dropping it stops the loop too (without the drain).
pub struct Worker {
    core: Arc<DeliveryCore>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// The shared state: endpoint health, re-enabling, the wake-up.
    pub fn core(&self) -> Arc<DeliveryCore> {
        self.core.clone()
    }

    /// Wakes the loop: `notify_one()` on it after committing new deliveries (the same `Notify`
    /// as `Runtime::delivery_wakeup`).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.core.waker()
    }

    /// See [`DeliveryCore::endpoint_health`].
    pub fn endpoint_health(&self, tenant: &TenantId, app: &AppId) -> Vec<EndpointHealth> {
        self.core.endpoint_health(tenant, app)
    }

    /// See [`DeliveryCore::reenable`].
    pub fn reenable(&self, tenant: &TenantId, app: &AppId, endpoint_key: &str) -> bool {
        self.core.reenable(tenant, app, endpoint_key)
    }

    /// Stops claiming, lets in-flight deliveries finish for a moment, then abandons the rest.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the worker over `queue` (the store's `DeliveryQueue`, `state.queue`). `core` is
/// shared with `Runtime::delivery` (endpoint health, re-enabling).
pub fn spawn(core: Arc<DeliveryCore>, state: Runtime, queue: Arc<dyn DeliveryQueue>) -> Worker {
    let (stop, stopped) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        state,
        queue,
        core: core.clone(),
    });
    let task = tokio::spawn(run(ctx, stopped));
    Worker { core, stop, task }
}

struct Ctx {
    state: Runtime,
    queue: Arc<dyn DeliveryQueue>,
    core: Arc<DeliveryCore>,
}

impl Ctx {
    fn now(&self) -> OffsetDateTime {
        self.state.clock.now()
    }
}

type Key = (TenantId, String);

async fn run(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let settings = ctx.core.settings.clone();
    let lease = Duration::milliseconds(i64::try_from(settings.lease_ms).unwrap_or(i64::MAX));
    let poll = StdDuration::from_millis(settings.poll_ms);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let running = Running::default();
    loop {
        if *stop.borrow() {
            break;
        }
        while let Some(done) = tasks.try_join_next() {
            reaped(done);
        }
        let room = settings.max_in_flight.saturating_sub(tasks.len());
        let mut claimed_none = true;
        if room > 0 {
            let limit = room.min(settings.batch);
            match ctx.queue.claim_deliveries(ctx.now(), lease, limit).await {
                Ok(batch) => {
                    claimed_none = batch.is_empty();
                    let full = batch.len() == limit;
                    for delivery in batch {
                        let key = (delivery.tenant_id.clone(), delivery.id.clone());
                        // Still being handled here after its lease ran out: the claim renewed
                        // the lease; the task at work settles it.
                        let Some(mine) = running.start(key) else {
                            continue;
                        };
                        let task_ctx = ctx.clone();
                        tasks.spawn(async move { handle(&task_ctx, delivery, mine).await });
                    }
                    if full {
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming deliveries failed"),
            }
        }
        let nap = if room == 0 {
            poll
        } else {
            match ctx.queue.next_delivery_at().await {
                Ok(Some(at)) => {
                    let until = (at - ctx.now()).max(Duration::ZERO);
                    let until = StdDuration::try_from(until).unwrap_or(poll).min(poll);
                    if claimed_none {
                        until.max(MIN_NAP)
                    } else {
                        until
                    }
                }
                Ok(None) => poll,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the delivery queue failed");
                    poll
                }
            }
        };
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = ctx.core.woken() => {}
            () = tokio::time::sleep(nap) => {}
            Some(done) = tasks.join_next(), if room == 0 => reaped(done),
        }
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while let Some(done) = tasks.join_next().await {
            reaped(done);
        }
    })
    .await;
    if !tasks.is_empty() {
        tracing::info!(
            abandoned = tasks.len(),
            "delivery worker stopped; unfinished deliveries are retried after their lease"
        );
    }
    tasks.abort_all();
}

fn reaped(done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a delivery task panicked; its delivery is retried after its lease");
    }
}

/// The deliveries this node is handling. A task gives its delivery up just before settling it:
/// once settled, a claim that hands it out again (a retry that is due) must start a new task.
#[derive(Default, Clone)]
struct Running(Arc<Mutex<HashSet<Key>>>);

impl Running {
    /// `None` if the delivery is already being handled here.
    fn start(&self, key: Key) -> Option<Handling> {
        let fresh = lock(&self.0).insert(key.clone());
        fresh.then(|| Handling {
            running: self.clone(),
            key,
        })
    }
}

/// One delivery being handled; dropping it (also when the task panics or is aborted) gives
/// the delivery up.
struct Handling {
    running: Running,
    key: Key,
}

impl Drop for Handling {
    fn drop(&mut self) {
        lock(&self.running.0).remove(&self.key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handles one claimed delivery and settles it.
async fn handle(ctx: &Ctx, delivery: Delivery, handling: Handling) {
    let Some(settlement) = decide(ctx, &delivery).await else {
        return;
    };
    drop(handling);
    let outcome = outcome_label(&settlement);
    let pending_again = matches!(
        settlement,
        Settlement::Retry { .. } | Settlement::Postpone { .. }
    );
    metrics::counter!("herald_deliveries_total", "channel" => delivery.channel.clone(), "outcome" => outcome)
        .increment(1);
    let now = ctx.now();
    match ctx
        .queue
        .settle_delivery(&delivery.tenant_id, &delivery.id, settlement, now)
        .await
    {
        Ok(()) => tracing::debug!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            notification.id = %delivery.notification_id,
            channel = %delivery.channel,
            attempt = delivery.attempt,
            outcome,
            "delivery settled"
        ),
        Err(e) => tracing::warn!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            error = %e,
            "settling a delivery failed; it is retried after its lease"
        ),
    }
    if pending_again {
        // The loop may be asleep past this delivery's new due time.
        ctx.core.wake();
    }
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
    }
}

/// What to settle; `None` leaves the delivery leased (the store could not be read).
async fn decide(ctx: &Ctx, d: &Delivery) -> Option<Settlement> {
    let core = &ctx.core;
    let now = ctx.now();
    if d.push.expires_at <= now {
        return Some(expired("the push's TTL ran out before delivery"));
    }
    let app = match ctx.state.apps.get(&d.tenant_id, &d.app_id).await {
        AppLookup::Found(app) => app,
        AppLookup::Gone => return Some(Settlement::Failed(not_attempted(now, "app deleted"))),
        AppLookup::Unavailable(why) => {
            tracing::warn!(tenant.id = %d.tenant_id, app.id = %d.app_id, delivery.id = %d.id, why, "the app of a delivery cannot be read; retried after the lease");
            return None;
        }
    };
    let Some(channel) = ctx.state.channels.get(&d.channel).cloned() else {
        let reason = format!("no channel `{}` is configured on this server", d.channel);
        return Some(Settlement::Failed(not_attempted(now, &reason)));
    };
    let policy = &app.delivery;
    let breaker = breaker_settings(policy, core.settings.attempt_timeout_ms);
    let key = channel.endpoint_key(d, &app);
    let endpoint = core.endpoint((d.tenant_id.clone(), d.app_id.clone(), key.clone()), policy);

    if let Some(why) = blocked(&endpoint, now, policy, &breaker) {
        return Some(why(d));
    }

    let tenant_slots = core.tenant_slots(&d.tenant_id);
    let Ok(_tenant_slot) = tenant_slots.try_acquire_owned() else {
        let next = now + ms(core.settings.poll_ms);
        return Some(wait(
            d,
            next,
            "the tenant's deliveries are at this node's concurrency limit",
        ));
    };
    // Waiting for a slot and then the attempt both fit in the lease.
    let patience = StdDuration::from_millis(
        core.settings
            .lease_ms
            .saturating_sub(core.settings.attempt_timeout_ms)
            / 2,
    );
    let slot = match tokio::time::timeout(patience, endpoint.slots.clone().acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        _ => {
            let next = ctx.now() + ms(core.settings.poll_ms);
            return Some(wait(d, next, "the endpoint is at its concurrency limit"));
        }
    };

    let now = ctx.now();
    if d.push.expires_at <= now {
        return Some(expired("the push's TTL ran out before delivery"));
    }
    if let Some(why) = blocked(&endpoint, now, policy, &breaker) {
        return Some(why(d));
    }
    let admission = endpoint.lock().breaker.admit(now, &breaker);
    if let Admission::Wait(until) = admission {
        return Some(wait(d, until, &circuit_open(until)));
    }

    let in_flight = InFlight::start();
    let started = Instant::now();
    let timeout = StdDuration::from_millis(core.settings.attempt_timeout_ms);
    let outcome = match tokio::time::timeout(timeout, channel.deliver(d, &app)).await {
        Ok(outcome) => outcome,
        Err(_) => DeliveryOutcome::Retryable {
            after_ms: None,
            reason: format!("timed out after {} ms", core.settings.attempt_timeout_ms),
            status: None,
        },
    };
    let elapsed = started.elapsed();
    drop(in_flight);
    metrics::histogram!("herald_delivery_seconds", "channel" => d.channel.clone())
        .record(elapsed.as_secs_f64());
    drop(slot);

    let done = ctx.now();
    observe(d, &endpoint, &key, done, &outcome, policy, &breaker);
    let attempt = Attempt {
        at: now,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        outcome,
    };
    Some(settlement_for(
        attempt,
        d,
        policy,
        done,
        rand::random::<f64>(),
    ))
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

/// A settlement for a delivery that cannot go now: postponed, or expired if it could not go
/// before its push expires.
type Blocked = Box<dyn FnOnce(&Delivery) -> Settlement + Send>;

/// Whether the endpoint holds deliveries back (disabled, or its circuit open).
fn blocked(
    endpoint: &Endpoint,
    now: OffsetDateTime,
    policy: &DeliveryPolicy,
    breaker: &Settings,
) -> Option<Blocked> {
    let state = endpoint.lock();
    if let Some(since) = state.disabled_at {
        let next = now + ms(policy.breaker_cool_down_ms.max(1_000));
        let reason = format!(
            "the endpoint was disabled at {} after failing for too long; waiting for an operator to re-enable it",
            herald_engine::event::rfc3339(since)
        );
        return Some(Box::new(move |d| wait(d, next, &reason)));
    }
    let until = state.breaker.blocked_until(now, breaker)?;
    Some(Box::new(move |d| wait(d, until, &circuit_open(until))))
}

fn circuit_open(until: OffsetDateTime) -> String {
    format!(
        "circuit open: the endpoint failed repeatedly; next probe at {}",
        herald_engine::event::rfc3339(until)
    )
}

fn wait(d: &Delivery, next_at: OffsetDateTime, reason: &str) -> Settlement {
    if next_at >= d.push.expires_at {
        expired(&format!("the push's TTL ran out while waiting ({reason})"))
    } else {
        Settlement::Postpone {
            next_at,
            reason: reason.to_string(),
        }
    }
}

fn expired(reason: &str) -> Settlement {
    Settlement::Expired {
        reason: reason.to_string(),
    }
}

/// A failure decided before any channel was called.
fn not_attempted(now: OffsetDateTime, reason: &str) -> Attempt {
    Attempt {
        at: now,
        duration_ms: 0,
        outcome: DeliveryOutcome::Permanent {
            reason: reason.to_string(),
            status: None,
        },
    }
}

fn ms(n: u64) -> Duration {
    Duration::milliseconds(i64::try_from(n).unwrap_or(i64::MAX))
}

fn breaker_settings(policy: &DeliveryPolicy, attempt_timeout_ms: u64) -> Settings {
    Settings {
        failures: policy.breaker_failures,
        cool_down: ms(policy.breaker_cool_down_ms),
        // The probe is sent right after it is admitted, so it is back within the attempt
        // timeout unless its task was lost.
        probe_timeout: ms(attempt_timeout_ms) + Duration::seconds(5),
    }
}

/// Feeds an outcome to the endpoint's breaker and health; disables an endpoint that has failed
/// without a success for `disable_after_ms`.
fn observe(
    d: &Delivery,
    endpoint: &Endpoint,
    key: &str,
    now: OffsetDateTime,
    outcome: &DeliveryOutcome,
    policy: &DeliveryPolicy,
    breaker: &Settings,
) {
    let class = classify(outcome, &policy.breaker_statuses);
    let (opened, disabled) = {
        let mut state = endpoint.lock();
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
            Class::Neutral => {}
        }
        // A webhook endpoint that says it is gone (410) is disabled at once; a device that is
        // gone is removed by the settlement instead.
        if matches!(outcome, DeliveryOutcome::InvalidTarget { .. })
            && matches!(d.target, herald_engine::push::Target::Webhook { .. })
            && state.disabled_at.is_none()
        {
            state.disabled_at = Some(now);
            disabled = true;
        }
        (opened, disabled)
    };
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

/// How an attempt's outcome is settled. `unit` is the jitter draw in `[0, 1)`.
pub fn settlement_for(
    attempt: Attempt,
    d: &Delivery,
    policy: &DeliveryPolicy,
    now: OffsetDateTime,
    unit: f64,
) -> Settlement {
    match &attempt.outcome {
        DeliveryOutcome::Delivered { .. } => Settlement::Delivered(attempt),
        DeliveryOutcome::InvalidTarget { .. } => Settlement::InvalidTarget(attempt),
        DeliveryOutcome::Permanent { .. } => Settlement::Failed(attempt),
        DeliveryOutcome::Retryable { after_ms, .. } => {
            if !policy.retry || d.attempt >= policy.max_attempts {
                return Settlement::GaveUp(attempt);
            }
            let delay = retry_delay(policy, d.attempt, *after_ms, unit);
            let next_at = now + Duration::try_from(delay).unwrap_or(Duration::MAX);
            if next_at >= d.push.expires_at {
                Settlement::GaveUp(attempt)
            } else {
                Settlement::Retry { attempt, next_at }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use herald_engine::ids::{AppId, UserId};
    use herald_engine::push::{Push, PushKind, Target};

    use super::*;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    fn delivery(attempt: u32, expires: i64) -> Delivery {
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
    fn fingerprints_never_show_the_key() {
        let key = "webhook:https://user:pass@example.com/hook?token=abc";
        let f = fingerprint(key);
        assert!(f.starts_with("webhook#"), "{f}");
        assert!(!f.contains("pass") && !f.contains("example"), "{f}");
        assert_eq!(f, fingerprint(key), "stable");
    }
}
