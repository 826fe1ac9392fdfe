//! The APNs channel against a protocol-faithful fake APNs (`herald_testkit::fake_apns`): end
//! to end through a hub (headers, payloads, badges, background reads, VoIP calls, dead tokens),
//! and the channel on its own (every reason, the provider token's rules, payload fitting, the
//! stream limit, a crashed and restarted upstream, GOAWAY, TLS), the token checked by PyJWT,
//! and `herald push test`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_channels::apns::payload::apns_id;
use herald_channels::apns::{ApnsChannel, ApnsOptions};
use herald_engine::app::AppConfig;
use herald_engine::clock::{Clock, ManualClock, SystemClock};
use herald_engine::delivery::Channel;
use herald_engine::device::{Channel as DeviceChannel, Device, Platform};
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use herald_testkit::fake_apns::{FakeApns, KEY_ID, Reply, TEAM_ID};
use herald_testkit::keys::{EC_PRIVATE_PEM, EC_PUBLIC_PEM};
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};
use time::OffsetDateTime;

const TOPIC: &str = "com.example.chat";

fn app_document(base_url: &str) -> Value {
    json!({
        "rules": {"grace_delay_ms": 0},
        "apns": {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": EC_PRIVATE_PEM,
                 "topic": TOPIC, "base_url": base_url}
    })
}

