//! Per-tenant bulkheads, per-endpoint concurrency, and leases that outlive a dead worker.

use std::time::Duration as StdDuration;

use herald_engine::delivery::DeliveryStatus;
use herald_engine::ids::{TenantId, UserId};
use herald_engine::push::Delivery;
use herald_testkit::{RecordingChannel, TestHub};
use serde_json::json;
use time::Duration;

use super::*;

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
