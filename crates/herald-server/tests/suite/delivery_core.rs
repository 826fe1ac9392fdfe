//! The delivery core (SPEC §3.5) through a real server: retries with backoff and
//! `Retry-After`, invalid tokens removing devices, TTL expiry, retry off, circuit breakers,
//! per-tenant bulkheads, per-endpoint concurrency, and leases that outlive a dead worker.
//!
//! Deliveries are enqueued straight into the queue through a second `SqliteStore` on the hub's
//! database file (as the operator CLI opens it while the server runs), then the worker is woken
//! with `AppState::delivery_wakeup`; the outcomes are read back with `AppState::queue` and
//! watched on a `RecordingChannel`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use herald_engine::delivery::{DeliveryStatus, DeliveryView};
use herald_engine::device::Device;
use herald_engine::ids::{AppId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
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

#[tokio::test]
async fn a_delivered_push_is_recorded_with_one_attempt() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    app(&hub, &hub.key, "chat", json!({})).await;
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let d = delivery(&phone, "default");
    Queue::open(&hub).enqueue(&hub, vec![d.clone()]).await;

    let seen = channel.wait_for(1).await;
    assert_eq!(
        seen,
        std::slice::from_ref(&d),
        "the channel got the delivery as enqueued"
    );
    let done = until_status(&hub, &d, DeliveryStatus::Delivered).await;
    assert_eq!(done.attempts.len(), 1, "{done:?}");
    assert!(matches!(
        done.attempts[0].outcome,
        DeliveryOutcome::Delivered { .. }
    ));
    assert_eq!(done.device_id.as_deref(), Some(phone.id.as_str()));
    assert_eq!(done.next_attempt_at, None);
}

#[tokio::test]
async fn a_503_is_retried_after_the_backoff_and_retry_after_delays_it_further() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    app(
        &hub,
        &hub.key,
        "chat",
        json!({"retry_base_delay_ms": 50, "retry_max_delay_ms": 1000}),
    )
    .await;
    let queue = Queue::open(&hub);

    // A 503, then a success: two attempts, the second at least the backoff after the first
    // (50 ms with full jitter: at least 25 ms).
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    channel.script(
        "tok-1",
        vec![
            RecordingChannel::failing(503, None),
            RecordingChannel::delivered(),
        ],
    );
    let d = delivery(&phone, "default");
    queue.enqueue(&hub, vec![d.clone()]).await;
    let done = until_status(&hub, &d, DeliveryStatus::Delivered).await;
    assert_eq!(done.attempts.len(), 2, "{done:?}");
    assert!(matches!(
        done.attempts[0].outcome,
        DeliveryOutcome::Retryable {
            status: Some(503),
            ..
        }
    ));
    let gap = done.attempts[1].at - done.attempts[0].at;
    assert!(millis(gap) >= 24, "retried only {gap} later");
    assert_eq!(ids(&channel.deliveries()), [d.id.as_str(), d.id.as_str()]);
    assert_eq!(
        channel
            .deliveries()
            .iter()
            .map(|d| d.attempt)
            .collect::<Vec<_>>(),
        [1, 2]
    );

    // Retry-After: 2 s is a floor over the 50 ms backoff.
    let tablet = device(&hub, &hub.key, "default", "chat", "alice", "tok-2").await;
    channel.script(
        "tok-2",
        vec![
            RecordingChannel::failing(503, Some(2_000)),
            RecordingChannel::delivered(),
        ],
    );
    let d = delivery(&tablet, "default");
    queue.enqueue(&hub, vec![d.clone()]).await;
    let waiting = until(&hub, &d, "retried", |v| {
        v.attempts.len() == 1 && v.status == DeliveryStatus::Pending
    })
    .await;
    let next = waiting
        .next_attempt_at
        .expect("a pending delivery has a next attempt");
    assert!(
        // The queue keeps times to the millisecond.
        millis(next - waiting.attempts[0].at) >= 1_999,
        "Retry-After was not honoured: {waiting:?}"
    );
    let done = until_status(&hub, &d, DeliveryStatus::Delivered).await;
    assert!(
        done.attempts[1].at >= next - Duration::milliseconds(1),
        "{done:?}"
    );
}

