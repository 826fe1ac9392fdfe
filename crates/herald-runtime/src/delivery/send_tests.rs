//! The guarded synchronous send: refusals never reach the channel, outcomes feed the breaker
//! and health, and the caller's budget bounds the wait (asserted by outcome, never by time).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use herald_engine::app::DeliveryPolicy;
use herald_engine::clock::ManualClock;
use herald_engine::ids::{AppId, TenantId};
use time::OffsetDateTime;

use super::super::breaker::CircuitState;
use super::super::settle::tests::{delivery, t};
use super::*;
use crate::config::DeliveryConfig;

/// A channel that answers with `answer` (or never, when `None`) and counts its calls.
struct Scripted {
    answer: Option<DeliveryOutcome>,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(answer: Option<DeliveryOutcome>) -> Scripted {
        Scripted {
            answer,
            calls: AtomicUsize::new(0),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Channel for Scripted {
    async fn deliver(&self, _: &Delivery, _: &AppConfig) -> DeliveryOutcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match &self.answer {
            Some(answer) => answer.clone(),
            None => std::future::pending().await,
        }
    }

    fn endpoint_key(&self, _: &Delivery, _: &AppConfig) -> String {
        "hook:1".into()
    }
}

fn delivered() -> Option<DeliveryOutcome> {
    Some(DeliveryOutcome::Delivered { provider_id: None })
}

fn unreachable() -> Option<DeliveryOutcome> {
    Some(DeliveryOutcome::Retryable {
        after_ms: None,
        reason: "connection refused".into(),
        status: None,
    })
}

fn core_with(settings: DeliveryConfig) -> (DeliveryCore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t(0)));
    (
        DeliveryCore::new(settings, clock.clone(), Arc::default()),
        clock,
    )
}

fn core() -> (DeliveryCore, Arc<ManualClock>) {
    core_with(DeliveryConfig::default())
}

/// An app whose breaker opens at the first failure, for 60 s.
fn app() -> AppConfig {
    AppConfig {
        delivery: DeliveryPolicy {
            breaker_failures: 1,
            breaker_cool_down_ms: 60_000,
            ..DeliveryPolicy::default()
        },
        ..AppConfig::default()
    }
}

fn ids() -> (TenantId, AppId) {
    (
        TenantId::parse("acme").unwrap(),
        AppId::parse("mobile").unwrap(),
    )
}

const BUDGET: StdDuration = StdDuration::from_secs(30);

#[tokio::test]
async fn an_open_circuit_refuses_without_calling_the_channel() {
    let (core, _clock) = core();
    let (d, app) = (delivery(1, 3_600), app());
    let failing = Scripted::new(unreachable());
    let first = core.send_now(&failing, &d, &app, BUDGET).await;
    assert!(
        matches!(first, Ok(DeliveryOutcome::Retryable { .. })),
        "{first:?}"
    );

    let healthy = Scripted::new(delivered());
    let refused = core.send_now(&healthy, &d, &app, BUDGET).await;
    let Err(why @ Refused::CircuitOpen { until }) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(until, t(60));
    assert!(why.to_string().starts_with("circuit open"), "{why}");
    assert_eq!(healthy.calls(), 0, "the channel is never called");
}

#[tokio::test]
async fn a_disabled_endpoint_refuses_with_its_reason() {
    let (core, _clock) = core();
    let (d, app) = (delivery(1, 3_600), app());
    let (tenant, app_id) = ids();
    let endpoint = core.endpoint((tenant, app_id, "hook:1".into()), &app.delivery);
    endpoint.lock().disabled_at = Some(t(-5));
    let channel = Scripted::new(delivered());
    let refused = core.send_now(&channel, &d, &app, BUDGET).await;
    let Err(why @ Refused::Disabled { .. }) = refused else {
        panic!("{refused:?}");
    };
    assert!(why.to_string().contains("disabled"), "{why}");
    assert_eq!(channel.calls(), 0);
}

