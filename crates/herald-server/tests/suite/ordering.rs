//! Pushes with one collapse key reach a device in order (issue 16): with no coalescing and no
//! grace delay, two messages in a row to an away visitor make two pushes for one conversation;
//! the second never overtakes the first at the channel, and a first push retried after the
//! second one went out is dropped as superseded (shown in `GET /v1/notifications/{id}`), never
//! sent after it.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::recording::RecordingChannel;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};

const TOKEN: &str = "abcd1234";

/// A hub with `channel` as APNs, app `chat` pushing at once (no coalescing, no grace delay),
/// and visitor-1 in conversation c1 with one iPhone, away.
async fn hub(channel: Arc<RecordingChannel>, clock: Arc<ManualClock>) -> TestHub {
    let hub = TestHub::builder()
        .clock(clock)
        .configure(|c| c.delivery.poll_ms = 50)
        .channel("apns", channel)
        .start()
        .await;
    let rules = json!({"rules": {"grace_delay_ms": 0, "coalesce_window_ms": 0}});
    assert_eq!(hub.put("/v1/apps/chat", &hub.key, rules).await.0, 201);
    hub.put(
        "/v1/conversations/c1/participants/visitor-1",
        &hub.key,
        json!({"role": "visitor"}),
    )
    .await;
    let token = hub.token("visitor-1").await;
    let device = json!({"app_id": "chat", "channel": "apns", "token": TOKEN, "platform": "ios"});
    assert_eq!(hub.post("/v1/me/devices", &token, device).await.0, 201);
    hub
}

async fn say(hub: &TestHub, id: &str, text: &str) -> u64 {
    let event = json!({"event_id": id, "conversation_id": "c1", "type": "message.created", "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text});
    hub.events(event).await["position"].as_u64().unwrap()
}

/// The decision about the message at `position`, once the engine made it.
async fn decision(hub: &TestHub, clock: &ManualClock, position: u64) -> Value {
    hub.settle_engine(clock.now()).await;
    let (_, list) = hub.get("/v1/users/visitor-1/notifications", &hub.key).await;
    list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["position"] == position)
        .unwrap_or_else(|| panic!("no decision for position {position}: {list}"))
        .clone()
}

/// The notification's one delivery, once `done` holds for it (up to `PATIENCE`).
async fn delivery_until(
    hub: &TestHub,
    notification: &Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let id = notification["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, view) = hub.get(&format!("/v1/notifications/{id}"), &hub.key).await;
        if let Some(d) = view["deliveries"].as_array().and_then(|d| d.first())
            && done(d)
        {
            return d.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{view:#}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_messages_in_a_row_reach_the_phone_in_order_and_the_later_one_is_the_last_shown() {
    let channel = RecordingChannel::new();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub(channel.clone(), clock.clone()).await;
    // The first push's call hangs at the provider while the second message comes in.
    channel.hang();
    let first = say(&hub, "m1", "Hello").await;
    channel.wait_for(1).await;
    let second = say(&hub, "m2", "Your order shipped").await;
    let later = decision(&hub, &clock, second).await;
    assert_eq!(later["status"], "sent", "{later}");
    // Its delivery is claimed at once (poll 50 ms, and woken on commit), yet waits.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(channel.deliveries().len(), 1, "the second push waits");

    channel.release();
    let seen = channel.wait_for(2).await;
    let positions: Vec<_> = seen.iter().map(|d| d.push.position).collect();
    assert_eq!(positions, [Some(first), Some(second)]);
    assert_eq!(seen[0].push.collapse_key, seen[1].push.collapse_key);
    assert_eq!(seen[1].push.body.as_deref(), Some("Your order shipped"));
    let delivered = delivery_until(&hub, &later, |d| d["status"] == "delivered").await;
    assert_eq!(delivered["attempts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_first_push_retried_after_the_second_one_arrived_is_dropped_as_superseded() {
    let channel = RecordingChannel::new();
    channel.script(TOKEN, vec![RecordingChannel::failing(503, Some(30_000))]);
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = hub(channel.clone(), clock.clone()).await;
    let first = say(&hub, "m1", "Hello").await;
    channel.wait_for(1).await;
    let earlier = decision(&hub, &clock, first).await;
    delivery_until(&hub, &earlier, |d| {
        d["status"] == "pending" && d["attempts"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;

    let second = say(&hub, "m2", "Your order shipped").await;
    let later = decision(&hub, &clock, second).await;
    delivery_until(&hub, &later, |d| d["status"] == "delivered").await;

    // The first push's retry comes due.
    clock.advance(time::Duration::seconds(31));
    hub.state.delivery_wakeup.notify_one();
    let dropped = delivery_until(&hub, &earlier, |d| d["status"] != "pending").await;
    assert_eq!(dropped["status"], "cancelled", "{dropped:#}");
    assert!(
        dropped["note"]
            .as_str()
            .unwrap()
            .starts_with("superseded by a newer push with the same collapse key"),
        "{dropped:#}"
    );
    assert_eq!(
        dropped["attempts"].as_array().unwrap().len(),
        1,
        "only the failed one"
    );
    let positions: Vec<_> = channel
        .deliveries()
        .iter()
        .map(|d| d.push.position)
        .collect();
    assert_eq!(
        positions,
        [Some(first), Some(second)],
        "never sent after the second"
    );
}
