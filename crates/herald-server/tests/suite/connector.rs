//! The connector channel (SPEC §2.5) in the roles it plays: a Notification Hub adapter calling
//! the customer's backend with the agreed payload (SDK-adapter role), and a platform calling a
//! customer's push proxy with metadata only, signed with `X-hmac` (push-proxy role). A real
//! hub, a real receiver (`CaptureServer`), a manual clock; the signature is judged by Python's
//! `hmac` module.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::capture::{CaptureServer, Captured};
use herald_testkit::{PATIENCE, TestHub, python};
use serde_json::{Value, json};

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
            .find(|d| d["position"] == position && d["status"] == "sent")
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

const PHONE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkZXZpY2UiOiJwaG9uZSIsImZjbSI6ImZYLTEyMyJ9.c2lnbmF0dXJlLXBob25l";
const TABLET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkZXZpY2UiOiJ0YWJsZXQiLCJhcG5zIjoiYWJjZCJ9.c2lnbmF0dXJlLXRhYmxldA";

#[tokio::test]
async fn sdk_adapter_role_live_while_looking_then_one_call_per_device_after_the_grace_delay_and_none_after_deregistering()
 {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 5000, "coalesce_window_ms": 3000},
        "connector": {"preset": "sdk_adapter", "auth_token": "backend-auth-7f3a"},
    }))
    .await;
    let phone = s.device(PHONE).await;
    s.device(TABLET).await;

    // Looking: the message arrives over the session, and the backend is not called.
    let mut live = s.hub.live("visitor-1").await;
    live.resume(json!({})).await;
    s.say("Hi, I am Ann").await;
    assert_eq!(live.next_of("event").await["event"]["text"], "Hi, I am Ann");
    s.advance(60_000);
    let decisions = s.decisions().await;
    assert_eq!(decisions[0]["status"], "suppressed", "{decisions:#?}");
    assert!(s.receiver.captured().is_empty(), "no call while looking");

    // Gone: after the grace delay, one call per connector device.
    live.close().await;
    eventually("the visitor is away", async || {
        s.hub
            .get("/v1/users/visitor-1/presence", &s.hub.key)
            .await
            .1["state"]
            == "away"
    })
    .await;
    let (_, position) = s.say("Your order shipped").await;
    s.advance(4_000);
    s.settle().await;
    assert!(
        s.receiver.captured().is_empty(),
        "nothing inside the grace delay"
    );
    s.advance(1_000);
    let calls = s.exactly(2).await;

    let client = s.hub.token("visitor-1").await;
    let badge = s.hub.get("/v1/me/unread", &client).await.1["total"].clone();
    assert_eq!(badge, 2, "both messages are unread");
    let mut tokens = BTreeSet::new();
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, "/push");
        assert_eq!(call.header("content-type"), Some("application/json"));
        assert_eq!(call.header("x-hmac"), None, "no secret, no signature");
        let body = call.json();
        let token = body["deviceToken"].as_str().unwrap().to_string();
        assert_eq!(
            body,
            json!({
                "authToken": "backend-auth-7f3a",
                "deviceToken": token,
                "payload": {
                    "aps": {
                        "alert": {"title": "New message from Ann", "body": "Your order shipped"},
                        "badge": badge,
                        "sound": "default",
                    },
                    "conversationId": "c1",
                    "position": position,
                    "unread": 2,
                    "kind": "new_message",
                },
            })
        );
        tokens.insert(token);
    }
    assert_eq!(
        tokens,
        BTreeSet::from([PHONE.to_string(), TABLET.to_string()]),
        "each device's token, passed through untouched"
    );

    // The phone is deregistered: the next push reaches the tablet only.
    let (status, body) = s
        .hub
        .delete(&format!("/v1/me/devices/{phone}"), &client)
        .await;
    assert!(status.is_success(), "{body}");
    s.say("Anything else?").await;
    s.advance(3_000);
    let calls = s.exactly(3).await;
    let last = calls[2].json();
    assert_eq!(last["deviceToken"], TABLET);
    assert_eq!(last["payload"]["aps"]["badge"], 3);
    assert_eq!(last["payload"]["aps"]["alert"]["body"], "Anything else?");
}

/// Python's `hmac` judges `X-hmac` of a push-proxy call: `valid` or `invalid`.
fn python_judges(secret: &str, call: &Captured) -> String {
    let input = json!({
        "secret": secret,
        "body": String::from_utf8(call.body.to_vec()).unwrap(),
        "signature": call.header("x-hmac").unwrap_or_default(),
    });
    let script = r#"
import hashlib, hmac, json, sys
d = json.load(sys.stdin)
body = json.loads(d["body"])
expected = hmac.new(d["secret"].encode(), (body["eventId"] + body["sessionId"]).encode(), hashlib.sha256).hexdigest()
print("valid" if hmac.compare_digest(expected, d["signature"]) else "invalid")
"#;
    python::run(script, input.to_string().as_bytes())
        .trim()
        .to_string()
}

