//! Circuit breakers, and endpoints disabled after failing for `disable_after_ms`.

use std::time::Duration as StdDuration;

use herald_engine::delivery::{DeliveryStatus, DeliveryView};
use herald_engine::push::Delivery;
use herald_testkit::RecordingChannel;
use serde_json::json;
use time::Duration;

use super::*;

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