#[tokio::test]
async fn an_invalid_token_removes_the_device_and_its_other_deliveries_are_never_tried() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    app(&hub, &hub.key, "chat", json!({})).await;
    let queue = Queue::open(&hub);
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-dead").await;
    let other = device(&hub, &hub.key, "default", "chat", "alice", "tok-alive").await;
    channel.script(
        "tok-dead",
        vec![RecordingChannel::invalid("the token is unregistered")],
    );

    let first = delivery(&phone, "default");
    let second = delivery(&phone, "default");
    // Queued first but due a little later, so the first one settles before it could be
    // claimed.
    queue
        .enqueue_at(
            &hub,
            vec![second.clone()],
            now() + Duration::milliseconds(1_500),
        )
        .await;
    queue.enqueue(&hub, vec![first.clone()]).await;

    let failed = until_status(&hub, &first, DeliveryStatus::InvalidTarget).await;
    assert_eq!(
        failed.attempts[0].outcome,
        RecordingChannel::invalid("the token is unregistered"),
        "the reason is in the history"
    );
    let (status, listed) = hub.get("/v1/users/alice/devices", &hub.key).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [other.id.as_str()],
        "the dead device is gone, the other stays"
    );

    let never = view(&hub, &second).await;
    assert_eq!(never.status, DeliveryStatus::InvalidTarget, "{never:?}");
    // Past its due time, it still was not sent.
    tokio::time::sleep(StdDuration::from_millis(1_800)).await;
    assert_eq!(ids(&channel.deliveries()), [first.id.as_str()]);
    assert!(view(&hub, &second).await.attempts.is_empty());
}

#[tokio::test]
async fn a_delivery_whose_push_expired_is_recorded_expired_and_never_sent() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    app(&hub, &hub.key, "chat", json!({})).await;
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let stale = delivery_expiring(&phone, "default", now() - Duration::seconds(1));
    let fresh = delivery(&phone, "default");
    Queue::open(&hub)
        .enqueue(&hub, vec![stale.clone(), fresh.clone()])
        .await;
    until_status(&hub, &fresh, DeliveryStatus::Delivered).await;
    let expired = until_status(&hub, &stale, DeliveryStatus::Expired).await;
    assert!(expired.attempts.is_empty());
    assert!(
        expired.note.as_deref().unwrap_or_default().contains("TTL"),
        "{expired:?}"
    );
    assert_eq!(
        ids(&channel.deliveries()),
        [fresh.id.as_str()],
        "only the fresh one was sent"
    );
}

#[tokio::test]
async fn with_retry_off_a_failure_is_attempted_once() {
    let channel = RecordingChannel::new();
    channel.answer(RecordingChannel::failing(503, None));
    let hub = hub(&channel).await;
    app(
        &hub,
        &hub.key,
        "chat",
        json!({"retry": false, "retry_base_delay_ms": 50}),
    )
    .await;
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let d = delivery(&phone, "default");
    Queue::open(&hub).enqueue(&hub, vec![d.clone()]).await;
    let failed = until_status(&hub, &d, DeliveryStatus::Failed).await;
    assert_eq!(failed.attempts.len(), 1, "{failed:?}");
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(channel.deliveries().len(), 1, "never retried");
}

