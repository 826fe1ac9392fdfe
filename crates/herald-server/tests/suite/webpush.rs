//! Web Push (SPEC §2.5, RFC 8030/8291/8292) end to end: a real Herald pushes to npm
//! `web-push-testing`, an independent mock push service that checks the VAPID JWT against the
//! subscription's `applicationServerKey`, decrypts the `aes128gcm` body with the browser's keys
//! and hands back the plaintext. `scripts/test` installs it and exports
//! `HERALD_TEST_WEB_PUSH_TESTING` (its `src/bin/server.js`); each test runs its own on a free
//! loopback port. A missing node or package fails the tests — they never skip.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use herald_channels::webpush::generate_vapid_keys;
use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::peers::PushService;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    token: String,
    seq: u32,
}

impl Story {
    /// App `chat` (grace delay 0) with a `webpush` section holding `public`/`private`, agent
    /// `agent-7` and visitor `visitor-1` (away) in conversation `c1`. `allow_loopback` opens
    /// loopback to outbound calls (the push service lives there).
    async fn new(allow_loopback: bool, public: &str, private: &str) -> Story {
        Story::with(allow_loopback, public, private, json!({})).await
    }

    /// [`Story::new`] with `extra` merged into the app document.
    async fn with(allow_loopback: bool, public: &str, private: &str, extra: Value) -> Story {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let hub = TestHub::builder()
            .clock(clock.clone())
            .configure(|c| {
                c.delivery.poll_ms = 50;
                if allow_loopback {
                    c.outbound.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
                }
            })
            .start()
            .await;
        let mut app = json!({"rules": {"grace_delay_ms": 0},
            "webpush": {"vapid_public_key": public, "vapid_private_key": private, "subject": "mailto:ops@example.com"}});
        if let (Value::Object(app), Value::Object(extra)) = (&mut app, extra) {
            app.extend(extra);
        }
        let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
        assert_eq!(status, 201, "{body}");
        for (user, role) in [("visitor-1", "visitor"), ("agent-7", "agent")] {
            hub.join("c1", user, role).await;
        }
        let token = hub.token("visitor-1").await;
        Story {
            hub,
            clock,
            token,
            seq: 0,
        }
    }

