//! The FCM channel against a fake FCM and token endpoint (`herald_testkit::fake_fcm`): end to
//! end through a hub (Android notifications with a per-conversation tag, data-only reads and
//! calls, the apns block for iOS, dead tokens and kept tokens, Retry-After, payload fitting),
//! and the channel on its own (the error table over real HTTP, one token fetch for sixteen
//! concurrent sends, the 401 refresh, the clock-driven refresh), the assertion checked by PyJWT.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_channels::fcm::{FcmChannel, FcmOptions};
use herald_engine::app::AppConfig;
use herald_engine::clock::{Clock, ManualClock, SystemClock};
use herald_engine::delivery::Channel;
use herald_engine::device::{Channel as DeviceChannel, Device, Platform};
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use herald_testkit::fake_fcm::{
    CLIENT_EMAIL, FakeFcm, FcmMessage, PRIVATE_KEY_ID, PROJECT_ID, RSA_PUBLIC_PEM, Reply, SCOPE,
};
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};
use time::OffsetDateTime;

fn app_document(fake: &FakeFcm) -> Value {
    json!({
        "rules": {"grace_delay_ms": 0},
        "fcm": {"service_account": fake.service_account(), "base_url": fake.url()}
    })
}

fn app(fake: &FakeFcm) -> AppConfig {
    serde_json::from_value(app_document(fake)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Through a hub.

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    fake: FakeFcm,
    /// token → device id
    registered: Mutex<HashMap<String, String>>,
}

/// A hub with the built-in channels, a manual clock shared with a fresh fake FCM, the app
/// `chat` pointing at the fake, and `visitor-1` in conversations c1 and c2.
async fn story() -> Story {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let fake = FakeFcm::builder().clock(clock.clone()).start().await;
    let hub = TestHub::builder().clock(clock.clone()).start().await;
    let (status, body) = hub
        .put("/v1/apps/chat", &hub.key, app_document(&fake))
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
    Story {
        hub,
        clock,
        fake,
        registered: Mutex::default(),
    }
}

impl Story {
    async fn register(&self, token: &str, platform: &str) -> String {
        let user = self.hub.token("visitor-1").await;
        let device =
            json!({"app_id": "chat", "channel": "fcm", "token": token, "platform": platform});
        let (status, body) = self.hub.post("/v1/me/devices", &user, device).await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        self.registered
            .lock()
            .unwrap()
            .insert(token.to_string(), id.clone());
        id
    }

    async fn say(&self, id: &str, conversation: &str, text: &str) -> u64 {
        let event = json!({"event_id": id, "conversation_id": conversation, "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text});
        self.hub.events(event).await["position"].as_u64().unwrap()
    }

    async fn devices(&self) -> Vec<Value> {
        let (_, body) = self
            .hub
            .get("/v1/users/visitor-1/devices", &self.hub.key)
            .await;
        body.as_array().unwrap().clone()
    }

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

    /// Waits until the delivery of `message`'s notification to its device has `status` after
    /// `attempts` attempts.
    async fn delivery_reaches(&self, message: &FcmMessage, status: &str, attempts: usize) -> Value {
        let notification = message.data("notification_id").unwrap().to_string();
        let device = self.registered.lock().unwrap()[&message.token].clone();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let deliveries = self.deliveries(&notification).await;
            let found = deliveries.iter().find(|d| {
                d["device_id"] == device.as_str()
                    && d["status"] == status
                    && d["attempts"].as_array().unwrap().len() == attempts
            });
            if let Some(d) = found {
                return d.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the delivery never became {status}: {deliveries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the user has `n` devices.
    async fn devices_become(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.devices().await.len() != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} devices: {:#?}",
                self.devices().await
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn assert_strings(data: &Value) {
    let data = data.as_object().expect("data is a map");
    assert!(data.values().all(Value::is_string), "{data:?}");
}

#[tokio::test]
async fn an_agents_messages_reach_an_away_android_visitor_as_notifications_tagged_per_conversation_and_a_read_cancels_the_tag()
 {
    let s = story().await;
    s.register("tok-android-1", "android").await;
    s.say("m1", "c1", "first").await;
    let first = s.fake.wait_for(1).await.remove(0);
    s.say("m2", "c2", "second").await;
    let second = s.fake.wait_for(2).await.remove(1);

    assert_eq!(first.version, axum::http::Version::HTTP_2, "h2c");
    assert!(first.access_token.starts_with("ya29."));
    assert_eq!(first.project, PROJECT_ID);
    assert_eq!(first.token, "tok-android-1");
    let android = &first.message["android"];
    assert_eq!(android["priority"], "HIGH");
    assert_eq!(android["ttl"], "3600s", "the chat TTL, all of it left");
    let notification = &android["notification"];
    assert!(
        notification["title"].as_str().unwrap().contains("Ann"),
        "{notification}"
    );
    assert_eq!(notification["body"], "first");
    assert_eq!(notification["tag"], "conv:c1");
    assert_eq!(notification["notification_count"], 1);
    assert!(first.message.get("apns").is_none());
    assert_strings(&first.message["data"]);
    assert_eq!(first.data("kind"), Some("new_message"));
    assert_eq!(first.data("conversation_id"), Some("c1"));
    assert_eq!(first.data("event_id"), Some("m1"));

    let notification = &second.message["android"]["notification"];
    assert_eq!(notification["tag"], "conv:c2", "one tag per conversation");
    assert_eq!(notification["notification_count"], 2, "the absolute badge");
    s.delivery_reaches(&first, "delivered", 1).await;

    let user = s.hub.token("visitor-1").await;
    let position = first.data("position").unwrap().parse::<u64>().unwrap();
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &user,
            json!({"position": position}),
        )
        .await;
    let read = s.fake.wait_for(3).await.remove(2);
    assert_eq!(read.data("kind"), Some("read"));
    assert_eq!(read.data("tag"), Some("conv:c1"), "the tag to cancel");
    assert_eq!(read.data("badge"), Some("1"));
    assert!(
        read.message["android"].get("notification").is_none(),
        "data only"
    );
    assert!(read.message.get("notification").is_none());
    assert_eq!(read.message["android"]["priority"], "NORMAL");
    assert_eq!(read.message["android"]["collapse_key"], "conv:c1");
    assert_strings(&read.message["data"]);
    assert!(s.fake.rejections().is_empty(), "{:?}", s.fake.rejections());
}

#[tokio::test]
async fn call_ringing_is_a_high_priority_data_message_with_the_call() {
    let s = story().await;
    s.register("tok-android-2", "android").await;
    s.hub.events(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"], "ring_timeout_s": 30})).await;
    let ring = s.fake.wait_for(1).await.remove(0);
    assert_eq!(ring.message["android"]["priority"], "HIGH");
    assert_eq!(ring.message["android"]["ttl"], "30s", "the ring timeout");
    assert!(
        ring.message["android"].get("notification").is_none(),
        "apps ring from data"
    );
    assert_eq!(ring.message["android"]["collapse_key"], "call:call-1");
    assert_eq!(ring.data("kind"), Some("incoming_call"));
    assert_eq!(ring.data("call_id"), Some("call-1"));
    assert!(
        ring.data("body").is_some_and(|t| t.contains("Ann")),
        "{:?}",
        ring.message
    );
    assert_strings(&ring.message["data"]);
}

#[tokio::test]
async fn an_ios_device_on_fcm_gets_an_apns_block_and_a_read_goes_at_priority_five() {
    let s = story().await;
    s.register("tok-ios-1", "ios").await;
    let start = s.clock.now();
    let position = s.say("m1", "c1", "Hello").await;
    let alert = s.fake.wait_for(1).await.remove(0);
    assert!(alert.message.get("android").is_none());
    let apns = &alert.message["apns"];
    assert_eq!(apns["headers"]["apns-priority"], "10");
    assert_eq!(apns["headers"]["apns-push-type"], "alert");
    assert_eq!(apns["headers"]["apns-collapse-id"], "conv:c1");
    assert_eq!(
        apns["headers"]["apns-expiration"],
        (start + time::Duration::hours(1))
            .unix_timestamp()
            .to_string()
    );
    let aps = &apns["payload"]["aps"];
    assert_eq!(aps["alert"]["body"], "Hello");
    assert_eq!(aps["badge"], 1);
    assert_eq!(aps["thread-id"], "c1");

    let user = s.hub.token("visitor-1").await;
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &user,
            json!({"position": position}),
        )
        .await;
    let read = s.fake.wait_for(2).await.remove(1);
    let apns = &read.message["apns"];
    assert_eq!(
        apns["headers"]["apns-priority"], "5",
        "FCM: data-only to iOS is priority 5"
    );
    assert_eq!(apns["headers"]["apns-push-type"], "background");
    assert_eq!(apns["headers"]["apns-collapse-id"], "conv:c1");
    assert_eq!(
        apns["payload"]["aps"],
        json!({"content-available": 1, "badge": 0})
    );
    assert_eq!(read.data("tag"), Some("conv:c1"));
    assert_eq!(read.status, 200);
}

#[tokio::test]
async fn unregistered_and_invalid_tokens_remove_the_device_after_the_first_attempt_and_it_is_never_tried_again()
 {
    let s = story().await;
    s.register("tok-dead", "android").await;
    s.register("tok-malformed", "android").await;
    s.fake.script("tok-dead", vec![Reply::Unregistered]);
    s.fake.script("tok-malformed", vec![Reply::InvalidToken]);
    s.say("m1", "c1", "one").await;
    let sent = s.fake.wait_for(2).await;
    for message in &sent {
        let d = s.delivery_reaches(message, "invalid_target", 1).await;
        let reason = d["attempts"][0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("UNREGISTERED") || reason.contains("registration token"),
            "{reason}"
        );
        assert!(!reason.contains(&message.token), "no token in the reason");
    }
    s.devices_become(0).await;
    s.clock.advance(time::Duration::seconds(10));
    s.say("m2", "c1", "two").await;
    s.hub.settle_engine(s.clock.now()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.fake.messages().len(), 2, "never tried again");
}

#[tokio::test]
async fn invalid_argument_about_the_message_and_third_party_auth_errors_keep_the_device() {
    let s = story().await;
    s.register("tok-kept-1", "android").await;
    s.register("tok-kept-2", "ios").await;
    s.fake.script(
        "tok-kept-1",
        vec![Reply::InvalidArgument(
            "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)"
                .into(),
        )],
    );
    s.fake
        .script("tok-kept-2", vec![Reply::ThirdPartyAuthError]);
    s.say("m1", "c1", "one").await;
    for message in s.fake.wait_for(2).await {
        let d = s.delivery_reaches(&message, "failed", 1).await;
        let reason = d["attempts"][0]["reason"].as_str().unwrap();
        match message.token.as_str() {
            "tok-kept-1" => assert!(reason.contains("INVALID_ARGUMENT"), "{reason}"),
            _ => assert!(reason.contains("THIRD_PARTY_AUTH_ERROR"), "{reason}"),
        }
        assert_eq!(d["attempts"][0]["outcome"], "permanent", "{d}");
    }
    assert_eq!(s.devices().await.len(), 2, "both kept");
    s.clock.advance(time::Duration::seconds(10));
    s.say("m2", "c1", "two").await;
    let again = s.fake.wait_for(4).await;
    assert!(again[2..].iter().all(|m| m.status == 200));
}

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_no_earlier_than_asked() {
    let s = story().await;
    s.register("tok-busy", "android").await;
    s.register("tok-limited", "android").await;
    s.fake.script(
        "tok-busy",
        vec![Reply::QuotaExceeded {
            retry_after_s: Some(120),
        }],
    );
    // A 429 RESOURCE_EXHAUSTED without an FcmError and without Retry-After: a minute.
    s.fake.script(
        "tok-limited",
        vec![Reply::RateLimited {
            retry_after_s: None,
        }],
    );
    s.say("m1", "c1", "one").await;
    let first = s.fake.wait_for(2).await;
    let mut waits = vec![];
    for message in &first {
        let waiting = s.delivery_reaches(message, "pending", 1).await;
        assert_eq!(waiting["attempts"][0]["status"], 429, "{waiting:#}");
        let wait = at(&waiting["next_attempt_at"]) - at(&waiting["attempts"][0]["at"]);
        waits.push((message.token.clone(), wait));
    }
    for (token, wait) in waits {
        let asked = if token == "tok-busy" { 120 } else { 60 };
        assert!(
            wait >= time::Duration::seconds(asked) - time::Duration::milliseconds(1),
            "{token}: retried after {wait}, asked {asked} s"
        );
    }
    s.clock.advance(time::Duration::seconds(59));
    s.hub.state.delivery.wake();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.fake.messages().len(), 2, "nothing before Retry-After");
    s.clock.advance(time::Duration::seconds(2));
    s.hub.state.delivery.wake();
    let limited = s.fake.wait_for(3).await.remove(2);
    assert_eq!(
        (limited.token.as_str(), limited.status),
        ("tok-limited", 200)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.fake.messages().len(), 3, "tok-busy waits for its 120 s");
    s.clock.advance(time::Duration::seconds(60));
    s.hub.state.delivery.wake();
    let busy = s.fake.wait_for(4).await.remove(3);
    assert_eq!((busy.token.as_str(), busy.status), ("tok-busy", 200));
    s.delivery_reaches(&busy, "delivered", 2).await;
}

/// The message without its target, as FCM counts it.
fn size(sent: &FcmMessage) -> usize {
    let mut message = sent.message.as_object().unwrap().clone();
    message.remove("token");
    serde_json::to_vec(&message).unwrap().len()
}

#[tokio::test]
async fn ten_kilobyte_pushes_are_cut_to_fit_on_a_character_boundary() {
    let s = story().await;
    s.register("tok-long", "android").await;
    let text = "Grüße aus Köln! ".repeat(640);
    assert!(text.len() > 10_000);
    s.say("m1", "c1", &text).await;
    let sent = s.fake.wait_for(1).await.remove(0);
    assert_eq!(sent.status, 200);
    assert!(size(&sent) <= 4096, "{}", size(&sent));
    let body = sent.message["android"]["notification"]["body"]
        .as_str()
        .unwrap();
    assert!(body.ends_with('…'));
    assert!(text.starts_with(body.trim_end_matches('…')));

    // A proactive notification at the API's limits: 1 kB title, 4 kB body, 5 kB of data.
    let title = "T".repeat(1000);
    let body = "é".repeat(2000);
    let data: serde_json::Map<String, Value> = (1..=5)
        .map(|i| (format!("k{i}"), json!("v".repeat(1000))))
        .collect();
    let (status, answer) = s
        .hub
        .post(
            "/v1/notifications",
            &s.hub.key,
            json!({"app_id": "chat", "user_ids": ["visitor-1"], "title": title, "body": body, "data": data}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let sent = s.fake.wait_for(2).await.remove(1);
    assert_eq!(sent.status, 200);
    let size = size(&sent);
    assert!((3900..=4096).contains(&size), "cut to fit, no more: {size}");
    let notification = &sent.message["android"]["notification"];
    assert_eq!(notification["title"], title.as_str(), "the title is kept");
    let cut = notification["body"].as_str().unwrap();
    assert!(cut.ends_with('…') && body.starts_with(cut.trim_end_matches('…')));
    assert!(cut.len() > 100, "the text keeps room: {cut}");
    assert_eq!(
        sent.data("k1"),
        Some("v".repeat(1000).as_str()),
        "what fits stays"
    );
    assert_eq!(sent.data("kind"), Some("proactive"));
    assert!(s.fake.rejections().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The channel on its own.

fn device(token: &str, platform: Platform) -> Device {
    let now = OffsetDateTime::now_utc();
    Device {
        id: DeviceId::parse(format!("dev-{token}")).unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        user_id: UserId::parse("visitor-1").unwrap(),
        channel: DeviceChannel::Fcm,
        token: token.to_string(),
        subscription: None,
        platform,
        locale: None,
        installation_id: None,
        created_at: now,
        updated_at: now,
    }
}

fn message(id: &str, token: &str, now: OffsetDateTime) -> Delivery {
    let tenant = TenantId::parse("default").unwrap();
    let device = device(token, Platform::Android);
    Delivery {
        id: id.to_string(),
        notification_id: format!("ntf-{id}"),
        tenant_id: tenant.clone(),
        app_id: device.app_id.clone(),
        channel: "fcm".into(),
        push: Push {
            kind: PushKind::NewMessage,
            tenant_id: tenant,
            app_id: device.app_id.clone(),
            user_id: device.user_id.clone(),
            conversation_id: Some(ConversationId::parse("c1").unwrap()),
            position: Some(1),
            event_id: None,
            event_at: None,
            title: Some("New message from Ann".into()),
            body: Some("Hello".into()),
            lines: vec![],
            sender: None,
            message_count: 1,
            unread: 1,
            badge: 1,
            call_id: None,
            missed_calls: 0,
            collapse_key: "conv:c1".into(),
            high_priority: true,
            data: Default::default(),
            created_at: now,
            expires_at: now + time::Duration::hours(1),
        },
        target: Target::Device { device },
        attempt: 1,
    }
}

fn channel(clock: Arc<dyn Clock>) -> Arc<FcmChannel> {
    Arc::new(FcmChannel::new(clock, FcmOptions::default()))
}

fn delivered(outcome: &DeliveryOutcome) -> bool {
    matches!(outcome, DeliveryOutcome::Delivered { .. })
}

#[tokio::test]
async fn fcm_answers_through_the_fake_reach_the_right_outcome() {
    let fake = FakeFcm::start().await;
    let app = app(&fake);
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    let cases = [
        (Reply::Ok, "delivered", None),
        (Reply::Unregistered, "invalid_target", None),
        (Reply::InvalidToken, "invalid_target", None),
        (
            Reply::InvalidArgument("Message is too big".into()),
            "permanent",
            Some(400),
        ),
        (Reply::SenderIdMismatch, "invalid_target", None),
        (
            Reply::QuotaExceeded {
                retry_after_s: Some(7),
            },
            "retryable",
            Some(429),
        ),
        (
            Reply::RateLimited {
                retry_after_s: Some(8),
            },
            "retryable",
            Some(429),
        ),
        (Reply::Internal, "retryable", Some(500)),
        (
            Reply::Unavailable {
                retry_after_s: Some(9),
            },
            "retryable",
            Some(503),
        ),
        (Reply::ThirdPartyAuthError, "permanent", Some(401)),
    ];
    for (i, (reply, expected, status)) in cases.iter().enumerate() {
        let token = format!("tok-case-{i}");
        fake.script(&token, vec![reply.clone()]);
        let outcome = fcm
            .deliver(&message(&format!("d{i}"), &token, now), &app)
            .await;
        let value = serde_json::to_value(&outcome).unwrap();
        assert_eq!(value["outcome"], *expected, "{reply:?} → {value}");
        if let Some(status) = status {
            assert_eq!(value["status"], *status, "{reply:?} → {value}");
        }
        if let DeliveryOutcome::Retryable { after_ms, .. } = &outcome {
            let asked = match reply {
                Reply::QuotaExceeded { .. } => Some(7_000),
                Reply::RateLimited { .. } => Some(8_000),
                Reply::Unavailable { .. } => Some(9_000),
                _ => None,
            };
            assert_eq!(*after_ms, asked, "{reply:?}");
        }
    }
    assert_eq!(fake.token_fetches(), 1, "one access token for all of them");

    // A wrong project is not a dead token.
    let mut elsewhere = app.clone();
    elsewhere.fcm.as_mut().unwrap().service_account.project_id = "other-project".into();
    let outcome = fcm.deliver(&message("dx", "tok-x", now), &elsewhere).await;
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Permanent {
                status: Some(404),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        fcm.endpoint_key(&message("dx", "tok-x", now), &app),
        format!("fcm:{}:{PROJECT_ID}", fake.url())
    );
    // A transport failure is retryable.
    let mut down = app.clone();
    down.fcm.as_mut().unwrap().base_url = Some("http://127.0.0.1:9".into());
    assert!(matches!(
        fcm.deliver(&message("dy", "tok-y", now), &down).await,
        DeliveryOutcome::Retryable { status: None, .. }
    ));
}

#[tokio::test]
async fn sixteen_concurrent_sends_cause_exactly_one_token_fetch() {
    let fake = FakeFcm::start().await;
    fake.set_token_latency(Duration::from_millis(200));
    let app = Arc::new(app(&fake));
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (fcm, app) = (fcm.clone(), app.clone());
            tokio::spawn(async move {
                fcm.deliver(&message(&format!("d{i}"), &format!("tok-{i}"), now), &app)
                    .await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap();
        assert!(delivered(&outcome), "{outcome:?}");
    }
    assert_eq!(fake.token_fetches(), 1);
    assert_eq!(fcm.token_fetches(), 1);
    let messages = fake.messages();
    assert_eq!(messages.len(), 16);
    assert!(
        messages
            .iter()
            .all(|m| m.access_token == messages[0].access_token)
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_inside_the_attempt() {
    let fake = FakeFcm::start().await;
    let app = app(&fake);
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    assert!(delivered(
        &fcm.deliver(&message("d1", "tok-1", now), &app).await
    ));
    fake.expire_tokens();
    assert!(delivered(
        &fcm.deliver(&message("d2", "tok-1", now), &app).await
    ));
    assert_eq!(fake.token_fetches(), 2);
    let rejected: Vec<_> = fake.rejections().iter().map(|r| r.status).collect();
    assert_eq!(rejected, [401], "one refused send, then the refreshed one");
    let messages = fake.messages();
    assert_eq!(messages.len(), 2);
    assert_ne!(messages[0].access_token, messages[1].access_token);

    // FCM keeps refusing: one refresh, then a permanent failure (no loop).
    fake.script(
        "tok-2",
        vec![Reply::Unauthenticated, Reply::Unauthenticated],
    );
    let outcome = fcm.deliver(&message("d3", "tok-2", now), &app).await;
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Permanent {
                status: Some(401),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(fake.token_fetches(), 3, "refreshed exactly once");
    assert_eq!(fake.messages_for("tok-2").len(), 2);
}

#[tokio::test]
async fn the_cached_token_is_replaced_before_it_expires_by_the_clock() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let fake = FakeFcm::builder()
        .clock(clock.clone())
        .expires_in(3599)
        .start()
        .await;
    let app = app(&fake);
    let fcm = channel(clock.clone());
    let send = |id: &str| message(id, "tok-1", clock.now());
    assert!(delivered(&fcm.deliver(&send("d1"), &app).await));
    clock.advance(time::Duration::minutes(58));
    assert!(delivered(&fcm.deliver(&send("d2"), &app).await));
    assert_eq!(fake.token_fetches(), 1, "still fresh after 58 minutes");
    clock.advance(time::Duration::seconds(60));
    assert!(delivered(&fcm.deliver(&send("d3"), &app).await));
    assert_eq!(
        fake.token_fetches(),
        2,
        "replaced a minute before it expires"
    );
    assert!(
        fake.rejections().is_empty(),
        "never sent with an expired one"
    );
}

#[tokio::test]
async fn a_refused_service_account_fails_permanently_and_is_not_asked_again_at_once() {
    let fake = FakeFcm::start().await;
    let mut app = app(&fake);
    app.fcm.as_mut().unwrap().service_account.client_email =
        "someone-else@example.iam.gserviceaccount.com".into();
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    for i in 0..3 {
        let outcome = fcm
            .deliver(&message(&format!("d{i}"), "tok-1", now), &app)
            .await;
        assert!(
            matches!(&outcome, DeliveryOutcome::Permanent { status: Some(400), reason } if reason.contains("invalid_grant")),
            "{outcome:?}"
        );
    }
    assert_eq!(
        fake.token_fetches(),
        1,
        "a refused credential is held for a moment"
    );
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn pyjwt_verifies_the_assertion() {
    let fake = FakeFcm::start().await;
    let app = app(&fake);
    let fcm = channel(Arc::new(SystemClock));
    assert!(delivered(
        &fcm.deliver(&message("d1", "tok-1", OffsetDateTime::now_utc()), &app)
            .await
    ));
    let assertion = fake.assertions().remove(0);
    let script = r#"
import json, sys, time, jwt
given = json.load(sys.stdin)
header = jwt.get_unverified_header(given["jwt"])
claims = jwt.decode(given["jwt"], given["public_key"], algorithms=["RS256"],
                    audience=given["token_uri"], issuer=given["iss"],
                    options={"require": ["iss", "aud", "iat", "exp", "scope"]})
assert 0 < claims["exp"] - claims["iat"] <= 3600, claims
assert abs(time.time() - claims["iat"]) < 600, claims
print(json.dumps({"alg": header["alg"], "kid": header["kid"], "iss": claims["iss"],
                  "aud": claims["aud"], "scope": claims["scope"]}))
"#;
    let input = json!({"jwt": assertion, "public_key": RSA_PUBLIC_PEM, "token_uri": fake.token_uri(), "iss": CLIENT_EMAIL});
    let out = herald_testkit::python::run(script, input.to_string().as_bytes());
    let verified: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        verified,
        json!({"alg": "RS256", "kid": PRIVATE_KEY_ID, "iss": CLIENT_EMAIL,
               "aud": fake.token_uri(), "scope": SCOPE})
    );
}
