//! The delivery core: workers that claim due deliveries, call the channel for each, and settle
//! the outcome — with retries, TTL expiry, circuit breakers and per-tenant bulkheads.
//!
//! - [`worker`]: the claim loop ([`spawn`]); `decide`: what happens to one claimed delivery;
//!   `admission`: the breaker, bulkhead and endpoint-slot admission of one attempt and the
//!   attempt under its timeout; `settle`: settling an outcome and feeding it to the endpoint's
//!   breaker and health, and the log line of a delivery that ended without arriving; `order`:
//!   the lanes that keep attempts per (tenant, app, target, collapse key) one at a time,
//!   oldest first, and cancel an older push once a newer one went out (superseded);
//!   `send`: [`DeliveryCore::send_now`], the guarded synchronous send
//!   (the same admission, timeout and settlement of breaker and health, within a caller's
//!   budget) for callers that wait for the answer (`herald push test`, the Matrix gateway).
//! - [`DeliveryCore`]: what the worker's tasks share and the rest of the server may ask about:
//!   the wake-up (`Runtime::delivery_wakeup`), the endpoints (breakers, concurrency limits,
//!   health, auto-disable), the per-tenant bulkheads and the collapse-key lanes.
//!   [`Worker::core`] hands it out.
//! - [`backoff`]: retry delays; [`breaker`]: the circuit breaker.
//!
//! Endpoint state (breakers, health, disabled endpoints) and the lanes are kept in memory, per
//! node: a restart closes every circuit, re-enables every endpoint and forgets the lanes.

mod admission;
pub mod backoff;
pub mod breaker;
mod decide;
mod order;
mod send;
mod settle;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use herald_engine::app::DeliveryPolicy;
use herald_engine::clock::Clock;
use herald_engine::ids::{AppId, TenantId};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

pub use admission::Refused;
pub use settle::settlement_for;
pub use worker::{Worker, spawn};

use self::breaker::{Breaker, CircuitState};
use self::order::Lanes;
use crate::config::DeliveryConfig;

/// One endpoint as the API may show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointHealth {
    pub endpoint_key: String,
    pub circuit: CircuitState,
    pub consecutive_failures: u32,
    /// Since when it has been failing without a success (`None` while healthy).
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Set when it was disabled for failing too long; deliveries wait until re-enabled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    pub in_flight: usize,
}

/// (tenant, app, endpoint key)
pub(crate) type EndpointId = (TenantId, AppId, String);

/// The mutable side of one endpoint.
pub(crate) struct EndpointState {
    pub breaker: Breaker,
    pub failing_since: Option<OffsetDateTime>,
    pub last_success_at: Option<OffsetDateTime>,
    pub disabled_at: Option<OffsetDateTime>,
}

pub(crate) struct Endpoint {
    pub state: Mutex<EndpointState>,
    /// `max_concurrency` of the policy it was created with; replaced when that changes.
    pub limit: u32,
    pub slots: Arc<Semaphore>,
}

impl Endpoint {
    pub fn lock(&self) -> MutexGuard<'_, EndpointState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn in_flight(&self) -> usize {
        (self.limit as usize).saturating_sub(self.slots.available_permits())
    }
}

/// What the delivery workers share; see the module documentation.
pub struct DeliveryCore {
    pub(crate) settings: DeliveryConfig,
    clock: Arc<dyn Clock>,
    wakeup: Arc<Notify>,
    endpoints: Mutex<HashMap<EndpointId, Arc<Endpoint>>>,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
    /// Attempts per collapse key, one at a time and oldest first (`order`).
    pub(crate) lanes: Arc<Lanes>,
}

