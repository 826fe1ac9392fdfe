//! What becomes of a delivery: delivered, retried with backoff, device removed, expired,
//! attempted once, failed with the reason, never sent.

use std::time::Duration as StdDuration;

use herald_engine::delivery::DeliveryStatus;
use herald_engine::ids::AppId;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::RecordingChannel;
use serde_json::json;
use time::Duration;

use super::*;

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