const SESSION: &str = "bf813a5d-2e06-4047-bae2-e01da2f69f7c";
const PROXY_SECRET: &str = "proxy-shared-secret-91c2";

#[tokio::test]
async fn push_proxy_role_metadata_only_signed_never_retried_backs_off_after_503s_but_not_400_or_500()
 {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 0, "coalesce_window_ms": 0},
        "content": {"mode": "metadata_only"},
        "delivery": {"retry": false, "breaker_statuses": [429, 502, 503, 504], "breaker_failures": 2, "breaker_cool_down_ms": 30_000},
        "connector": {"preset": "push_proxy", "hmac_secret": PROXY_SECRET},
    }))
    .await;
    s.device(SESSION).await;

    // Metadata only, signed.
    let (event_id, _) = s
        .say_as("Ann Secretname", "Your card ending 4242 was charged")
        .await;
    let call = &s.exactly(1).await[0];
    let body = call.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "conversationId",
            "customerId",
            "eventDate",
            "eventId",
            "sessionId"
        ]
    );
    assert_eq!(body["eventId"], event_id.as_str());
    assert_eq!(body["conversationId"], "c1");
    assert_eq!(body["customerId"], "visitor-1");
    assert_eq!(body["sessionId"], SESSION);
    time::OffsetDateTime::parse(
        body["eventDate"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("eventDate is RFC 3339");
    let mut everything = String::from_utf8(call.body.to_vec()).unwrap();
    for (name, value) in &call.headers {
        everything.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or("")));
    }
    for text in ["4242", "card", "charged", "Secretname", "Ann"] {
        assert!(
            !everything.contains(text),
            "`{text}` leaked into the call:\n{everything}"
        );
    }
    let signature = call.header("x-hmac").unwrap();
    assert!(
        signature.len() == 64
            && signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "lowercase hex: {signature}"
    );
    assert_eq!(python_judges(PROXY_SECRET, call), "valid");
    assert_eq!(python_judges("another-secret", call), "invalid");

    // The client fetches the content with the ids it got.
    let client = s.hub.token("visitor-1").await;
    let cid = body["conversationId"].as_str().unwrap();
    let (status, page) = s
        .hub
        .get(
            &format!("/v1/me/conversations/{cid}/events?after=0"),
            &client,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let event = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == body["eventId"])
        .unwrap_or_else(|| panic!("the event is in the transcript: {page:#}"));
    assert_eq!(event["text"], "Your card ending 4242 was charged");

    // 400 and 500: failed at once, never retried, and they never pause the calls.
    let mut seen = 1;
    for status in [400, 500] {
        s.receiver.set_default(status);
        for _ in 0..3 {
            let (_, position) = s.say("failing").await;
            seen += 1;
            s.exactly(seen).await;
            let id = s.notification_at(position).await;
            let delivery = s.settled_delivery(&id).await;
            assert_eq!(delivery["status"], "failed", "{delivery:#}");
            assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
            assert_eq!(delivery["attempts"][0]["status"], status);
        }
    }
    s.advance(600_000);
    s.exactly(seen).await;

    // Continuous 503s: after `breaker_failures` of them the calls pause for the cool-down.
    s.receiver.set_default(503);
    for _ in 0..2 {
        let (_, position) = s.say("unavailable").await;
        seen += 1;
        s.exactly(seen).await;
        let id = s.notification_at(position).await;
        let delivery = s.settled_delivery(&id).await;
        assert_eq!(
            delivery["attempts"].as_array().unwrap().len(),
            1,
            "never retried"
        );
    }
    let mut waiting = vec![];
    for _ in 0..2 {
        let (event_id, position) = s.say("while paused").await;
        let id = s.notification_at(position).await;
        let delivery = s
            .delivery_when(&id, "held back by the open circuit", |d| {
                d["status"] == "pending"
                    && d["note"]
                        .as_str()
                        .is_some_and(|n| n.contains("circuit open"))
            })
            .await;
        assert!(delivery["attempts"].as_array().unwrap().is_empty());
        waiting.push((event_id, id));
    }
    s.advance(29_000);
    s.exactly(seen).await;

    // After the cool-down they resume: the held-back pushes go, then new ones at once.
    s.receiver.set_default(200);
    s.advance(1_001);
    s.receiver.wait_for(seen + 1).await;
    // One probe goes first; a delivery that asked while it was out waits a moment (of the
    // manual clock) before it follows.
    s.advance(1_000);
    seen += 2;
    let calls = s.exactly(seen).await;
    let resumed: BTreeSet<_> = calls[seen - 2..]
        .iter()
        .map(|c| c.json()["eventId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        resumed,
        waiting
            .iter()
            .map(|(e, _)| e.clone())
            .collect::<BTreeSet<_>>()
    );
    for (_, id) in &waiting {
        let delivery = s.settled_delivery(id).await;
        assert_eq!(delivery["status"], "delivered", "{delivery:#}");
    }
    let (event_id, _) = s.say("back to normal").await;
    seen += 1;
    let calls = s.exactly(seen).await;
    assert_eq!(calls[seen - 1].json()["eventId"], event_id.as_str());
    assert_eq!(python_judges(PROXY_SECRET, &calls[seen - 1]), "valid");
}

