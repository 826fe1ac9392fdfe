//! Signed webhooks (SPEC §2.5, §3.5) end to end: a real Herald posts to a real HTTP receiver
//! (`CaptureServer`), and the PyPI `standardwebhooks` library — an independent implementation —
//! verifies the signatures. A manual clock drives the engine and the delivery queue; the
//! `webhook-timestamp` header is the wall clock, as receivers check it against theirs.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::capture::{CaptureServer, Captured};
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
            .filter(|n| n["status"] == "sent" && n["kind"] == kind)
            .cloned()
            .collect();
        list.reverse();
        list
    }

    /// The latest sent notification of `kind`.
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

#[tokio::test]
async fn an_agents_message_to_an_away_visitor_is_one_signed_webhook_that_standardwebhooks_verifies_with_either_secret()
 {
    let receiver = CaptureServer::start().await;
    let url = format!("{}/hooks?src=herald", receiver.url);
    let mut s = Story::new(
        true,
        json!([endpoint("hooks", &url, ALL_EVENTS)]),
        json!({}),
    )
    .await;
    let position = s.say("Your order shipped").await;
    let notification = s.latest("new_message").await;
    let delivery = s.finished(&notification, "hooks").await;
    assert_eq!(delivery["status"], "delivered", "{delivery:#}");

    let requests = receiver.captured();
    assert_eq!(requests.len(), 1, "exactly one POST: {requests:#?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks?src=herald");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("webhook-id"),
        delivery["id"].as_str(),
        "the delivery id is the idempotency key"
    );
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let wall = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (wall - 300..=wall).contains(&timestamp),
        "{timestamp} vs {wall}"
    );
    let signatures: Vec<&str> = request
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(signatures.len(), 2, "one per secret: {signatures:?}");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));

    let body = request.json();
    assert_eq!(body["type"], "push_notification.new_message");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
    let data = &body["data"];
    assert_eq!(data["recipient"]["user_id"], "visitor-1");
    assert_eq!(data["conversation_id"], "c1");
    assert_eq!(data["position"], position);
    assert_eq!(data["event_id"], "m1");
    assert_eq!(
        (&data["unread"], &data["badge"], &data["message_count"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(data["kind"], "new_message");
    assert_eq!(data["body"], "Your order shipped");
    assert_eq!(data["sender"]["id"], "agent-7");
    assert_eq!(data["devices"].as_array().unwrap().len(), 1, "{data}");
    assert_eq!(data["devices"][0]["token"], VISITOR_TOKEN);
    assert_eq!(data["devices"][0]["channel"], "apns");
    assert_eq!(data["devices"][0]["platform"], "ios");
    assert!(request.body.len() < 20_000);

    assert_eq!(
        verify(request, &[OLD_SECRET, NEW_SECRET, STRANGER_SECRET]),
        ["ok", "ok", "WebhookVerificationError"],
        "each of the endpoint's secrets verifies; another secret does not"
    );
}

#[tokio::test]
async fn a_metadata_only_app_sends_ids_and_counts_but_no_text() {
    let receiver = CaptureServer::start().await;
    let mut s = Story::new(
        true,
        json!([endpoint("hooks", &receiver.url, ALL_EVENTS)]),
        json!({"content": {"mode": "metadata_only"}}),
    )
    .await;
    s.say("secret order details").await;
    let request = receiver.wait_for(1).await.remove(0);
    let text = String::from_utf8(request.body.to_vec()).unwrap();
    assert!(!text.contains("secret order details"), "{text}");
    let data = &request.json()["data"];
    for absent in ["title", "body", "lines", "sender"] {
        assert!(data.get(absent).is_none(), "{absent} in {data}");
    }
    assert_eq!(data["conversation_id"], "c1");
    assert_eq!(data["event_id"], "m1");
    assert_eq!((&data["unread"], &data["badge"]), (&json!(1), &json!(1)));
    assert_eq!(data["devices"][0]["token"], VISITOR_TOKEN);
    assert_eq!(verify(&request, &[NEW_SECRET]), ["ok"]);
}

#[tokio::test]
async fn a_503_is_retried_after_retry_after_with_the_same_webhook_id_and_a_fresh_signature() {
    let receiver = CaptureServer::start().await;
    receiver.respond(503, &[("retry-after", "30")]);
    let mut s = Story::new(
        true,
        json!([endpoint("hooks", &receiver.url, ALL_EVENTS)]),
        json!({"delivery": {"retry_base_delay_ms": 10}}),
    )
    .await;
    s.say("Hello").await;
    let notification = s.latest("new_message").await;
    let waiting = s
        .webhook_delivery(&notification, "hooks", |d| {
            d["attempts"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    assert_eq!(waiting["status"], "pending", "{waiting:#}");
    assert_eq!(waiting["attempts"][0]["status"], 503);
    let at = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let next = at(&waiting["next_attempt_at"]);
    assert!(
        next - at(&waiting["attempts"][0]["at"]) >= time::Duration::milliseconds(29_999),
        "Retry-After: 30 is honoured over the 10 ms backoff: {waiting:#}"
    );
    assert_eq!(receiver.captured().len(), 1, "nothing before Retry-After");

    // Let the wall clock reach the next second so the retry's timestamp is visibly renewed.
    let first = receiver.captured().remove(0);
    let first_ts: i64 = first.header("webhook-timestamp").unwrap().parse().unwrap();
    while time::OffsetDateTime::now_utc().unix_timestamp() <= first_ts {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.clock.advance(time::Duration::seconds(31));
    s.hub.state.delivery_wakeup.notify_one();
    let requests = receiver.wait_for(2).await;
    let done = s.finished(&notification, "hooks").await;
    assert_eq!(done["status"], "delivered", "{done:#}");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 2);

    let second = &requests[1];
    assert_eq!(
        first.header("webhook-id"),
        second.header("webhook-id"),
        "the same idempotency key on every attempt"
    );
    assert_eq!(first.body, second.body, "the same event");
    let second_ts: i64 = second.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(second_ts > first_ts, "{first_ts} → {second_ts}");
    assert_ne!(
        first.header("webhook-signature"),
        second.header("webhook-signature"),
        "re-signed"
    );
    assert_eq!(verify(second, &[OLD_SECRET, NEW_SECRET]), ["ok", "ok"]);
    assert_eq!(receiver.captured().len(), 2);
}

#[tokio::test]
async fn reads_and_calls_reach_the_endpoints_subscribed_to_them_and_no_others() {
    let everything = CaptureServer::start().await;
    let messages_only = CaptureServer::start().await;
    let mut s = Story::new(
        true,
        json!([
            endpoint("all", &everything.url, ALL_EVENTS),
            endpoint(
                "messages",
                &messages_only.url,
                &["push_notification.new_message"]
            ),
        ]),
        json!({}),
    )
    .await;
    let position = s.say("Hi").await;
    let shown = s.latest("new_message").await;
    assert_eq!(s.finished(&shown, "all").await["status"], "delivered");
    assert_eq!(s.finished(&shown, "messages").await["status"], "delivered");

    let token = s.hub.token("visitor-1").await;
    let (status, body) = s
        .hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    s.settle().await;
    let read = s.latest("read").await;
    assert_eq!(s.finished(&read, "all").await["status"], "delivered");
    let requests = everything.wait_for(2).await;
    let read_hook = requests[1].json();
    assert_eq!(read_hook["type"], "push_notification.read_message");
    assert_eq!(read_hook["data"]["badge"], 0);
    assert!(
        read_hook["data"].get("body").is_none(),
        "silent: {read_hook}"
    );

    s.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"], "ring_timeout_s": 30})).await;
    let ringing = s.latest("incoming_call").await;
    assert_eq!(s.finished(&ringing, "all").await["status"], "delivered");
    s.post(json!({"event_id": "r2", "conversation_id": "c1", "type": "call.cancelled", "occurred_at": "2026-11-23T10:00:05Z",
        "call_id": "call-1", "by": "agent-7"})).await;
    for kind in ["revoked_call", "missed_call"] {
        let n = s.latest(kind).await;
        assert_eq!(s.finished(&n, "all").await["status"], "delivered", "{kind}");
    }
    let requests = everything.wait_for(5).await;
    let mut types: Vec<String> = requests.iter().map(event_type).collect();
    types[3..].sort();
    assert_eq!(
        types,
        [
            "push_notification.new_message",
            "push_notification.read_message",
            "push_notification.incoming_call",
            "push_notification.missed_call",
            "push_notification.revoked_call",
        ]
    );
    let incoming = requests[2].json();
    assert_eq!(incoming["data"]["call_id"], "call-1");
    for request in &requests {
        assert_eq!(
            verify(request, &[OLD_SECRET]),
            ["ok"],
            "{}",
            event_type(request)
        );
    }
    let ids: std::collections::BTreeSet<&str> = requests
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "one id per event");

    let theirs: Vec<String> = messages_only.captured().iter().map(event_type).collect();
    assert_eq!(
        theirs,
        ["push_notification.new_message"],
        "an endpoint subscribed to new messages gets nothing else"
    );
}

#[tokio::test]
async fn without_the_allow_list_loopback_urls_fail_permanently_and_nothing_is_connected() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let urls = [
        ("literal", format!("http://127.0.0.1:{port}/hook")),
        ("name", format!("http://localhost:{port}/hook")),
        ("decimal", format!("http://2130706433:{port}/hook")),
    ];
    let webhooks: Vec<Value> = urls
        .iter()
        .map(|(id, url)| endpoint(id, url, ALL_EVENTS))
        .collect();
    let mut s = Story::new(false, Value::Array(webhooks), json!({})).await;
    s.say("Hello").await;
    let notification = s.latest("new_message").await;
    for (id, _) in &urls {
        let d = s.finished(&notification, id).await;
        assert_eq!(d["status"], "failed", "{id}: {d:#}");
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "never retried: {d:#}");
        let reason = attempts[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("forbidden address") && reason.contains("allow_cidrs"),
            "{id}: {reason}"
        );
        assert!(attempts[0].get("status").is_none(), "{id}: no HTTP status");
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a connection was attempted: {other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_410_asks_to_be_disabled() {
    let receiver = CaptureServer::start().await;
    let elsewhere = format!("{}/elsewhere", receiver.url);
    receiver.respond(302, &[("location", elsewhere.as_str())]);
    receiver.respond(410, &[]);
    let mut s = Story::new(
        true,
        json!([endpoint(
            "hooks",
            &format!("{}/hooks", receiver.url),
            ALL_EVENTS
        )]),
        json!({"rules": {"grace_delay_ms": 0, "coalesce_window_ms": 0}}),
    )
    .await;
    s.say("one").await;
    let redirected = s.latest("new_message").await;
    let d = s.finished(&redirected, "hooks").await;
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(d["attempts"][0]["status"], 302);
    assert!(
        d["attempts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not followed")
    );
    let requests = receiver.captured();
    assert_eq!(requests.len(), 1, "the Location was not requested");
    assert_eq!(requests[0].path, "/hooks");

    s.clock.advance(time::Duration::seconds(1));
    s.say("two").await;
    let gone = s.latest("new_message").await;
    assert_ne!(gone["id"], redirected["id"]);
    let d = s.finished(&gone, "hooks").await;
    assert_eq!(d["status"], "invalid_target", "{d:#}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "not retried");
    let reason = d["attempts"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("410") && reason.contains("disabled"),
        "{d:#}"
    );
    // The endpoint is now disabled: visible to the operator, and nothing more is sent to it.
    let (_, health) = s.hub.get("/v1/apps/chat/endpoints", &s.hub.key).await;
    assert!(
        health
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["disabled_at"].is_string()),
        "{health}"
    );
    s.clock.advance(time::Duration::seconds(1));
    s.say("three").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.captured().len(), 2);
}