    /// Registers the browser's subscription as the visitor's `webpush` device.
    async fn register(&self, subscription: &Value) {
        let (status, body) = self
            .hub
            .post(
                "/v1/me/devices",
                &self.token,
                json!({"app_id": "chat", "channel": "webpush", "platform": "web", "locale": "en",
                    "subscription": {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn say(&mut self, text: &str) -> u64 {
        self.seq += 1;
        let event = json!({"event_id": format!("m{}", self.seq), "conversation_id": "c1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text});
        let position = self.hub.events(event).await["position"].as_u64().unwrap();
        self.hub.settle_engine(self.clock.now()).await;
        position
    }

    /// The visitor's notifications, newest first.
    async fn notifications(&self) -> Vec<Value> {
        let (_, body) = self
            .hub
            .get("/v1/users/visitor-1/notifications?limit=500", &self.hub.key)
            .await;
        body["notifications"].as_array().unwrap().clone()
    }

    /// The latest notification of `kind` handed to the delivery core (it reads `sent`,
    /// `partial` or `failed` once its deliveries end).
    async fn latest(&self, kind: &str) -> Value {
        self.notifications()
            .await
            .into_iter()
            .find(|n| n["push"].is_object() && n["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} notification was sent"))
    }

    /// The finished `webpush` deliveries of `notification`.
    async fn deliveries(&self, notification: &Value, n: usize) -> Vec<Value> {
        let id = notification["id"].as_str().unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (_, view) = self
                .hub
                .get(&format!("/v1/notifications/{id}"), &self.hub.key)
                .await;
            let done: Vec<Value> = view["deliveries"]
                .as_array()
                .map(|ds| {
                    ds.iter()
                        .filter(|d| d["channel"] == "webpush" && d["status"] != "pending")
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if done.len() >= n {
                return done;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the webpush deliveries never finished: {view:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn devices(&self) -> Value {
        self.hub
            .get("/v1/users/visitor-1/devices", &self.hub.key)
            .await
            .1
    }
}

fn parse(message: &str) -> Value {
    serde_json::from_str(message).unwrap_or_else(|e| panic!("not JSON ({e}): {message}"))
}

#[tokio::test]
async fn an_agents_message_reaches_the_browser_encrypted_under_vapid_and_a_read_clears_it_by_tag() {
    let service = PushService::start().await;
    let (public, private) = generate_vapid_keys();
    let mut s = Story::new(true, &public, &private).await;
    let browser = service.subscribe(&public).await;
    s.register(&browser).await;

    let position = s.say("Your order shipped").await;
    let notification = s.latest("new_message").await;
    let delivered = s.deliveries(&notification, 1).await;
    assert_eq!(delivered[0]["status"], "delivered", "{delivered:#?}");
    let messages = service.wait_for(&browser, 1).await;
    assert_eq!(messages.len(), 1);
    let push = parse(&messages[0]);
    assert_eq!(push["kind"], "new_message");
    assert_eq!(push["title"], "New message from Ann");
    assert_eq!(push["body"], "Your order shipped");
    assert_eq!(push["conversation_id"], "c1");
    assert_eq!(push["position"], position);
    assert_eq!((&push["badge"], &push["unread"]), (&json!(1), &json!(1)));
    assert_eq!(push["tag"], "conv:c1");
    assert_eq!(push["notification_id"], notification["id"]);

    let (status, body) = s
        .hub
        .post(
            "/v1/me/conversations/c1/read",
            &s.token,
            json!({"position": position}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    s.hub.settle_engine(s.clock.now()).await;
    let messages = service.wait_for(&browser, 2).await;
    let read = parse(&messages[1]);
    assert_eq!(read["kind"], "read");
    assert_eq!(
        read["tag"], push["tag"],
        "the same tag closes what was shown"
    );
    assert_eq!(read["badge"], 0);
    assert!(
        read.get("title").is_none() && read.get("body").is_none(),
        "a silent push has no text: {read}"
    );
}

#[tokio::test]
async fn an_expired_subscription_is_removed_after_the_first_410_and_never_tried_again() {
    let service = PushService::start().await;
    let (public, private) = generate_vapid_keys();
    let mut s = Story::new(true, &public, &private).await;
    let browser = service.subscribe(&public).await;
    s.register(&browser).await;
    service.expire(&browser).await;

    s.say("anyone there?").await;
    let notification = s.latest("new_message").await;
    let finished = s.deliveries(&notification, 1).await;
    assert_eq!(finished[0]["status"], "invalid_target", "{finished:#?}");
    assert_eq!(
        finished[0]["attempts"].as_array().unwrap().len(),
        1,
        "{finished:#?}"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while s.devices().await != json!([]) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the device was never removed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    s.clock.advance(time::Duration::seconds(10));
    let second = s.say("hello?").await;
    let latest = &s.notifications().await[0];
    assert_eq!(latest["position"], second);
    assert!(
        latest["reason"].as_str().unwrap().contains("no device"),
        "{latest}"
    );
    assert!(service.messages(&browser).await.is_empty());
}

#[tokio::test]
async fn a_10_kb_message_arrives_cut_to_3993_bytes_of_valid_json() {
    let service = PushService::start().await;
    let (public, private) = generate_vapid_keys();
    // Herald keeps 2 000 bytes of a message's text; a template that quotes it three times
    // makes a body that only the channel's own cut can fit.
    let templates = json!({"templates": {"new_message": {"en": {
        "title": "New message from {sender_name}", "body": "{text}\n{text}\n{text}"}}}});
    let mut s = Story::with(true, &public, &private, templates).await;
    let browser = service.subscribe(&public).await;
    s.register(&browser).await;

    let text = "Grüße aus Köln — ".repeat(600);
    assert!(text.len() > 10_000);
    s.say(&text).await;
    let messages = service.wait_for(&browser, 1).await;
    let plaintext = &messages[0];
    assert!(plaintext.len() <= 3993, "{} bytes", plaintext.len());
    assert!(plaintext.len() > 3900, "as much text as fits is kept");
    let push = parse(plaintext);
    let body = push["body"].as_str().unwrap();
    assert!(body.ends_with('…'), "the cut is marked");
    let start: String = text.chars().take(200).collect();
    assert!(body.starts_with(&start) && body.contains('\n'), "{body}");
    assert_eq!(push["title"], "New message from Ann");
    assert_eq!(push["tag"], "conv:c1");
}

#[tokio::test]
async fn without_the_allow_list_a_loopback_endpoint_is_refused_before_any_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (public, private) = generate_vapid_keys();
    let mut s = Story::new(false, &public, &private).await;
    // A well-formed subscription (any P-256 point will do) at a loopback endpoint, spelled as
    // a name and as an address literal.
    let (p256dh, _) = generate_vapid_keys();
    for (i, host) in ["localhost", "127.0.0.1"].into_iter().enumerate() {
        let (status, body) = s
            .hub
            .post(
                "/v1/me/devices",
                &s.token,
                json!({"app_id": "chat", "channel": "webpush", "platform": "web",
                    "subscription": {"endpoint": format!("http://{host}:{port}/push/{i}"),
                        "keys": {"p256dh": p256dh, "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    s.say("hello").await;
    let notification = s.latest("new_message").await;
    let finished = s.deliveries(&notification, 2).await;
    for delivery in &finished {
        assert_eq!(delivery["status"], "failed", "{delivery:#}");
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "a refusal is not retried: {delivery:#}");
        let reason = attempts[0]["reason"].as_str().unwrap();
        assert!(reason.contains("forbidden address"), "{reason}");
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection reached the endpoint"
    );
    assert_eq!(
        s.devices().await.as_array().unwrap().len(),
        2,
        "a refused endpoint is not a dead subscription"
    );
}

#[tokio::test]
async fn a_subscription_made_for_another_applicationserverkey_is_refused_but_not_dropped() {
    let service = PushService::start().await;
    let (public, private) = generate_vapid_keys();
    let (other_public, _) = generate_vapid_keys();
    let mut s = Story::new(true, &public, &private).await;
    let browser = service.subscribe(&other_public).await;
    s.register(&browser).await;

    s.say("hello").await;
    let notification = s.latest("new_message").await;
    let finished = s.deliveries(&notification, 1).await;
    let delivery = &finished[0];
    assert_eq!(delivery["status"], "failed", "{delivery:#}");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivery:#}");
    assert_eq!(attempts[0]["status"], 400, "{delivery:#}");
    assert!(service.messages(&browser).await.is_empty());
    assert_eq!(
        s.devices().await.as_array().unwrap().len(),
        1,
        "a VAPID mismatch is a configuration error, not a dead subscription"
    );
}