#[tokio::test]
async fn consecutive_503s_open_the_circuit_and_one_probe_after_the_cool_down_closes_it() {
    let channel = RecordingChannel::new();
    channel.answer(RecordingChannel::failing(503, None));
    let hub = hub(&channel).await;
    // Retries far away, so only new deliveries reach the endpoint during the story.
    app(
        &hub,
        &hub.key,
        "chat",
        json!({"breaker_failures": 3, "breaker_cool_down_ms": 1500, "retry_base_delay_ms": 120000, "retry_max_delay_ms": 120000}),
    )
    .await;
    let queue = Queue::open(&hub);
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let failing: Vec<Delivery> = (0..3).map(|_| delivery(&phone, "default")).collect();
    queue.enqueue(&hub, failing.clone()).await;
    for d in &failing {
        until(&hub, d, "retrying", |v| v.attempts.len() == 1).await;
    }

    // Open: the next delivery waits without an attempt, until the cool-down is over.
    channel.answer(RecordingChannel::delivered());
    let probe = delivery(&phone, "default");
    queue.enqueue(&hub, vec![probe.clone()]).await;
    let held = until(&hub, &probe, "postponed", |v| v.note.is_some()).await;
    assert_eq!(held.status, DeliveryStatus::Pending);
    assert!(
        held.attempts.is_empty(),
        "postponed, not attempted: {held:?}"
    );
    assert!(
        held.note.as_deref().unwrap().starts_with("circuit open"),
        "{held:?}"
    );
    assert_eq!(channel.deliveries().len(), 3);

    // After the cool-down it goes as the probe; its success closes the circuit.
    let probed = until_status(&hub, &probe, DeliveryStatus::Delivered).await;
    assert_eq!(probed.attempts.len(), 1);
    assert!(probed.attempts[0].at >= held.next_attempt_at.unwrap() - Duration::milliseconds(1));
    let after = delivery(&phone, "default");
    queue.enqueue(&hub, vec![after.clone()]).await;
    let done = until_status(&hub, &after, DeliveryStatus::Delivered).await;
    assert_eq!(
        (done.attempts.len(), done.note),
        (1, None),
        "closed: sent at once"
    );
}

#[tokio::test]
async fn statuses_outside_breaker_statuses_never_open_the_circuit() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    // The push-proxy preset: no retries, 400 and 500 do not count.
    app(
        &hub,
        &hub.key,
        "chat",
        json!({"retry": false, "breaker_failures": 2, "breaker_statuses": [408, 429, 502, 503, 504]}),
    )
    .await;
    let queue = Queue::open(&hub);
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let mut all = vec![];
    for outcome in [
        RecordingChannel::failing(500, None),
        RecordingChannel::rejected(400),
    ] {
        channel.answer(outcome);
        let batch: Vec<Delivery> = (0..3).map(|_| delivery(&phone, "default")).collect();
        queue.enqueue(&hub, batch.clone()).await;
        for d in &batch {
            let failed = until_status(&hub, d, DeliveryStatus::Failed).await;
            assert_eq!(failed.attempts.len(), 1, "{failed:?}");
        }
        all.extend(batch);
    }
    channel.answer(RecordingChannel::delivered());
    let last = delivery(&phone, "default");
    queue.enqueue(&hub, vec![last.clone()]).await;
    let done = until_status(&hub, &last, DeliveryStatus::Delivered).await;
    assert_eq!(
        (done.attempts.len(), done.note),
        (1, None),
        "never held back"
    );
    assert_eq!(channel.deliveries().len(), 7);
}

