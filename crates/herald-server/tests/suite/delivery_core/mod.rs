//! Files: `outcomes.rs` (delivered, retried, removed, expired, failed, never sent),
//! `breakers.rs` (circuit breakers and disabled endpoints), `concurrency.rs` (bulkheads,
//! per-endpoint concurrency, leases). This file holds the hub, queue and deliveries they share.
//!
//! The delivery core (SPEC §3.5) through a real server: retries with backoff and
//! `Retry-After`, invalid tokens removing devices, TTL expiry, retry off, circuit breakers,
//! per-tenant bulkheads, per-endpoint concurrency, and leases that outlive a dead worker.
//!
//! Deliveries are enqueued straight into the queue through a second `SqliteStore` on the hub's
//! database file (as the operator CLI opens it while the server runs), then the worker is woken
//! with `AppState::delivery_wakeup`; the outcomes are read back with `AppState::queue` and
//! watched on a `RecordingChannel`.

mod breakers;
mod concurrency;
mod outcomes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use herald_engine::delivery::{DeliveryStatus, DeliveryView};
use herald_engine::device::Device;
use herald_engine::ids::{TenantId, UserId};
use herald_engine::push::{Delivery, Push, PushKind, Target};
use herald_server::server::DB_FILE;
use herald_store_sqlite::SqliteStore;
use herald_testkit::{PATIENCE, RecordingChannel, TestHub};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const OPERATOR_KEY: &str = "op-key-0123456789abcdef";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A hub whose worker looks at the queue often, with `channel` as its `fcm` channel.
async fn hub(channel: &Arc<RecordingChannel>) -> TestHub {
    hub_with(channel, |_| {}).await
}

async fn hub_with(
    channel: &Arc<RecordingChannel>,
    configure: impl FnOnce(&mut herald_server::config::Config),
) -> TestHub {
    TestHub::builder()
        .configure(|c| {
            c.delivery.poll_ms = 50;
            configure(c);
        })
        .channel("fcm", channel.clone())
        .start()
        .await
}

/// The hub's queue, opened a second time for enqueuing (the first belongs to the server).
struct Queue {
    store: SqliteStore,
}

impl Queue {
    fn open(hub: &TestHub) -> Queue {
        Queue {
            store: SqliteStore::open(&hub.data_dir().join(DB_FILE)).expect("the store opens"),
        }
    }

    /// Enqueues, due at `due`, and wakes the worker.
    async fn enqueue_at(&self, hub: &TestHub, deliveries: Vec<Delivery>, due: OffsetDateTime) {
        self.store
            .enqueue_deliveries(deliveries, due)
            .await
            .expect("enqueued");
        hub.state.delivery_wakeup.notify_one();
    }

    async fn enqueue(&self, hub: &TestHub, deliveries: Vec<Delivery>) {
        self.enqueue_at(hub, deliveries, now()).await;
    }
}

/// Puts app `app` with the given delivery policy.
async fn app(hub: &TestHub, key: &str, app: &str, policy: Value) {
    let (status, body) = hub
        .put(&format!("/v1/apps/{app}"), key, json!({"delivery": policy}))
        .await;
    assert!(status.is_success(), "app refused: {body}");
}

/// Registers a device for `user` and answers its snapshot as the store holds it.
async fn device(
    hub: &TestHub,
    key: &str,
    tenant: &str,
    app: &str,
    user: &str,
    token: &str,
) -> Device {
    let client = hub.token_with(key, user).await;
    let (status, body) = hub
        .post(
            "/v1/me/devices",
            &client,
            json!({"app_id": app, "channel": "fcm", "token": token, "platform": "android"}),
        )
        .await;
    assert!(status.is_success(), "device refused: {body}");
    let devices = hub
        .state
        .store
        .list_devices(
            &TenantId::parse(tenant).unwrap(),
            &UserId::parse(user).unwrap(),
        )
        .await
        .unwrap();
    devices
        .into_iter()
        .find(|d| d.token == token)
        .expect("the registered device")
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A delivery of a fresh notification (`n-<k>`, delivery `d-<k>`) to `device`, expiring in an
/// hour.
fn delivery(device: &Device, tenant: &str) -> Delivery {
    delivery_expiring(device, tenant, now() + Duration::hours(1))
}

fn delivery_expiring(device: &Device, tenant: &str, expires_at: OffsetDateTime) -> Delivery {
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let tenant = TenantId::parse(tenant).unwrap();
    Delivery {
        id: format!("d-{k}"),
        notification_id: format!("n-{k}"),
        tenant_id: tenant.clone(),
        app_id: device.app_id.clone(),
        channel: device.channel.as_str().to_string(),
        target: Target::Device {
            device: device.clone(),
        },
        push: Push {
            kind: PushKind::NewMessage,
            tenant_id: tenant,
            app_id: device.app_id.clone(),
            user_id: device.user_id.clone(),
            conversation_id: None,
            position: None,
            event_id: None,
            event_at: None,
            title: Some("Ann".into()),
            body: Some("hello".into()),
            lines: vec![],
            sender: None,
            message_count: 1,
            unread: 1,
            badge: 1,
            call_id: None,
            missed_calls: 0,
            collapse_key: "c1".into(),
            high_priority: true,
            data: Default::default(),
            created_at: now() - Duration::minutes(1),
            expires_at,
            gateway: None,
            gms: None,
        },
        attempt: 1,
    }
}

async fn view(hub: &TestHub, d: &Delivery) -> DeliveryView {
    let views = hub
        .state
        .queue
        .deliveries_of(&d.tenant_id, &d.notification_id)
        .await
        .expect("deliveries read");
    views
        .into_iter()
        .find(|v| v.id == d.id)
        .expect("the delivery is stored")
}

/// Polls the delivery's view until `done` holds (up to `PATIENCE`).
async fn until(
    hub: &TestHub,
    d: &Delivery,
    what: &str,
    done: impl Fn(&DeliveryView) -> bool,
) -> DeliveryView {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let v = view(hub, d).await;
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never became {what}: {v:?}",
            d.id
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

async fn until_status(hub: &TestHub, d: &Delivery, status: DeliveryStatus) -> DeliveryView {
    until(hub, d, status.as_str(), |v| v.status == status).await
}

fn ids(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.id.as_str()).collect()
}

fn millis(d: Duration) -> i64 {
    d.whole_milliseconds() as i64
}
