//! Live sessions through the real WebSocket surface (SPEC §2.4).

use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::ManualClock;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};

fn message(id: &str, conversation: &str, sender: &str, role: &str, text: &str) -> Value {
    json!({
        "event_id": id, "conversation_id": conversation, "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": sender, "role": role, "name": sender}, "text": text
    })
}

async fn join(hub: &TestHub, conversation: &str, user: &str, role: &str) {
    let (status, body) = hub
        .put(
            &format!("/v1/conversations/{conversation}/participants/{user}"),
            &hub.key,
            json!({"role": role}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn presence(hub: &TestHub, user: &str) -> Value {
    hub.get(&format!("/v1/users/{user}/presence"), &hub.key)
        .await
        .1
}

/// Polls until `check` holds (a liveness bound, not a speed assertion).
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never became true"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_message_posted_over_http_arrives_on_the_visitors_live_session_with_the_unread_count() {
    let hub = TestHub::start().await;
    join(&hub, "c1", "visitor-1", "visitor").await;
    let mut visitor = hub.live("visitor-1").await;
    assert!(visitor.hello["heartbeat_ms"].as_u64().unwrap() > 0);
    visitor.resume(json!({"c1": 1})).await;
    assert_eq!(visitor.catch_up("c1").await, Vec::<u64>::new());

    hub.events(message("m1", "c1", "agent-7", "agent", "How can I help?"))
        .await;

    let frame = visitor.next_of("event").await;
    assert_eq!(frame["conversation_id"], "c1");
    assert_eq!(frame["position"], 2);
    assert_eq!(frame["event"]["text"], "How can I help?");
    assert_eq!(frame["event"]["sender"]["id"], "agent-7");
    let unread = visitor.next_of("unread").await;
    assert_eq!(
        unread,
        json!({"type": "unread", "conversation_id": "c1", "count": 1, "total": 1})
    );
}

#[tokio::test]
async fn after_a_disconnect_exactly_the_two_missed_messages_arrive_on_resume() {
    let hub = TestHub::start().await;
    join(&hub, "c1", "visitor-1", "visitor").await;
    hub.events(message("m1", "c1", "agent-7", "agent", "one"))
        .await;
    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({"c1": 0})).await;
    assert_eq!(visitor.catch_up("c1").await, vec![1, 2]);
    visitor.close().await;

    hub.events(message("m2", "c1", "agent-7", "agent", "two"))
        .await;
    hub.events(message("m3", "c1", "agent-7", "agent", "three"))
        .await;

    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({"c1": 2})).await;
    let mut texts = vec![];
    loop {
        let frame = visitor.next().await;
        match frame["type"].as_str() {
            Some("event") => texts.push(frame["event"]["text"].as_str().unwrap().to_string()),
            Some("caught_up") => {
                assert_eq!(frame["position"], 4);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(texts, ["two", "three"]);
    assert_eq!(
        visitor.try_next(Duration::from_millis(300)).await,
        None,
        "nothing after caught_up"
    );
}

#[tokio::test]
async fn catch_up_while_messages_keep_arriving_has_no_gap_and_no_duplicate() {
    let hub = Arc::new(TestHub::start().await);
    join(&hub, "c1", "visitor-1", "visitor").await;
    let batch: Vec<Value> = (0..299)
        .map(|i| message(&format!("pre-{i}"), "c1", "agent-7", "agent", "before"))
        .collect();
    hub.events(json!(batch)).await;

    let writer = tokio::spawn({
        let hub = hub.clone();
        async move {
            for i in 0..200 {
                hub.events(message(
                    &format!("live-{i}"),
                    "c1",
                    "agent-7",
                    "agent",
                    "during",
                ))
                .await;
            }
        }
    });
    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({"c1": 0})).await;
    let mut positions = vec![];
    let mut caught_up = false;
    while positions.last() != Some(&500) {
        let frame = visitor.next().await;
        match frame["type"].as_str() {
            Some("event") => positions.push(frame["position"].as_u64().unwrap()),
            Some("caught_up") => caught_up = true,
            _ => {}
        }
    }
    writer.await.unwrap();
    assert!(caught_up);
    assert_eq!(
        positions,
        (1..=500).collect::<Vec<u64>>(),
        "every position once, in order"
    );
}

#[tokio::test]
async fn a_read_on_one_device_clears_the_unread_count_on_the_users_other_sessions() {
    let hub = TestHub::start().await;
    join(&hub, "c1", "visitor-1", "visitor").await;
    hub.events(json!([
        message("m1", "c1", "agent-7", "agent", "a"),
        message("m2", "c1", "agent-7", "agent", "b")
    ]))
    .await;
    let mut phone = hub.live("visitor-1").await;
    let mut laptop = hub.live("visitor-1").await;
    phone.resume(json!({})).await;
    laptop.resume(json!({})).await;

    phone
        .send(json!({"type": "read", "conversation_id": "c1", "position": 3}))
        .await;

    let read_event = laptop.next_of("event").await;
    assert_eq!(read_event["event"]["type"], "message.read");
    assert_eq!(read_event["event"]["reader_id"], "visitor-1");
    let unread = laptop.next_of("unread").await;
    assert_eq!(
        unread,
        json!({"type": "unread", "conversation_id": "c1", "count": 0, "total": 0})
    );
    let token = hub.token("visitor-1").await;
    let (_, view) = hub.get("/v1/me/unread", &token).await;
    assert_eq!(view["total"], 0);
}

#[tokio::test]
async fn ping_gets_pong_and_resume_of_a_foreign_conversation_is_refused() {
    let hub = TestHub::start().await;
    join(&hub, "secret-room", "agent-1", "agent").await;
    let mut visitor = hub.live("visitor-1").await;
    visitor.send(json!({"type": "ping"})).await;
    assert_eq!(visitor.next().await, json!({"type": "pong"}));
    visitor.resume(json!({"secret-room": 0})).await;
    let error = visitor.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "not_a_participant");
}

#[tokio::test]
async fn a_frame_many_times_the_sessions_read_buffer_still_arrives_whole() {
    // Idle sessions read through a small buffer (1 KiB); a client frame far larger, still
    // under the frame limit, must arrive whole and be answered.
    let hub = TestHub::start().await;
    let mut visitor = hub.live("visitor-1").await;
    let padded = format!("{{\"type\":\"ping\"}}{}", " ".repeat(40 * 1024));
    visitor.send_text(&padded).await;
    assert_eq!(visitor.next().await, json!({"type": "pong"}));
}

#[tokio::test]
async fn presence_is_foreground_while_looking_and_away_after_background_or_close() {
    let hub = TestHub::start().await;
    assert_eq!(presence(&hub, "visitor-1").await["state"], "away");
    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({})).await;
    eventually(async || presence(&hub, "visitor-1").await["state"] == "foreground").await;

    visitor
        .send(json!({"type": "state", "state": "background"}))
        .await;
    eventually(async || presence(&hub, "visitor-1").await["state"] == "away").await;

    visitor
        .send(json!({"type": "state", "state": "foreground"}))
        .await;
    eventually(async || presence(&hub, "visitor-1").await["state"] == "foreground").await;
    visitor.close().await;
    eventually(async || presence(&hub, "visitor-1").await["state"] == "away").await;

    let background = hub.live_with("visitor-1", "state=background").await;
    assert_eq!(
        presence(&hub, "visitor-1").await["state"],
        "away",
        "a background session does not count as looking"
    );
    drop(background);
}