impl DeliveryCore {
    /// `wakeup` is what wakes the workers (`Runtime::delivery_wakeup`).
    pub fn new(
        settings: DeliveryConfig,
        clock: Arc<dyn Clock>,
        wakeup: Arc<Notify>,
    ) -> DeliveryCore {
        DeliveryCore {
            settings,
            lanes: Arc::new(Lanes::new(clock.clone())),
            clock,
            wakeup,
            endpoints: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Tells the workers to look at the queue now: call it after committing new deliveries.
    pub fn wake(&self) {
        self.wakeup.notify_one();
    }

    /// The same wake-up as a `Notify` (`notify_one()` wakes the workers).
    pub fn waker(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }

    /// The endpoints of an app this node has delivered to (or tried to).
    pub fn endpoint_health(&self, tenant: &TenantId, app: &AppId) -> Vec<EndpointHealth> {
        let now = self.clock.now();
        let endpoints: Vec<(String, Arc<Endpoint>)> = lock(&self.endpoints)
            .iter()
            .filter(|((t, a, _), _)| t == tenant && a == app)
            .map(|((_, _, key), e)| (key.clone(), e.clone()))
            .collect();
        let mut health: Vec<EndpointHealth> = endpoints
            .into_iter()
            .map(|(endpoint_key, e)| {
                let state = e.lock();
                EndpointHealth {
                    endpoint_key,
                    circuit: state.breaker.state(now),
                    consecutive_failures: state.breaker.consecutive_failures(),
                    failing_since: state.failing_since,
                    last_success_at: state.last_success_at,
                    disabled_at: state.disabled_at,
                    in_flight: e.in_flight(),
                }
            })
            .collect();
        health.sort_by(|a, b| a.endpoint_key.cmp(&b.endpoint_key));
        health
    }

    /// Re-enables a disabled endpoint (its circuit closed, its failure clock reset) and wakes
    /// the workers. Answers whether it was disabled. Deliveries postponed while it was
    /// disabled go at their next check (within the app's `breaker_cool_down_ms`, at least 1 s).
    pub fn reenable(&self, tenant: &TenantId, app: &AppId, endpoint_key: &str) -> bool {
        let id = (tenant.clone(), app.clone(), endpoint_key.to_string());
        let Some(endpoint) = lock(&self.endpoints).get(&id).cloned() else {
            return false;
        };
        let was_disabled = {
            let mut state = endpoint.lock();
            let was = state.disabled_at.take().is_some();
            if was {
                state.breaker = Breaker::default();
                state.failing_since = None;
            }
            was
        };
        if was_disabled {
            tracing::info!(tenant.id = %tenant, app.id = %app, endpoint = %fingerprint(endpoint_key), "endpoint re-enabled");
            self.wake();
        }
        was_disabled
    }

    /// The endpoint's shared state, created on first use; its concurrency limit follows the
    /// app's current policy (a changed limit starts a fresh semaphore, keeping breaker and
    /// health).
    pub(crate) fn endpoint(&self, id: EndpointId, policy: &DeliveryPolicy) -> Arc<Endpoint> {
        let mut endpoints = lock(&self.endpoints);
        let limit = policy.max_concurrency.max(1);
        match endpoints.get(&id) {
            Some(e) if e.limit == limit => e.clone(),
            existing => {
                let state = existing.map(|e| {
                    let s = e.lock();
                    EndpointState {
                        breaker: s.breaker,
                        failing_since: s.failing_since,
                        last_success_at: s.last_success_at,
                        disabled_at: s.disabled_at,
                    }
                });
                let endpoint = Arc::new(Endpoint {
                    state: Mutex::new(state.unwrap_or(EndpointState {
                        breaker: Breaker::default(),
                        failing_since: None,
                        last_success_at: None,
                        disabled_at: None,
                    })),
                    limit,
                    slots: Arc::new(Semaphore::new(limit as usize)),
                });
                endpoints.insert(id, endpoint.clone());
                endpoint
            }
        }
    }

    /// The tenant's bulkhead: `per_tenant_concurrency` slots.
    pub(crate) fn tenant_slots(&self, tenant: &TenantId) -> Arc<Semaphore> {
        lock(&self.tenants)
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_tenant_concurrency)))
            .clone()
    }

    pub(crate) async fn woken(&self) {
        self.wakeup.notified().await;
    }
}

pub(crate) fn ms(n: u64) -> time::Duration {
    time::Duration::milliseconds(i64::try_from(n).unwrap_or(i64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An endpoint key fit for logs: its scheme (the part before the first `:`) and a short hash,
/// never the key itself (it may hold a URL with credentials).
pub fn fingerprint(endpoint_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let kind = endpoint_key
        .split(':')
        .next()
        .filter(|k| k.len() <= 16 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or("endpoint");
    let hash = Sha256::digest(endpoint_key.as_bytes());
    format!("{kind}#{}", hex::encode(&hash[..6]))
}

#[cfg(test)]
mod tests {
    use herald_engine::clock::ManualClock;

    use super::*;

    fn core() -> DeliveryCore {
        let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        DeliveryCore::new(
            DeliveryConfig::default(),
            Arc::new(ManualClock::new(start)),
            Arc::default(),
        )
    }

    fn ids() -> (TenantId, AppId) {
        (
            TenantId::parse("acme").unwrap(),
            AppId::parse("chat").unwrap(),
        )
    }

    #[test]
    fn a_disabled_endpoint_shows_in_its_apps_health_and_is_re_enabled_once() {
        let core = core();
        let (tenant, app) = ids();
        let policy = DeliveryPolicy::default();
        let endpoint = core.endpoint((tenant.clone(), app.clone(), "hook:1".into()), &policy);
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        endpoint.lock().disabled_at = Some(at);
        endpoint.lock().failing_since = Some(at);

        let health = core.endpoint_health(&tenant, &app);
        assert_eq!(health.len(), 1);
        assert_eq!(health[0].endpoint_key, "hook:1");
        assert_eq!(health[0].disabled_at, Some(at));
        assert_eq!(health[0].circuit, CircuitState::Closed);
        assert!(
            core.endpoint_health(&TenantId::parse("beta").unwrap(), &app)
                .is_empty(),
            "per tenant"
        );

        assert!(!core.reenable(&tenant, &app, "hook:2"), "unknown endpoint");
        assert!(core.reenable(&tenant, &app, "hook:1"));
        assert!(!core.reenable(&tenant, &app, "hook:1"), "already enabled");
        let health = core.endpoint_health(&tenant, &app);
        assert_eq!(
            (health[0].disabled_at, health[0].failing_since),
            (None, None)
        );
    }

    #[test]
    fn a_changed_concurrency_limit_keeps_the_endpoints_state() {
        let core = core();
        let (tenant, app) = ids();
        let id = (tenant, app, "k".to_string());
        let first = core.endpoint(id.clone(), &DeliveryPolicy::default());
        first.lock().last_success_at = Some(OffsetDateTime::UNIX_EPOCH);
        let same = core.endpoint(id.clone(), &DeliveryPolicy::default());
        assert!(Arc::ptr_eq(&first, &same));
        let policy = DeliveryPolicy {
            max_concurrency: 2,
            ..DeliveryPolicy::default()
        };
        let resized = core.endpoint(id, &policy);
        assert_eq!(resized.slots.available_permits(), 2);
        assert_eq!(
            resized.lock().last_success_at,
            Some(OffsetDateTime::UNIX_EPOCH)
        );
    }
}