#[tokio::test]
async fn a_tenant_whose_endpoint_hangs_does_not_delay_another_tenant() {
    let slow = RecordingChannel::new();
    slow.set_endpoint_key("slow-endpoint");
    slow.hang();
    let fast = RecordingChannel::new();
    fast.set_endpoint_key("fast-endpoint");
    let hub = TestHub::builder()
        .configure(|c| {
            c.auth.operator_key = Some(OPERATOR_KEY.into());
            c.delivery.poll_ms = 50;
            c.delivery.batch = 8;
            c.delivery.max_in_flight = 8;
            c.delivery.per_tenant_concurrency = 4;
        })
        .channel("fcm", slow.clone())
        .channel("connector", fast.clone())
        .start()
        .await;
    let (status, created) = hub
        .post("/v1/admin/tenants", OPERATOR_KEY, json!({"id": "beta"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let beta_key = created["secret"].as_str().unwrap().to_string();

    app(&hub, &hub.key, "alpha-app", json!({})).await;
    app(&hub, &beta_key, "beta-app", json!({})).await;
    let alpha_phone = device(&hub, &hub.key, "default", "alpha-app", "alice", "tok-a").await;
    let bob = hub.token_with(&beta_key, "bob").await;
    let (status, body) = hub
        .post(
            "/v1/me/devices",
            &bob,
            json!({"app_id": "beta-app", "channel": "connector", "token": "opaque-b", "platform": "ios"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let beta = TenantId::parse("beta").unwrap();
    let beta_phone = hub
        .state
        .store
        .list_devices(&beta, &UserId::parse("bob").unwrap())
        .await
        .unwrap()
        .remove(0);

    // Alpha's backlog comes first and is more than this node can have in flight.
    let alpha: Vec<Delivery> = (0..12).map(|_| delivery(&alpha_phone, "default")).collect();
    Queue::open(&hub).enqueue(&hub, alpha).await;
    slow.wait_for(4).await;
    let beta_deliveries: Vec<Delivery> = (0..3).map(|_| delivery(&beta_phone, "beta")).collect();
    Queue::open(&hub)
        .enqueue(&hub, beta_deliveries.clone())
        .await;
    for d in &beta_deliveries {
        until_status(&hub, d, DeliveryStatus::Delivered).await;
    }
    assert_eq!(fast.deliveries().len(), 3);
    assert!(
        slow.max_in_flight() <= 4,
        "alpha kept to its share: {}",
        slow.max_in_flight()
    );
    slow.release();
}

#[tokio::test]
async fn an_endpoint_has_at_most_max_concurrency_deliveries_in_flight() {
    let channel = RecordingChannel::new();
    channel.hang();
    let hub = hub(&channel).await;
    app(&hub, &hub.key, "chat", json!({"max_concurrency": 2})).await;
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let all: Vec<Delivery> = (0..5).map(|_| delivery(&phone, "default")).collect();
    Queue::open(&hub).enqueue(&hub, all.clone()).await;
    channel.wait_for(2).await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(channel.deliveries().len(), 2, "the others wait for a slot");
    assert_eq!(channel.in_flight(), 2);
    channel.release();
    for d in &all {
        until_status(&hub, d, DeliveryStatus::Delivered).await;
    }
    assert_eq!(channel.max_in_flight(), 2);
    assert_eq!(channel.deliveries().len(), 5);
}

#[tokio::test]
async fn a_delivery_whose_worker_died_is_claimed_again_after_its_lease() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    app(&hub, &hub.key, "chat", json!({})).await;
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let d = delivery(&phone, "default");
    let queue = Queue::open(&hub);
    // Due in 500 ms; another worker claims it as of that time, with a 1 s lease, and dies
    // without settling it.
    let due = now() + Duration::milliseconds(500);
    queue
        .store
        .enqueue_deliveries(vec![d.clone()], due)
        .await
        .unwrap();
    use herald_engine::delivery::DeliveryQueue;
    let taken = queue
        .store
        .claim_deliveries(due, Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(ids(&taken), [d.id.as_str()]);
    let lease_end = due + Duration::seconds(1);

    let done = until_status(&hub, &d, DeliveryStatus::Delivered).await;
    assert_eq!(done.attempts.len(), 1, "{done:?}");
    assert!(
        done.attempts[0].at >= lease_end - Duration::milliseconds(1),
        "claimed again only after the lease: {done:?}"
    );
    let seen = channel.deliveries();
    assert_eq!(ids(&seen), [d.id.as_str()]);
    assert_eq!(
        seen[0].attempt, 1,
        "nothing was recorded for the dead worker's claim"
    );
}

#[tokio::test]
async fn a_delivery_to_a_deleted_app_or_an_unknown_channel_fails_with_the_reason() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    app(&hub, &hub.key, "chat", json!({})).await;
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let mut unknown = delivery(&phone, "default");
    unknown.channel = "pigeon".into();
    let mut orphan = delivery(&phone, "default");
    orphan.app_id = AppId::parse("gone").unwrap();
    orphan.push.app_id = orphan.app_id.clone();
    Queue::open(&hub)
        .enqueue(&hub, vec![unknown.clone(), orphan.clone()])
        .await;
    let failed = until_status(&hub, &unknown, DeliveryStatus::Failed).await;
    assert_eq!(
        failed.note.as_deref(),
        Some("no channel `pigeon` is configured on this server")
    );
    let failed = until_status(&hub, &orphan, DeliveryStatus::Failed).await;
    assert_eq!(failed.note.as_deref(), Some("app deleted"));
    assert!(channel.deliveries().is_empty());
}

#[tokio::test]
async fn an_endpoint_failing_for_disable_after_ms_is_disabled_its_deliveries_wait_and_the_operator_reenables_it()
 {
    let channel = RecordingChannel::new();
    channel.answer(RecordingChannel::failing(503, None));
    let hub = hub(&channel).await;
    app(
        &hub,
        &hub.key,
        "chat",
        json!({"disable_after_ms": 300, "breaker_failures": 100, "breaker_cool_down_ms": 200, "retry_base_delay_ms": 50, "retry_max_delay_ms": 100, "max_attempts": 100}),
    )
    .await;
    let queue = Queue::open(&hub);
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let d = delivery(&phone, "default");
    queue.enqueue(&hub, vec![d.clone()]).await;
    let disabled = |v: &DeliveryView| {
        v.note
            .as_deref()
            .is_some_and(|n| n.contains("endpoint was disabled"))
    };
    let held = until(&hub, &d, "held by the disabled endpoint", disabled).await;
    assert_eq!(held.status, DeliveryStatus::Pending);
    let first = held.attempts.first().expect("it failed before").at;
    let last = held.attempts.last().unwrap().at;
    assert!(millis(last - first) >= 250, "disabled too soon: {held:?}");

    // New deliveries to it wait too, without an attempt.
    let later = delivery(&phone, "default");
    queue.enqueue(&hub, vec![later.clone()]).await;
    let waiting = until(&hub, &later, "held", disabled).await;
    assert!(waiting.attempts.is_empty(), "{waiting:?}");
    let tried = channel.deliveries().len();
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(channel.deliveries().len(), tried, "nothing reaches it");

    // The operator sees it disabled in the app's endpoint view, and re-enables it.
    let (status, health) = hub.get("/v1/apps/chat/endpoints", &hub.key).await;
    assert_eq!(status, 200);
    let endpoint = &health[0];
    assert!(endpoint["disabled_at"].is_string(), "{health}");
    let key = endpoint["endpoint_key"].as_str().unwrap().to_string();
    channel.answer(RecordingChannel::delivered());
    let (status, _) = hub
        .post(
            "/v1/apps/chat/endpoints/enable",
            &hub.key,
            json!({"endpoint_key": key}),
        )
        .await;
    assert_eq!(status, 200);
    until_status(&hub, &later, DeliveryStatus::Delivered).await;
    let (_, health) = hub.get("/v1/apps/chat/endpoints", &hub.key).await;
    assert!(health[0]["disabled_at"].is_null(), "{health}");
    let (status, _) = hub
        .post(
            "/v1/apps/chat/endpoints/enable",
            &hub.key,
            json!({"endpoint_key": key}),
        )
        .await;
    assert_eq!(status, 404, "an enabled endpoint cannot be re-enabled");

    let metrics = hub.http.get(hub.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for name in [
        "herald_endpoints_reenabled_total",
        "herald_endpoints_disabled_total",
        "herald_deliveries_total",
        "herald_delivery_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn a_signed_out_users_queued_push_is_never_sent() {
    let channel = RecordingChannel::new();
    let hub = hub(&channel).await;
    app(&hub, &hub.key, "chat", json!({})).await;
    let phone = device(&hub, &hub.key, "default", "chat", "alice", "tok-1").await;
    let d = delivery(&phone, "default");
    Queue::open(&hub)
        .enqueue_at(&hub, vec![d.clone()], now() + Duration::milliseconds(300))
        .await;
    let (status, _) = hub.delete("/v1/users/alice/devices", &hub.key).await;
    assert!(status.is_success());
    let cancelled = until_status(&hub, &d, DeliveryStatus::Cancelled).await;
    assert_eq!(cancelled.note.as_deref(), Some("the device was removed"));
    assert!(channel.deliveries().is_empty());
}