#[tokio::test]
async fn a_custom_template_keeps_hostile_text_and_names_as_exact_json_values() {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 0},
        "connector": {"preset": "custom", "template": {
            "to": "{{ device_token }}",
            "text": "{{ body }}",
            "from": "{{ sender_name }}",
            "line": "{{ sender_name }} wrote: {{ body }}",
            "title": "{{ title }}",
            "count": "{{ badge }}",
            "meta": {"conversation": "{{ conversation_id }}", "tags": ["chat", "{{ kind }}"]},
        }},
    }))
    .await;
    s.device(SESSION).await;
    let name = r#"Ann "The Hammer" O'Neil \ "}, "admin": true, "x": {""#;
    let text = "He said \"hi\" \\ C:\\temp\\new\n</script><script>alert(1)</script>\n\"}, \"count\": 999, \"to\": \"attacker\r\n\t😀 \u{2028} {{ badge }}";
    s.say_as(name, text).await;
    let call = &s.exactly(1).await[0];
    let parsed: Value = serde_json::from_slice(&call.body).expect("valid JSON");
    assert_eq!(
        parsed,
        json!({
            "to": SESSION,
            "text": text,
            "from": name,
            "line": format!("{name} wrote: {text}"),
            "title": format!("New message from {name}"),
            "count": 1,
            "meta": {"conversation": "c1", "tags": ["chat", "new_message"]},
        })
    );
}

#[tokio::test]
async fn a_template_that_fails_to_render_fails_the_delivery_permanently_with_the_reason() {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 0},
        "connector": {"preset": "custom", "template": {"order": "{{ data.order_id }}", "text": "{{ body }}"}},
    }))
    .await;
    s.device(SESSION).await;
    let (_, position) = s.say("where is my order?").await;
    let id = s.notification_at(position).await;
    let delivery = s.settled_delivery(&id).await;
    assert_eq!(delivery["status"], "failed", "{delivery:#}");
    assert_eq!(delivery["channel"], "connector");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivery:#}");
    assert_eq!(attempts[0]["outcome"], "permanent");
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("template") && reason.contains("order") && reason.contains("undefined"),
        "{reason}"
    );
    assert!(
        !reason.contains(SESSION),
        "the token is not in the reason: {reason}"
    );
    s.advance(600_000);
    s.exactly(0).await;

    // The same template renders for a push that has the data.
    let (status, body) = s
        .hub
        .post(
            "/v1/notifications",
            &s.hub.key,
            json!({"app_id": "chat", "user_ids": ["visitor-1"], "title": "Order", "body": "Shipped",
                "data": {"order_id": "A-1001"}}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let call = &s.exactly(1).await[0];
    assert_eq!(call.json(), json!({"order": "A-1001", "text": "Shipped"}));
}

#[tokio::test]
async fn a_custom_template_with_an_unknown_variable_is_refused_when_the_app_is_stored() {
    let hub = herald_testkit::TestHub::start().await;
    let app = serde_json::json!({"connector": {"callback_url": "https://push.example.com/cb", "preset": "custom",
        "template": {"payload": {"title": "{{ tittle }}"}}}});
    let (status, problem) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["path"],
        "connector.template.payload.title"
    );
    assert!(problem["detail"].as_str().unwrap().contains("tittle"));
    assert_eq!(
        hub.get("/v1/apps/chat", &hub.key).await.0,
        404,
        "nothing stored"
    );
}

#[tokio::test]
async fn the_push_proxy_preset_brings_its_failure_policy_unless_the_app_overrides_it() {
    let hub = herald_testkit::TestHub::start().await;
    let connector = serde_json::json!({"callback_url": "https://proxy.example.com/cb", "preset": "push_proxy", "hmac_secret": "s3cret"});
    let (status, app) = hub
        .put(
            "/v1/apps/proxy",
            &hub.key,
            serde_json::json!({"connector": connector}),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["delivery"]["retry"], false);
    let statuses: Vec<u64> = app["delivery"]["breaker_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert!(
        !statuses.contains(&400) && !statuses.contains(&500),
        "{statuses:?}"
    );
    let (_, own) = hub
        .put(
            "/v1/apps/own",
            &hub.key,
            serde_json::json!({"connector": connector, "delivery": {"retry": true}}),
        )
        .await;
    assert_eq!(own["delivery"]["retry"], true, "the app's own choice wins");
    let (_, sdk) = hub
        .put(
            "/v1/apps/sdk",
            &hub.key,
            serde_json::json!({"connector": {"callback_url": "https://b.example.com/cb"}}),
        )
        .await;
    assert_eq!(
        sdk["delivery"]["retry"], true,
        "other presets keep the defaults"
    );
}