#[tokio::test]
async fn a_dropped_connection_keeps_the_user_present_for_the_reconnect_grace_only() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = TestHub::builder().clock(clock.clone()).start().await;
    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({})).await;
    eventually(async || presence(&hub, "visitor-1").await["state"] == "foreground").await;

    visitor.drop_connection();
    eventually(async || presence(&hub, "visitor-1").await["sessions"] == 0).await;
    let during = presence(&hub, "visitor-1").await;
    assert_eq!(during["state"], "foreground", "inside the grace: {during}");
    assert!(during["grace_until"].is_string());

    clock.advance(time::Duration::seconds(11));
    let after = presence(&hub, "visitor-1").await;
    assert_eq!(after["state"], "away", "{after}");
}

#[tokio::test]
async fn a_connection_that_misses_heartbeats_is_closed_and_its_user_fails_open() {
    let hub = TestHub::builder()
        .configure(|c| {
            c.live.heartbeat_ms = 100;
            c.live.dead_after_ms = 300;
        })
        .start()
        .await;
    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({})).await;
    // The client stops reading (so it answers no pings) and sends nothing.
    eventually(async || presence(&hub, "visitor-1").await["state"] == "away").await;
    assert_eq!(
        presence(&hub, "visitor-1").await["grace_until"],
        Value::Null,
        "dead is not a drop: no grace"
    );
    assert_eq!(
        visitor.try_next(PATIENCE).await,
        None,
        "the server closed the connection"
    );
}

#[tokio::test]
async fn shutting_down_closes_live_sessions_cleanly() {
    let mut hub = TestHub::start().await;
    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({})).await;
    eventually(async || hub.state.hub.session_count() == 1).await;
    hub.shutdown().await;
    assert_eq!(visitor.try_next(PATIENCE).await, None);
}