fn app(base_url: &str) -> AppConfig {
    serde_json::from_value(app_document(base_url)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Through a hub.

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

// ---------------------------------------------------------------------------------------------
// The channel on its own.

fn device(token: &str, channel: DeviceChannel, registered: OffsetDateTime) -> Device {
    Device {
        id: DeviceId::parse(format!("dev-{token}")).unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        user_id: UserId::parse("visitor-1").unwrap(),
        channel,
        token: token.to_string(),
        subscription: None,
        platform: Platform::Ios,
        locale: None,
        installation_id: None,
        created_at: registered,
        updated_at: registered,
    }
}

fn delivery(id: &str, device: Device, kind: PushKind, body: &str, now: OffsetDateTime) -> Delivery {
    let tenant = TenantId::parse("default").unwrap();
    Delivery {
        id: id.to_string(),
        notification_id: format!("ntf-{id}"),
        tenant_id: tenant.clone(),
        app_id: device.app_id.clone(),
        channel: device.channel.as_str().to_string(),
        push: Push {
            kind,
            tenant_id: tenant,
            app_id: device.app_id.clone(),
            user_id: device.user_id.clone(),
            conversation_id: Some(ConversationId::parse("c1").unwrap()),
            position: Some(1),
            event_id: None,
            event_at: None,
            title: (!kind.is_silent()).then(|| "New message from Ann".to_string()),
            body: (!kind.is_silent()).then(|| body.to_string()),
            lines: vec![],
            sender: None,
            message_count: 1,
            unread: 1,
            badge: 1,
            call_id: None,
            missed_calls: 0,
            collapse_key: "conv:c1".into(),
            high_priority: !kind.is_silent(),
            data: Default::default(),
            created_at: now,
            expires_at: now + time::Duration::hours(1),
        },
        target: Target::Device { device },
        attempt: 1,
    }
}

/// A message delivery to an alert token registered a day ago.
fn message(id: &str, token: &str) -> Delivery {
    let now = OffsetDateTime::now_utc();
    delivery(
        id,
        device(token, DeviceChannel::Apns, now - time::Duration::days(1)),
        PushKind::NewMessage,
        "Hello",
        now,
    )
}

fn channel_with(clock: Arc<dyn Clock>, options: ApnsOptions) -> Arc<ApnsChannel> {
    Arc::new(ApnsChannel::new(clock, options))
}

fn channel() -> Arc<ApnsChannel> {
    channel_with(Arc::new(SystemClock), ApnsOptions::default())
}

fn delivered(outcome: &DeliveryOutcome) -> bool {
    matches!(outcome, DeliveryOutcome::Delivered { .. })
}

#[tokio::test]
async fn apns_reasons_through_the_fake_reach_the_right_outcome() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    type Expect = fn(&DeliveryOutcome) -> bool;
    let cases: Vec<(Reply, Expect)> = vec![
        (
            Reply::Ok,
            |o| matches!(o, DeliveryOutcome::Delivered { provider_id: Some(id) } if id.len() == 36),
        ),
        (
            Reply::bad_device_token(),
            |o| matches!(o, DeliveryOutcome::InvalidTarget { reason } if reason.contains("BadDeviceToken")),
        ),
        (Reply::reason(400, "DeviceTokenNotForTopic"), |o| {
            matches!(o, DeliveryOutcome::InvalidTarget { .. })
        }),
        (
            Reply::TooManyRequests {
                retry_after_s: Some(7),
            },
            |o| {
                matches!(
                    o,
                    DeliveryOutcome::Retryable {
                        after_ms: Some(7000),
                        status: Some(429),
                        ..
                    }
                )
            },
        ),
        (Reply::internal_server_error(), |o| {
            matches!(
                o,
                DeliveryOutcome::Retryable {
                    status: Some(500),
                    ..
                }
            )
        }),
        (Reply::service_unavailable(), |o| {
            matches!(
                o,
                DeliveryOutcome::Retryable {
                    status: Some(503),
                    ..
                }
            )
        }),
        (
            Reply::reason(400, "BadCollapseId"),
            |o| matches!(o, DeliveryOutcome::Permanent { status: Some(400), reason } if reason.contains("BadCollapseId")),
        ),
        (Reply::reason(403, "Forbidden"), |o| {
            matches!(
                o,
                DeliveryOutcome::Permanent {
                    status: Some(403),
                    ..
                }
            )
        }),
        (Reply::reason(413, "PayloadTooLarge"), |o| {
            matches!(
                o,
                DeliveryOutcome::Permanent {
                    status: Some(413),
                    ..
                }
            )
        }),
    ];
    for (i, (reply, expected)) in cases.into_iter().enumerate() {
        let token = format!("0a{i:02}");
        fake.script(&token, vec![reply.clone()]);
        let outcome = ch.deliver(&message(&format!("d{i}"), &token), &app).await;
        assert!(expected(&outcome), "{reply:?} → {outcome:?}");
    }
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_sends_share_one_provider_token() {
    let fake = FakeApns::start().await;
    let app = Arc::new(app(&fake.url()));
    let ch = channel();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (ch, app) = (ch.clone(), app.clone());
        sends.spawn(async move {
            ch.deliver(&message(&format!("d{i}"), &format!("ab{i:02}")), &app)
                .await
        });
    }
    while let Some(outcome) = sends.join_next().await {
        assert!(delivered(&outcome.unwrap()));
    }
    assert_eq!(ch.signings(), 1);
    let requests = fake.requests();
    assert_eq!(requests.len(), 16);
    assert!(requests.iter().all(|r| r.jwt == requests[0].jwt));
}

#[tokio::test]
async fn expired_provider_token_answers_re_sign_only_a_token_twenty_minutes_old() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let ch = channel_with(clock.clone(), ApnsOptions::default());
    let send = |id: &str| {
        let (ch, app, d) = (ch.clone(), app.clone(), message(id, "abcd"));
        async move { ch.deliver(&d, &app).await }
    };
    let expired = || fake.script("abcd", vec![Reply::reason(403, "ExpiredProviderToken")]);

    assert!(delivered(&send("d1").await));
    expired();
    assert!(matches!(
        send("d2").await,
        DeliveryOutcome::Retryable {
            status: Some(403),
            ..
        }
    ));
    clock.advance(time::Duration::minutes(19));
    expired();
    assert!(!delivered(&send("d3").await));
    assert!(delivered(&send("d4").await));
    assert_eq!(ch.signings(), 1, "a token younger than 20 minutes is kept");

    clock.advance(time::Duration::minutes(1));
    expired();
    assert!(!delivered(&send("d5").await));
    assert!(delivered(&send("d6").await));
    assert_eq!(ch.signings(), 2, "a 20-minute-old token is replaced");

    // A storm of expiry answers right after a refresh changes nothing.
    for i in 0..5 {
        expired();
        assert!(!delivered(&send(&format!("s{i}")).await));
    }
    assert!(delivered(&send("d7").await));
    assert_eq!(ch.signings(), 2);

    clock.advance(time::Duration::minutes(40));
    assert!(delivered(&send("d8").await));
    assert_eq!(ch.signings(), 3, "refreshed after 40 minutes");
    let jwts: std::collections::BTreeSet<String> =
        fake.requests().into_iter().map(|r| r.jwt).collect();
    assert_eq!(jwts.len(), 3);
    assert!(
        fake.rejections().is_empty(),
        "never TooManyProviderTokenUpdates: {:?}",
        fake.rejections()
    );
}