#[tokio::test]
async fn a_success_after_the_cool_down_is_the_probe_that_closes_the_circuit() {
    let (core, clock) = core();
    let (d, app) = (delivery(1, 3_600), app());
    let (tenant, app_id) = ids();
    let _ = core
        .send_now(&Scripted::new(unreachable()), &d, &app, BUDGET)
        .await;
    let health = core.endpoint_health(&tenant, &app_id);
    assert_eq!(health[0].circuit, CircuitState::Open);
    assert_eq!(health[0].failing_since, Some(t(0)));

    clock.advance(time::Duration::seconds(61));
    let channel = Scripted::new(delivered());
    let sent = core.send_now(&channel, &d, &app, BUDGET).await;
    assert_eq!(sent, Ok(DeliveryOutcome::Delivered { provider_id: None }));
    let health = core.endpoint_health(&tenant, &app_id);
    assert_eq!(health[0].circuit, CircuitState::Closed);
    assert_eq!(health[0].last_success_at, Some(t(61)));
    assert_eq!((health[0].failing_since, health[0].in_flight), (None, 0));
}

#[tokio::test]
async fn a_provider_that_never_answers_within_a_tiny_budget_is_a_timeout_not_held_against_it() {
    let (core, _clock) = core();
    let (d, app) = (delivery(1, 3_600), app());
    let (tenant, app_id) = ids();
    let silent = Scripted::new(None);
    let sent = core
        .send_now(&silent, &d, &app, StdDuration::from_millis(1))
        .await;
    let Ok(DeliveryOutcome::Retryable { reason, status, .. }) = sent else {
        panic!("{sent:?}");
    };
    assert!(reason.contains("budget"), "{reason}");
    assert_eq!(status, None);
    assert_eq!(silent.calls(), 1);
    let health = core.endpoint_health(&tenant, &app_id);
    assert_eq!(health[0].consecutive_failures, 0, "the caller cut it short");
    assert_eq!(health[0].in_flight, 0, "its slot is back");
}

#[tokio::test]
async fn the_attempt_timeout_counts_against_the_endpoint_as_for_the_worker() {
    let (core, _clock) = core_with(DeliveryConfig {
        attempt_timeout_ms: 1,
        ..DeliveryConfig::default()
    });
    let (d, app) = (delivery(1, 3_600), app());
    let (tenant, app_id) = ids();
    let sent = core.send_now(&Scripted::new(None), &d, &app, BUDGET).await;
    let Ok(DeliveryOutcome::Retryable { reason, .. }) = sent else {
        panic!("{sent:?}");
    };
    assert_eq!(reason, "timed out after 1 ms");
    let health = core.endpoint_health(&tenant, &app_id);
    assert_eq!(health[0].circuit, CircuitState::Open);
}

#[tokio::test]
async fn a_full_bulkhead_refuses_once_the_budget_is_spent() {
    let (core, _clock) = core_with(DeliveryConfig {
        per_tenant_concurrency: 1,
        ..DeliveryConfig::default()
    });
    let (d, app) = (delivery(1, 3_600), app());
    let _taken = core.tenant_slots(&d.tenant_id).try_acquire_owned().unwrap();
    let channel = Scripted::new(delivered());
    let refused = core
        .send_now(&channel, &d, &app, StdDuration::from_millis(1))
        .await;
    assert!(
        matches!(refused, Err(Refused::TenantBusy { .. })),
        "{refused:?}"
    );
    assert_eq!(channel.calls(), 0);
}

#[tokio::test]
async fn an_expired_push_is_refused() {
    let (core, clock) = core();
    let d = delivery(1, 10);
    clock.set(OffsetDateTime::from_unix_timestamp(1_800_000_010).unwrap());
    let channel = Scripted::new(delivered());
    let refused = core.send_now(&channel, &d, &app(), BUDGET).await;
    assert_eq!(refused, Err(Refused::Expired));
    assert_eq!(channel.calls(), 0);
}
