//! Files: `sdk_adapter.rs` (the SDK-adapter role), `push_proxy.rs` (the push-proxy role and its
//! preset), `templates.rs` (custom templates). This file holds the story they share.
//!
//! The connector channel (SPEC §2.5) in the roles it plays: a Notification Hub adapter calling
//! the customer's backend with the agreed payload (SDK-adapter role), and a platform calling a
//! customer's push proxy with metadata only, signed with `X-hmac` (push-proxy role). A real
//! hub, a real receiver (`CaptureServer`), a manual clock; the signature is judged by Python's
//! `hmac` module.

mod push_proxy;
mod sdk_adapter;
mod templates;

use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::capture::{CaptureServer, Captured};
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};

/// The push proxy's session id, which the push-proxy and template tests register as a device.
const SESSION: &str = "bf813a5d-2e06-4047-bae2-e01da2f69f7c";

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    receiver: CaptureServer,
    seq: u32,
}

impl Story {
    /// App `chat` with `app` (its `connector.callback_url` pointing at the receiver), agent
    /// `agent-7` and visitor `visitor-1` in conversation `c1`.
    async fn new(mut app: Value) -> Story {
        let receiver = CaptureServer::start().await;
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let hub = TestHub::builder()
            .clock(clock.clone())
            .configure(|c| {
                c.outbound.allow_cidrs = vec!["127.0.0.0/8".into()];
                c.delivery.poll_ms = 20;
            })
            .start()
            .await;
        app["connector"]["callback_url"] = json!(format!("{}/push", receiver.url));
        let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
        assert_eq!(status, 201, "{body}");
        for (user, role) in [("visitor-1", "visitor"), ("agent-7", "agent")] {
            hub.join("c1", user, role).await;
        }
        Story {
            hub,
            clock,
            receiver,
            seq: 0,
        }
    }

    /// Registers a connector device for the visitor; answers its id.
    async fn device(&self, token: &str) -> String {
        let client = self.hub.token("visitor-1").await;
        let (status, body) = self
            .hub
            .post(
                "/v1/me/devices",
                &client,
                json!({"app_id": "chat", "channel": "connector", "token": token, "platform": "ios", "locale": "en"}),
            )
            .await;
        assert!(status.is_success(), "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// The agent says `text` as `name`; answers the event id and position once the engine has
    /// decided about it.
    async fn say_as(&mut self, name: &str, text: &str) -> (String, u64) {
        self.seq += 1;
        let id = format!("m{}", self.seq);
        let event = json!({"event_id": id, "conversation_id": "c1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent", "name": name}, "text": text});
        let position = self.hub.events(event).await["position"].as_u64().unwrap();
        self.settle().await;
        (id, position)
    }

    async fn say(&mut self, text: &str) -> (String, u64) {
        self.say_as("Ann", text).await
    }

    fn advance(&self, ms: i64) {
        self.clock.advance(time::Duration::milliseconds(ms));
        self.hub.state.engine.wake();
    }

    /// Waits until the engine has evaluated everything posted and fired everything due.
    async fn settle(&self) {
        self.hub.settle_engine(self.clock.now()).await;
    }

    /// The visitor's decisions, newest first.
    async fn decisions(&self) -> Vec<Value> {
        self.settle().await;
        let (_, body) = self
            .hub
            .get("/v1/users/visitor-1/notifications?limit=500", &self.hub.key)
            .await;
        body["notifications"].as_array().unwrap().clone()
    }

    /// The notification sent for the message at `position`.
    async fn notification_at(&self, position: u64) -> String {
        let decisions = self.decisions().await;
        let sent = decisions
            .iter()
            .find(|d| d["position"] == position && d["push"].is_object())
            .unwrap_or_else(|| panic!("no push for position {position}: {decisions:#?}"));
        sent["id"].as_str().unwrap().to_string()
    }

    /// The only delivery of notification `id`, once `done` holds for it.
    async fn delivery_when(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, view) = self
                .hub
                .get(&format!("/v1/notifications/{id}"), &self.hub.key)
                .await;
            assert_eq!(status, 200, "{view}");
            let deliveries = view["deliveries"].as_array().cloned().unwrap_or_default();
            if let [only] = deliveries.as_slice()
                && done(only)
            {
                return only.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the delivery of {id} never became {what}: {view:#}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn settled_delivery(&self, id: &str) -> Value {
        self.delivery_when(id, "settled", |d| d["status"] != "pending")
            .await
    }

    /// Waits for exactly `n` requests at the receiver, and a moment more to see no others.
    async fn exactly(&self, n: usize) -> Vec<Captured> {
        self.receiver.wait_for(n).await;
        self.settle().await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let all = self.receiver.captured();
        assert_eq!(all.len(), n, "{:#?}", bodies(&all));
        all
    }
}

fn bodies(requests: &[Captured]) -> Vec<Value> {
    requests.iter().map(Captured::json).collect()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