#[tokio::test]
async fn a_ten_kilobyte_message_is_cut_to_fit_on_a_character_boundary() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    let text = "Grüße 😀 \"quoted\" ".repeat(500);
    assert!(text.len() > 10_000);
    let now = OffsetDateTime::now_utc();
    let alert = delivery(
        "d1",
        device("abcd", DeviceChannel::Apns, now),
        PushKind::NewMessage,
        &text,
        now,
    );
    let mut voip = delivery(
        "d2",
        device("dcba", DeviceChannel::ApnsVoip, now),
        PushKind::IncomingCall,
        &text,
        now,
    );
    voip.push.call_id = Some("call-1".into());
    assert!(delivered(&ch.deliver(&alert, &app).await));
    assert!(delivered(&ch.deliver(&voip, &app).await));
    let requests = fake.requests();
    for (request, limit, body) in [
        (
            &requests[0],
            4096,
            &requests[0].payload["aps"]["alert"]["body"],
        ),
        (&requests[1], 5120, &requests[1].payload["herald"]["body"]),
    ] {
        assert!(
            request.raw.len() <= limit,
            "{} > {limit}",
            request.raw.len()
        );
        assert!(request.raw.len() > limit - 8, "cut no more than needed");
        let body = body.as_str().unwrap();
        assert!(body.ends_with('…'));
        assert!(text.starts_with(body.trim_end_matches('…')));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sends_all_succeed_and_never_exceed_the_servers_two_streams() {
    let fake = FakeApns::builder().max_concurrent_streams(2).start().await;
    fake.set_latency(Duration::from_millis(50));
    let app = Arc::new(app(&fake.url()));
    let ch = channel();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (ch, app) = (ch.clone(), app.clone());
        sends.spawn(async move {
            ch.deliver(&message(&format!("d{i}"), &format!("cd{i:02}")), &app)
                .await
        });
    }
    while let Some(outcome) = sends.join_next().await {
        let outcome = outcome.unwrap();
        assert!(delivered(&outcome), "{outcome:?}");
    }
    assert_eq!(fake.requests().len(), 20);
    assert_eq!(fake.max_in_flight(), 2, "multiplexed, within the limit");
    assert_eq!(fake.connections(), 1);
    assert_eq!(
        fake.streams_opened(),
        20,
        "no stream over the limit (refused and sent again)"
    );
}

#[tokio::test]
async fn a_dead_upstream_fails_fast_as_retryable_and_a_restarted_one_is_used_again() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    assert!(delivered(&ch.deliver(&message("d1", "abcd"), &app).await));
    fake.stop().await;
    let started = Instant::now();
    let outcome = ch.deliver(&message("d2", "abcd"), &app).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Retryable { status: None, .. }),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "fails fast: {:?}",
        started.elapsed()
    );
    fake.restart().await;
    let outcome = ch.deliver(&message("d3", "abcd"), &app).await;
    assert!(delivered(&outcome), "{outcome:?}");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_stalled_request_times_out_as_retryable_and_the_connection_stays_usable() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel_with(
        Arc::new(SystemClock),
        ApnsOptions {
            request_timeout: Duration::from_millis(500),
            ..ApnsOptions::default()
        },
    );
    fake.script("abcd", vec![Reply::Stall]);
    let started = Instant::now();
    let outcome = ch.deliver(&message("d1", "abcd"), &app).await;
    assert!(
        matches!(&outcome, DeliveryOutcome::Retryable { reason, .. } if reason.contains("timed out")),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(delivered(&ch.deliver(&message("d2", "abcd"), &app).await));
    assert_eq!(fake.connections(), 1);
}

#[tokio::test]
async fn after_goaway_the_next_request_succeeds_on_a_new_connection() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    assert!(delivered(&ch.deliver(&message("d1", "abcd"), &app).await));

    // A GOAWAY between requests: the pool opens a new connection.
    fake.goaway_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(delivered(&ch.deliver(&message("d2", "abcd"), &app).await));

    // A GOAWAY with 503 Shutdown in answer to a request: retryable, then delivered.
    fake.script("abcd", vec![Reply::GoAway]);
    let outcome = ch.deliver(&message("d3", "abcd"), &app).await;
    assert!(
        matches!(&outcome, DeliveryOutcome::Retryable { status: Some(503), reason, .. } if reason.contains("Shutdown")),
        "{outcome:?}"
    );
    assert!(delivered(&ch.deliver(&message("d3", "abcd"), &app).await));
    let connections: Vec<u64> = fake.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [1, 2, 2, 3]);
}

