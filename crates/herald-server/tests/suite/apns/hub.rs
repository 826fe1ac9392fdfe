//! Through a hub: headers, payloads, badges, background reads, VoIP calls, dead tokens.

use std::sync::Arc;
use std::time::Duration;

use herald_channels::apns::payload::apns_id;
use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::fake_apns::{FakeApns, Reply};
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    fake: FakeApns,
}

/// A hub with the built-in channels (the APNs channel among them), a manual clock, the app
/// `chat` pointing at a fresh fake, and `visitor-1` in conversations c1 and c2.
async fn story() -> Story {
    let fake = FakeApns::builder().topic(TOPIC).start().await;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let hub = TestHub::builder().clock(clock.clone()).start().await;
    let (status, body) = hub
        .put("/v1/apps/chat", &hub.key, app_document(&fake.url()))
        .await;
    assert_eq!(status, 201, "{body}");
    for c in ["c1", "c2"] {
        hub.put(
            &format!("/v1/conversations/{c}/participants/visitor-1"),
            &hub.key,
            json!({"role": "visitor"}),
        )
        .await;
    }
    Story { hub, clock, fake }
}

impl Story {
    async fn register(&self, channel: &str, token: &str, installation: Option<&str>) -> String {
        let user = self.hub.token("visitor-1").await;
        let mut device =
            json!({"app_id": "chat", "channel": channel, "token": token, "platform": "ios"});
        if let Some(i) = installation {
            device["installation_id"] = json!(i);
        }
        let (status, body) = self.hub.post("/v1/me/devices", &user, device).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn say(&self, id: &str, conversation: &str, text: &str) -> u64 {
        let event = json!({"event_id": id, "conversation_id": conversation, "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text});
        self.hub.events(event).await["position"].as_u64().unwrap()
    }

    async fn devices(&self) -> Value {
        self.hub
            .get("/v1/users/visitor-1/devices", &self.hub.key)
            .await
            .1
    }

    /// The deliveries of the notification behind a request the fake got.
    async fn deliveries(&self, notification_id: &str) -> Vec<Value> {
        let (status, body) = self
            .hub
            .get(
                &format!("/v1/notifications/{notification_id}"),
                &self.hub.key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["deliveries"].as_array().unwrap().clone()
    }

    /// Waits until the notification's only delivery has `status`.
    async fn delivery_settles(&self, notification_id: &str, status: &str) -> Value {
        self.delivery_reaches(notification_id, status, 1).await
    }

    /// Waits until the notification's only delivery has `status` after `attempts` attempts.
    async fn delivery_reaches(
        &self,
        notification_id: &str,
        status: &str,
        attempts: usize,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let deliveries = self.deliveries(notification_id).await;
            if deliveries[0]["status"] == status
                && deliveries[0]["attempts"].as_array().unwrap().len() == attempts
            {
                return deliveries[0].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the delivery never became {status}: {deliveries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets the engine evaluate everything posted so far.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.hub.state.notify.outbox(1).await.unwrap().is_empty() {
            self.hub.state.engine.wake();
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn notification_id(request: &herald_testkit::fake_apns::ApnsRequest) -> String {
    request.payload["herald"]["notification_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_agents_message_reaches_an_away_visitor_with_apns_headers_and_an_absolute_badge_and_a_read_follows_as_a_background_push()
 {
    let s = story().await;
    s.register("apns", "aaaa0001", None).await;
    let start = s.clock.now();
    let position = s.say("m1", "c2", "first").await;
    let first = s.fake.wait_for(1).await.remove(0);
    let last = s.say("m2", "c1", "Your order shipped").await;
    let requests = s.fake.wait_for(2).await;
    let second = &requests[1];

    assert_eq!(first.token, "aaaa0001");
    assert!(
        first
            .header("authorization")
            .unwrap()
            .starts_with("bearer ey")
    );
    assert_eq!(first.header("apns-push-type"), Some("alert"));
    assert_eq!(first.header("apns-topic"), Some(TOPIC));
    assert_eq!(first.header("apns-priority"), Some("10"));
    assert_eq!(first.header("apns-collapse-id"), Some("conv:c2"));
    let expiration: i64 = first.header("apns-expiration").unwrap().parse().unwrap();
    assert_eq!(
        expiration,
        (start + time::Duration::hours(1)).unix_timestamp(),
        "the chat TTL"
    );
    let deliveries = s.deliveries(&notification_id(&first)).await;
    assert_eq!(
        first.header("apns-id"),
        Some(apns_id(deliveries[0]["id"].as_str().unwrap()).as_str()),
        "derived from the delivery id"
    );
    let aps = &first.payload["aps"];
    assert!(aps["alert"]["title"].as_str().unwrap().contains("Ann"));
    assert_eq!(aps["alert"]["body"], "first");
    assert_eq!(aps["badge"], 1);
    assert_eq!(aps["sound"], "default");
    assert_eq!(aps["thread-id"], "c2");
    let herald = &first.payload["herald"];
    assert_eq!(herald["conversation_id"], "c2");
    assert_eq!(herald["position"], position);
    assert_eq!(herald["unread"], 1);
    assert_eq!(herald["kind"], "new_message");
    assert_eq!(herald["event_id"], "m1");

    assert_eq!(
        second.payload["aps"]["badge"], 2,
        "the total over conversations"
    );
    assert_eq!(second.payload["herald"]["unread"], 1);
    assert_eq!(second.header("apns-collapse-id"), Some("conv:c1"));

    let user = s.hub.token("visitor-1").await;
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &user,
            json!({"position": last}),
        )
        .await;
    let read = s.fake.wait_for(3).await.remove(2);
    assert_eq!(read.header("apns-push-type"), Some("background"));
    assert_eq!(read.header("apns-priority"), Some("5"));
    assert_eq!(
        read.header("apns-collapse-id"),
        second.header("apns-collapse-id")
    );
    assert_eq!(
        read.payload["aps"],
        json!({"content-available": 1, "badge": 1})
    );
    assert_eq!(read.payload["herald"]["kind"], "read");
    assert!(s.fake.rejections().is_empty(), "{:?}", s.fake.rejections());
}

#[tokio::test]
async fn call_ringing_rings_the_voip_token_with_the_voip_push_type_and_topic() {
    let s = story().await;
    s.register("apns", "bbbb0002", Some("iphone")).await;
    s.register("apns_voip", "cccc0003", Some("iphone")).await;
    let start = s.clock.now();
    s.hub.events(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"], "ring_timeout_s": 30})).await;
    let ring = s.fake.wait_for(1).await.remove(0);
    assert_eq!(ring.token, "cccc0003");
    assert_eq!(ring.header("apns-push-type"), Some("voip"));
    assert_eq!(ring.header("apns-topic"), Some("com.example.chat.voip"));
    assert_eq!(ring.header("apns-priority"), Some("10"));
    let expiration: i64 = ring.header("apns-expiration").unwrap().parse().unwrap();
    assert_eq!(
        expiration,
        (start + time::Duration::seconds(30)).unix_timestamp()
    );
    assert!(ring.payload.get("aps").is_none(), "PushKit needs no aps");
    assert_eq!(ring.payload["herald"]["call_id"], "call-1");
    assert_eq!(ring.payload["herald"]["kind"], "incoming_call");
    s.settle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        s.fake.requests_for("bbbb0002").is_empty(),
        "the alert token of the same installation does not ring"
    );
}

#[tokio::test]
async fn a_410_removes_the_device_after_the_first_attempt_and_it_is_never_tried_again() {
    let s = story().await;
    s.register("apns", "dddd0004", None).await;
    s.fake.script(
        "dddd0004",
        vec![Reply::unregistered(
            s.clock.now() + time::Duration::minutes(1),
        )],
    );
    s.say("m1", "c1", "one").await;
    let gone = s.fake.wait_for(1).await.remove(0);
    let delivery = s
        .delivery_settles(&notification_id(&gone), "invalid_target")
        .await;
    assert!(
        delivery["attempts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("410 Unregistered"),
        "{delivery}"
    );
    assert_eq!(s.devices().await, json!([]));
    s.clock.advance(time::Duration::seconds(10));
    s.say("m2", "c1", "two").await;
    s.settle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.fake.requests().len(), 1, "never tried again");
}

#[tokio::test]
async fn a_410_older_than_the_devices_registration_keeps_the_device() {
    let s = story().await;
    s.register("apns", "eeee0005", None).await;
    // APNs saw the token unregistered an hour before the device registered it (again).
    s.fake.script(
        "eeee0005",
        vec![Reply::unregistered(
            s.clock.now() - time::Duration::hours(1),
        )],
    );
    s.say("m1", "c1", "one").await;
    let gone = s.fake.wait_for(1).await.remove(0);
    let delivery = s.delivery_settles(&notification_id(&gone), "failed").await;
    assert!(
        delivery["attempts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("registered a newer token"),
        "{delivery}"
    );
    assert_eq!(s.devices().await.as_array().unwrap().len(), 1, "kept");
    s.clock.advance(time::Duration::seconds(10));
    s.say("m2", "c1", "two").await;
    let requests = s.fake.wait_for(2).await;
    assert_eq!(requests[1].status, 200);
}

#[tokio::test]
async fn a_retried_delivery_carries_the_same_apns_id() {
    let s = story().await;
    s.register("apns", "ffff0006", None).await;
    s.fake
        .script("ffff0006", vec![Reply::internal_server_error()]);
    s.say("m1", "c1", "one").await;
    let failed = s.fake.wait_for(1).await.remove(0);
    s.delivery_reaches(&notification_id(&failed), "pending", 1)
        .await;
    s.clock.advance(time::Duration::minutes(1));
    s.hub.state.delivery.wake();
    let retried = s.fake.wait_for(2).await.remove(1);
    assert_eq!(retried.status, 200);
    assert_eq!(retried.header("apns-id"), failed.header("apns-id"));
    s.delivery_reaches(&notification_id(&failed), "delivered", 2)
        .await;
}
