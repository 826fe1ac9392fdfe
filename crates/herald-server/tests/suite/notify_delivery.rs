//! The engine and the delivery core together: what the engine decides reaches a channel.

use std::sync::Arc;

use herald_engine::clock::ManualClock;
use herald_engine::push::{PushKind, Target};
use herald_testkit::recording::RecordingChannel;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::json;

async fn hub_with(channel: Arc<RecordingChannel>, clock: Arc<ManualClock>) -> TestHub {
    let hub = TestHub::builder()
        .clock(clock)
        .channel("apns", channel)
        .start()
        .await;
    let (status, _) = hub
        .put(
            "/v1/apps/chat",
            &hub.key,
            json!({"rules": {"grace_delay_ms": 5000}}),
        )
        .await;
    assert_eq!(status, 201);
    hub.put(
        "/v1/conversations/c1/participants/visitor-1",
        &hub.key,
        json!({"role": "visitor"}),
    )
    .await;
    let token = hub.token("visitor-1").await;
    let device =
        json!({"app_id": "chat", "channel": "apns", "token": "abcd1234", "platform": "ios"});
    assert_eq!(hub.post("/v1/me/devices", &token, device).await.0, 201);
    hub
}

async fn say(hub: &TestHub, id: &str, text: &str) -> u64 {
    let event = json!({"event_id": id, "conversation_id": "c1", "type": "message.created", "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text});
    hub.events(event).await["position"].as_u64().unwrap()
}

/// Lets the engine evaluate everything posted so far.
async fn settle(hub: &TestHub) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !hub.state.notify.outbox(1).await.unwrap().is_empty() {
        hub.state.engine.wake();
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_agents_messages_reach_the_visitors_phone_once_after_the_grace_delay_and_a_read_clears_them()
 {
    let channel = RecordingChannel::new();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub_with(channel.clone(), clock.clone()).await;
    say(&hub, "m1", "Hello").await;
    let last = say(&hub, "m2", "Your order shipped").await;
    settle(&hub).await;
    assert!(
        channel.deliveries().is_empty(),
        "nothing inside the grace delay"
    );
    clock.advance(time::Duration::seconds(5));
    hub.state.engine.wake();
    let delivered = channel.wait_for(1).await;
    assert_eq!(delivered.len(), 1);
    let push = &delivered[0].push;
    assert_eq!(
        (push.kind, push.message_count, push.badge),
        (PushKind::NewMessage, 2, 2)
    );
    assert_eq!(push.body.as_deref(), Some("Your order shipped"));
    assert!(
        matches!(&delivered[0].target, Target::Device { device } if device.token == "abcd1234")
    );

    let token = hub.token("visitor-1").await;
    hub.post(
        "/v1/me/conversations/c1/read",
        &token,
        json!({"position": last}),
    )
    .await;
    let both = channel.wait_for(2).await;
    let read = &both[1].push;
    assert_eq!((read.kind, read.badge), (PushKind::Read, 0));
    assert_eq!(read.collapse_key, push.collapse_key);
    assert!(read.title.is_none());
}

#[tokio::test]
async fn a_dead_token_is_removed_after_its_first_rejection_and_never_tried_again() {
    let channel = RecordingChannel::new();
    channel.script("abcd1234", vec![RecordingChannel::invalid("Unregistered")]);
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub_with(channel.clone(), clock.clone()).await;
    hub.put(
        "/v1/apps/chat",
        &hub.key,
        json!({"rules": {"grace_delay_ms": 0}}),
    )
    .await;
    say(&hub, "m1", "one").await;
    channel.wait_for(1).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while hub.get("/v1/users/visitor-1/devices", &hub.key).await.1 != json!([]) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the device was never removed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    clock.advance(time::Duration::seconds(10));
    let second = say(&hub, "m2", "two").await;
    settle(&hub).await;
    let (_, list) = hub.get("/v1/users/visitor-1/notifications", &hub.key).await;
    let latest = &list["notifications"][0];
    assert_eq!(latest["position"], second);
    assert!(
        latest["reason"].as_str().unwrap().contains("no device"),
        "{latest}"
    );
    assert_eq!(channel.deliveries().len(), 1, "never tried again");
}

#[tokio::test]
async fn a_web_push_subscription_that_misses_its_health_check_is_asked_to_resubscribe() {
    let channel = RecordingChannel::new();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = TestHub::builder()
        .clock(clock.clone())
        .channel("webpush", channel.clone())
        .start()
        .await;
    let app = json!({"webpush": {"subject": "mailto:ops@example.com", "health_check_interval_s": 60, "health_check_timeout_s": 30}});
    assert_eq!(hub.put("/v1/apps/web", &hub.key, app).await.0, 201);
    let token = hub.token("agent-1").await;
    let subscription = json!({"endpoint": "https://push.example.net/send/abc", "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg"}});
    let (_, device) = hub.post("/v1/me/devices", &token, json!({"app_id": "web", "channel": "webpush", "subscription": subscription, "platform": "web"})).await;
    let device_id = device["id"].as_str().unwrap().to_string();

    // The first check goes out; the service worker acknowledges it.
    let first = channel.wait_for(1).await;
    assert_eq!(first[0].push.kind, PushKind::HealthCheck);
    let check = first[0].push.data["check_id"].clone();
    let ack = format!("/v1/me/devices/{device_id}/health/{check}");
    assert_eq!(hub.post(&ack, &token, json!({})).await.0, 204);
    assert_eq!(
        hub.post(&ack, &token, json!({})).await.0,
        404,
        "acknowledged once"
    );
    let stranger = hub.token("someone-else").await;
    assert_eq!(
        hub.post(&ack, &stranger, json!({})).await.0,
        404,
        "only the owner acknowledges"
    );

    // An interval later the next check goes out, and nobody answers it.
    clock.advance(time::Duration::seconds(61));
    hub.state.engine.wake();
    let second = channel.wait_for(2).await;
    assert_ne!(second[1].push.data["check_id"], check);
    clock.advance(time::Duration::seconds(31));
    let tenant = herald_engine::ids::TenantId::parse("default").unwrap();
    let user = herald_engine::ids::UserId::parse("agent-1").unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while hub
        .state
        .notify
        .unhealthy_devices(&tenant, &user)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the missed check was never noticed"
        );
        hub.state.engine.wake();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The user's next live session is told to resubscribe.
    let mut live = hub.live("agent-1").await;
    let frame = live.next().await;
    assert_eq!(
        frame,
        json!({"type": "resubscribe", "device_id": device_id, "app_id": "web"})
    );
}

#[tokio::test]
async fn writes_through_the_api_wake_the_engine_instead_of_waiting_for_its_poll() {
    // The engine's poll is a minute, longer than the test waits: only a wake-up from the
    // API can get these pushes out in time.
    let channel = RecordingChannel::new();
    let hub = TestHub::builder()
        .configure(|c| c.engine.poll_ms = 60_000)
        .channel("apns", channel.clone())
        .start()
        .await;
    let app = json!({"rules": {"grace_delay_ms": 0}});
    assert_eq!(hub.put("/v1/apps/chat", &hub.key, app).await.0, 201);
    hub.put(
        "/v1/conversations/c1/participants/visitor-1",
        &hub.key,
        json!({"role": "visitor"}),
    )
    .await;
    let token = hub.token("visitor-1").await;
    let device =
        json!({"app_id": "chat", "channel": "apns", "token": "abcd1234", "platform": "ios"});
    assert_eq!(hub.post("/v1/me/devices", &token, device).await.0, 201);

    let position = say(&hub, "m1", "Hello").await;
    let sent = channel.wait_for(1).await;
    assert_eq!(sent[0].push.kind, PushKind::NewMessage);

    let (status, _) = hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    assert_eq!(status, 200);
    let sent = channel.wait_for(2).await;
    assert_eq!((sent[1].push.kind, sent[1].push.badge), (PushKind::Read, 0));
}

/// The value of the `/metrics` sample whose name and labels are exactly `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_grace_timer_that_fires_records_how_late_its_decision_was_committed() {
    let channel = RecordingChannel::new();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub_with(channel.clone(), clock.clone()).await;
    say(&hub, "m1", "Hello").await;
    settle(&hub).await;
    // The manual clock stands still while the engine works, so the lateness is exactly how far
    // past the 5 s grace delay it is moved: 25 ms, between the 20 ms and 30 ms buckets.
    clock.advance(time::Duration::milliseconds(5_025));
    hub.state.engine.wake();
    channel.wait_for(1).await;
    let count = "herald_timer_lateness_seconds_count{timer=\"push\"}";
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let metrics = loop {
        let response = hub.http.get(hub.url("/metrics")).send().await.unwrap();
        let metrics = response.text().await.unwrap();
        if sample(&metrics, count).is_some() {
            break metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no timer lateness in:\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(sample(&metrics, count), Some(1.0), "{metrics}");
    let bucket = |le: &str| {
        sample(
            &metrics,
            &format!("herald_timer_lateness_seconds_bucket{{timer=\"push\",le=\"{le}\"}}"),
        )
    };
    assert_eq!(
        (bucket("0.02"), bucket("0.03")),
        (Some(0.0), Some(1.0)),
        "{metrics}"
    );
}

/// The notification's status once every delivery of the first push has ended.
async fn concluded_status(hub: &TestHub, clock: &ManualClock) -> serde_json::Value {
    say(hub, "m1", "Hello").await;
    settle(hub).await;
    clock.advance(time::Duration::seconds(5));
    hub.state.engine.wake();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, list) = hub.get("/v1/users/visitor-1/notifications", &hub.key).await;
        let sent = list["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "new_message" && n["status"] != "pending")
            .cloned();
        if let Some(n) = sent {
            let (_, view) = hub
                .get(
                    &format!("/v1/notifications/{}", n["id"].as_str().unwrap()),
                    &hub.key,
                )
                .await;
            let ended = view["deliveries"]
                .as_array()
                .is_some_and(|d| !d.is_empty() && d.iter().all(|d| d["status"] != "pending"));
            if ended {
                // The view reads the record before the deliveries, so this one may hold the
                // record from before the last settlement; a read after it sees the conclusion.
                let (_, view) = hub
                    .get(
                        &format!("/v1/notifications/{}", n["id"].as_str().unwrap()),
                        &hub.key,
                    )
                    .await;
                return view;
            }
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_notification_whose_only_delivery_failed_says_failed_not_sent() {
    let channel = RecordingChannel::new();
    channel.script("abcd1234", vec![RecordingChannel::rejected(400)]);
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub_with(channel.clone(), clock.clone()).await;
    let view = concluded_status(&hub, &clock).await;
    assert_eq!(view["status"], "failed", "{view:#}");
    let log: Vec<&str> = view["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(log, ["pending", "sent", "failed"], "{view:#}");
}

#[tokio::test]
async fn a_notification_delivered_to_one_of_two_devices_says_partial() {
    let channel = RecordingChannel::new();
    channel.script(
        "dead0002",
        vec![RecordingChannel::invalid("BadDeviceToken")],
    );
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub_with(channel.clone(), clock.clone()).await;
    let token = hub.token("visitor-1").await;
    let tablet =
        json!({"app_id": "chat", "channel": "apns", "token": "dead0002", "platform": "ios"});
    assert_eq!(hub.post("/v1/me/devices", &token, tablet).await.0, 201);
    let view = concluded_status(&hub, &clock).await;
    assert_eq!(view["status"], "partial", "{view:#}");
    assert!(
        view["reason"]
            .as_str()
            .unwrap()
            .contains("delivered to 1 of 2"),
        "{view:#}"
    );
}

#[tokio::test]
async fn a_notification_delivered_everywhere_still_says_sent() {
    let channel = RecordingChannel::new();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub_with(channel.clone(), clock.clone()).await;
    let view = concluded_status(&hub, &clock).await;
    assert_eq!(view["status"], "sent", "{view:#}");
}