#[tokio::test]
async fn over_tls_a_trusted_self_signed_certificate_works_and_an_untrusted_one_does_not() {
    let fake = FakeApns::builder().tls().start().await;
    assert!(fake.url().starts_with("https://"));
    let app = app(&fake.url());
    let trusting = channel_with(
        Arc::new(SystemClock),
        ApnsOptions {
            trusted_roots_pem: vec![fake.certificate_pem().unwrap().as_bytes().to_vec()],
            ..ApnsOptions::default()
        },
    );
    let outcome = trusting.deliver(&message("d1", "abcd"), &app).await;
    assert!(delivered(&outcome), "{outcome:?}");
    let outcome = channel().deliver(&message("d2", "abcd"), &app).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Retryable { status: None, .. }),
        "{outcome:?}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn pyjwt_verifies_the_provider_token() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    assert!(delivered(
        &channel().deliver(&message("d1", "abcd"), &app).await
    ));
    let jwt = fake.requests()[0].jwt.clone();
    let script = r#"
import json, sys, time, jwt
given = json.load(sys.stdin)
header = jwt.get_unverified_header(given["jwt"])
claims = jwt.decode(given["jwt"], given["public_key"], algorithms=["ES256"],
                    issuer=given["team_id"], options={"require": ["iss", "iat"]})
assert abs(time.time() - claims["iat"]) < 600, claims
print(json.dumps({"alg": header["alg"], "kid": header["kid"], "iss": claims["iss"]}))
"#;
    let input = json!({"jwt": jwt, "public_key": EC_PUBLIC_PEM, "team_id": TEAM_ID});
    let out = herald_testkit::python::run(script, input.to_string().as_bytes());
    let verified: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        verified,
        json!({"alg": "ES256", "kid": KEY_ID, "iss": TEAM_ID})
    );
}

#[tokio::test]
async fn herald_push_test_sends_one_push_through_the_apps_credentials_and_prints_the_answer() {
    let fake = FakeApns::builder().topic(TOPIC).start().await;
    let hub = TestHub::start().await;
    let (status, body) = hub
        .put("/v1/apps/chat", &hub.key, app_document(&fake.url()))
        .await;
    assert_eq!(status, 201, "{body}");
    let user = hub.token("visitor-1").await;
    let (status, device) = hub
        .post(
            "/v1/me/devices",
            &user,
            json!({"app_id": "chat", "channel": "apns", "token": "abcd0001", "platform": "ios"}),
        )
        .await;
    assert_eq!(status, 201, "{device}");
    let device_id = device["id"].as_str().unwrap().to_string();
    let data = hub.data_dir().to_path_buf();
    // The fake runs on this runtime: the binary is awaited, never waited for by blocking.
    let run = |device: &str| {
        let (device, data) = (device.to_string(), data.clone());
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
                .args([
                    "push", "test", "--app", "chat", "--device", &device, "--data",
                ])
                .arg(&data)
                .output()
                .await
                .expect("herald runs");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };

    let (ok, stdout, stderr) = run(&device_id).await;
    assert!(ok, "{stdout}\n{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    let request = fake.wait_for(1).await.remove(0);
    assert_eq!(request.token, "abcd0001");
    assert_eq!(request.payload["aps"]["alert"]["title"], "Herald test push");
    assert_eq!(printed["result"]["outcome"], "delivered");
    assert_eq!(printed["answer"]["status"], 200);
    assert_eq!(
        printed["answer"]["apns_id"].as_str(),
        request.header("apns-id")
    );
    assert_eq!(
        printed["result"]["provider_id"].as_str(),
        request.header("apns-id")
    );
    assert_eq!(
        printed["endpoint"],
        format!("apns:{}:{TEAM_ID}", fake.url())
    );

    fake.script("abcd0001", vec![Reply::bad_device_token()]);
    let (ok, stdout, stderr) = run(&device_id).await;
    assert!(!ok);
    assert!(stderr.contains("not delivered"), "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["result"]["outcome"], "invalid_target");
    assert_eq!(printed["answer"]["status"], 400);
    assert_eq!(printed["answer"]["reason"], "BadDeviceToken");
    assert!(
        printed["result"]["reason"]
            .as_str()
            .unwrap()
            .contains("400 BadDeviceToken")
    );
    let (ok, _, stderr) = run("no-such-device").await;
    assert!(!ok);
    assert!(stderr.contains("no device"), "{stderr}");
}
