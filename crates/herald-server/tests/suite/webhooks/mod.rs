//! Files: `signing.rs` (signed webhooks verified by `standardwebhooks`, metadata only),
//! `delivery.rs` (retries, subscriptions), `refusals.rs` (loopback, redirects, 410). This file
//! holds the story and the verifier they share.
//!
//! Signed webhooks (SPEC §2.5, §3.5) end to end: a real Herald posts to a real HTTP receiver
//! (`CaptureServer`), and the PyPI `standardwebhooks` library — an independent implementation —
//! verifies the signatures. A manual clock drives the engine and the delivery queue; the
//! `webhook-timestamp` header is the wall clock, as receivers check it against theirs.

mod delivery;
mod refusals;
mod signing;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::capture::Captured;
use herald_testkit::{PATIENCE, RecordingChannel, TestHub};
use serde_json::{Value, json};

/// Two secrets, as during a rotation (the second one unpadded, as some dashboards show them).
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET: &str = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
/// A secret the endpoint does not have: verification with it must fail.
const STRANGER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const VISITOR_TOKEN: &str = "aaaa0001";

const ALL_EVENTS: &[&str] = &[
    "push_notification.new_message",
    "push_notification.read_message",
    "push_notification.incoming_call",
    "push_notification.revoked_call",
    "push_notification.missed_call",
];

fn endpoint(id: &str, url: &str, events: &[&str]) -> Value {
    json!({"id": id, "url": url, "events": events, "secrets": [OLD_SECRET, NEW_SECRET]})
}

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    seq: u32,
}

impl Story {
    /// App `chat` (grace delay 0) with `webhooks`, agent `agent-7` and visitor `visitor-1` in
    /// conversation `c1`, the visitor away with one iOS device. `allow_loopback` opens
    /// 127.0.0.0/8 to outbound calls (the capture receivers live there).
    async fn new(allow_loopback: bool, webhooks: Value, extra: Value) -> Story {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let hub = TestHub::builder()
            .clock(clock.clone())
            .configure(|c| {
                c.delivery.poll_ms = 50;
                if allow_loopback {
                    c.outbound.allow_cidrs = vec!["127.0.0.0/8".into()];
                }
            })
            .channel("apns", RecordingChannel::new())
            .start()
            .await;
        let mut app = json!({"rules": {"grace_delay_ms": 0}, "webhooks": webhooks});
        if let (Value::Object(app), Value::Object(extra)) = (&mut app, extra) {
            app.extend(extra);
        }
        let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
        assert_eq!(status, 201, "{body}");
        for (user, role) in [("visitor-1", "visitor"), ("agent-7", "agent")] {
            hub.join("c1", user, role).await;
        }
        let token = hub.token("visitor-1").await;
        let (status, body) = hub
            .post(
                "/v1/me/devices",
                &token,
                json!({"app_id": "chat", "channel": "apns", "token": VISITOR_TOKEN, "platform": "ios", "locale": "en"}),
            )
            .await;
        assert!(status.is_success(), "{body}");
        Story { hub, clock, seq: 0 }
    }

    /// The agent writes; the engine has decided about it when this returns.
    async fn say(&mut self, text: &str) -> u64 {
        self.seq += 1;
        let event = json!({"event_id": format!("m{}", self.seq), "conversation_id": "c1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text});
        let position = self.hub.events(event).await["position"].as_u64().unwrap();
        self.settle().await;
        position
    }

    async fn post(&self, event: Value) {
        self.hub.events(event).await;
        self.settle().await;
    }

    /// Waits until the engine has evaluated everything posted and fired everything due.
    async fn settle(&self) {
        self.hub.settle_engine(self.clock.now()).await;
    }

    /// The visitor's sent notifications of `kind`, oldest first.
    async fn sent(&self, kind: &str) -> Vec<Value> {
        let (_, body) = self
            .hub
            .get("/v1/users/visitor-1/notifications?limit=500", &self.hub.key)
            .await;
        let mut list: Vec<Value> = body["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["push"].is_object() && n["kind"] == kind)
            .cloned()
            .collect();
        list.reverse();
        list
    }

    /// The latest notification of `kind` handed to the delivery core (it reads `sent`,
    /// `partial` or `failed` once its deliveries end).
    async fn latest(&self, kind: &str) -> Value {
        let sent = self.sent(kind).await;
        sent.last()
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} notification was sent"))
    }

    /// The delivery of `notification` to webhook endpoint `endpoint`, once `done` holds (as
    /// `GET /v1/notifications/{id}` shows it).
    async fn webhook_delivery(
        &self,
        notification: &Value,
        endpoint: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let id = notification["id"].as_str().unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (_, view) = self
                .hub
                .get(&format!("/v1/notifications/{id}"), &self.hub.key)
                .await;
            let found = view["deliveries"].as_array().and_then(|ds| {
                ds.iter()
                    .find(|d| d["channel"] == "webhook" && d["endpoint_id"] == endpoint)
                    .cloned()
            });
            if let Some(d) = found
                && done(&d)
            {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the webhook delivery to {endpoint} never got there: {view:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finished(&self, notification: &Value, endpoint: &str) -> Value {
        self.webhook_delivery(notification, endpoint, |d| d["status"] != "pending")
            .await
    }
}

/// Asks the `standardwebhooks` library to verify `request` with each secret; answers one
/// line per secret: `ok` or the library's complaint.
fn verify(request: &Captured, secrets: &[&str]) -> Vec<String> {
    let headers: serde_json::Map<String, Value> = request
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap())))
        .collect();
    let input =
        json!({"body": STANDARD.encode(&request.body), "headers": headers, "secrets": secrets});
    let script = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook
request = json.load(sys.stdin)
body = base64.b64decode(request["body"])
for secret in request["secrets"]:
    try:
        Webhook(secret).verify(body, request["headers"])
        print("ok")
    except Exception as e:
        print(type(e).__name__)
"#;
    herald_testkit::python::run(script, input.to_string().as_bytes())
        .lines()
        .map(str::to_string)
        .collect()
}

fn event_type(request: &Captured) -> String {
    request.json()["type"].as_str().unwrap().to_string()
}
