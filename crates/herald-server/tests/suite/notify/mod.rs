//! Files: `grace.rs` (the grace delay, coalescing, read pushes), `rules.rs` (why not notified,
//! quiet hours, a restart, metadata only), `calls.rs`, `proactive.rs`, `preferences.rs` (app rules,
//! pauses, bad requests, tenants), `email.rs` (digests). This file holds the story they share.
//!
//! The notification engine end to end (SPEC §3), through the real HTTP and WebSocket surface,
//! with a manual clock: time moves only when a test says so, so every rule is exact.

mod calls;
mod email;
mod grace;
mod preferences;
mod proactive;
mod rules;

use std::sync::Arc;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::TestHub;
use herald_testkit::recording::RecordingChannel;
use serde_json::{Value, json};

const VISITOR_TOKEN: &str = "aaaa0001";

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    seq: u32,
}

impl Story {
    /// A support chat: app `chat` (grace 5 s, coalesce 3 s), agent `agent-7` and visitor
    /// `visitor-1` in conversation `c1`, the visitor with one iOS device. Pushes arrive (a
    /// recording channel stands in for APNs), so a decision to send reads `sent`.
    async fn new(rules: Value) -> Story {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let phone = RecordingChannel::new();
        let hub = TestHub::builder()
            .clock(clock.clone())
            .channel("apns", phone.clone())
            .channel("apns_voip", phone)
            .start()
            .await;
        let mut app = json!({"rules": {"grace_delay_ms": 5000, "coalesce_window_ms": 3000}});
        if let (Value::Object(r), Value::Object(extra)) = (&mut app["rules"], rules) {
            r.extend(extra);
        }
        let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
        assert_eq!(status, 201, "{body}");
        for (user, role) in [("visitor-1", "visitor"), ("agent-7", "agent")] {
            hub.join("c1", user, role).await;
        }
        let story = Story { hub, clock, seq: 0 };
        story.register("visitor-1", json!({"app_id": "chat", "channel": "apns", "token": VISITOR_TOKEN, "platform": "ios", "locale": "en"})).await;
        story
    }

    async fn register(&self, user: &str, device: Value) -> Value {
        let token = self.hub.token(user).await;
        let (status, body) = self.hub.post("/v1/me/devices", &token, device).await;
        assert!(status.is_success(), "{body}");
        body
    }

    async fn say(&mut self, from: &str, role: &str, text: &str) -> u64 {
        self.seq += 1;
        let event = json!({"event_id": format!("m{}", self.seq), "conversation_id": "c1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": from, "role": role, "name": "Ann"}, "text": text});
        let position = self.hub.events(event).await["position"].as_u64().unwrap();
        self.settle().await;
        position
    }

    /// Posts an event and lets the engine decide about it before the story goes on.
    async fn post(&mut self, event: Value) {
        self.hub.events(event).await;
        self.settle().await;
    }

    fn advance(&self, ms: i64) {
        self.clock.advance(time::Duration::milliseconds(ms));
        self.hub.state.engine.wake();
    }

    /// Decisions about `user`, oldest first, once the engine has caught up with everything
    /// posted (the outbox is empty and nothing due is left unfired).
    async fn decisions(&self, user: &str) -> Vec<Value> {
        self.settle().await;
        let (_, body) = self
            .hub
            .get(
                &format!("/v1/users/{user}/notifications?limit=500"),
                &self.hub.key,
            )
            .await;
        let mut list = body["notifications"].as_array().unwrap().clone();
        list.reverse();
        list
    }

    async fn settle(&self) {
        self.hub.settle_engine(self.clock.now()).await;
    }

    async fn deliveries(&self, notification: &Value) -> Vec<Value> {
        let id = notification["id"].as_str().unwrap();
        let (_, view) = self
            .hub
            .get(&format!("/v1/notifications/{id}"), &self.hub.key)
            .await;
        view["deliveries"].as_array().cloned().unwrap_or_default()
    }
}

fn with_status<'a>(decisions: &'a [Value], status: &str) -> Vec<&'a Value> {
    decisions.iter().filter(|d| d["status"] == status).collect()
}
