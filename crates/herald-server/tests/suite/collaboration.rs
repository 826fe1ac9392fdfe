//! The collaboration-server role (issue: Web Push and email, item 6), end to end: a new message
//! reaches the phone (APNs, FCM) and the browser (Web Push, decrypted by `web-push-testing`)
//! at once and the mailbox later as a digest (a real SMTP server, aiosmtpd); a read before the
//! digest sends read pushes and no email; calls push and email, revoke on cancel with a missed
//! call, revoke only on decline; a browser that stops answering health checks is told to
//! resubscribe.

use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::ManualClock;
use herald_engine::push::PushKind;
use herald_testkit::peers::{PushService, SmtpPeer};
use herald_testkit::{PATIENCE, RecordingChannel, TestHub};
use serde_json::{Value, json};

struct Scene {
    hub: TestHub,
    clock: Arc<ManualClock>,
    phone: Arc<RecordingChannel>,
    browser: PushService,
    subscription: Value,
    mailbox: SmtpPeer,
    seq: u32,
}

impl Scene {
    async fn new() -> Scene {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let phone = RecordingChannel::new();
        let hub = TestHub::builder()
            .clock(clock.clone())
            .configure(|c| c.outbound.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()])
            .channel("apns", phone.clone())
            .channel("fcm", phone.clone())
            .start()
            .await;
        let mailbox = SmtpPeer::plain().await;
        let app = json!({
            "rules": {"grace_delay_ms": 0, "email_delay_ms": 600000},
            "webpush": {"subject": "mailto:ops@example.com", "health_check_interval_s": 3600, "health_check_timeout_s": 60},
            "smtp": {"host": "127.0.0.1", "port": mailbox.port, "security": "none", "from": "Collab <collab@example.com>"},
        });
        let (status, app) = hub.put("/v1/apps/collab", &hub.key, app).await;
        assert_eq!(status, 201, "{app}");
        for (user, role) in [("visitor-1", "visitor"), ("agent-7", "agent")] {
            hub.join("c1", user, role).await;
        }
        hub.put(
            "/v1/users/visitor-1/preferences",
            &hub.key,
            json!({"email": "vic@example.com"}),
        )
        .await;
        let browser = PushService::start().await;
        let token = hub.token("visitor-1").await;
        let (_, key) = hub.get("/v1/me/apps/collab/webpush", &token).await;
        let subscription = browser
            .subscribe(key["vapid_public_key"].as_str().unwrap())
            .await;
        let devices = [
            json!({"app_id": "collab", "channel": "fcm", "token": "fcm:android-1", "platform": "android"}),
            json!({"app_id": "collab", "channel": "apns", "token": "aaaa0001", "platform": "ios"}),
            json!({"app_id": "collab", "channel": "webpush", "platform": "web",
                   "subscription": {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}}),
        ];
        for device in devices {
            let (status, body) = hub.post("/v1/me/devices", &token, device).await;
            assert_eq!(status, 201, "{body}");
        }
        Scene {
            hub,
            clock,
            phone,
            browser,
            subscription,
            mailbox,
            seq: 0,
        }
    }

    async fn post(&mut self, event: Value) -> u64 {
        let position = self.hub.events(event).await["position"].as_u64().unwrap();
        self.hub.settle_engine(self.now()).await;
        position
    }

    async fn say(&mut self, text: &str) -> u64 {
        self.seq += 1;
        let id = format!("m{}", self.seq);
        self.post(json!({"event_id": id, "conversation_id": "c1", "type": "message.created", "occurred_at": "2026-11-23T10:00:00Z",
            "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text}))
            .await
    }

    async fn call(&mut self, kind: &str, call_id: &str, by: Option<&str>) {
        self.seq += 1;
        let mut event = json!({"event_id": format!("k{}", self.seq), "conversation_id": "c1", "type": kind,
            "occurred_at": "2026-11-23T10:00:00Z", "call_id": call_id});
        if kind == "call.ringing" {
            event["caller"] = json!({"id": "agent-7", "role": "agent", "name": "Ann"});
            event["callees"] = json!(["visitor-1"]);
        }
        if let Some(by) = by {
            event["by"] = json!(by);
        }
        self.post(event).await;
    }

    fn now(&self) -> time::OffsetDateTime {
        use herald_engine::clock::Clock;
        self.clock.now()
    }

    fn advance(&self, by: time::Duration) {
        self.clock.advance(by);
        self.hub.state.engine.wake();
    }

    /// Kinds the phone received (APNs and FCM deliveries), in order.
    fn phone_kinds(&self) -> Vec<PushKind> {
        self.phone
            .deliveries()
            .iter()
            .map(|d| d.push.kind)
            .collect()
    }

    /// The browser's decrypted pushes (without health checks), in order.
    async fn browser_pushes(&self, at_least: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let pushes: Vec<Value> = self
                .browser
                .messages(&self.subscription)
                .await
                .iter()
                .map(|m| serde_json::from_str::<Value>(m).unwrap())
                .filter(|p| p["kind"] != "health_check")
                .collect();
            if pushes.len() >= at_least {
                return pushes;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the browser got {} of {at_least} pushes",
                pushes.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn subject(mail: &Value) -> &str {
    mail["headers"]["Subject"].as_str().unwrap()
}

#[tokio::test]
async fn the_collaboration_server_role_pushes_emails_revokes_and_asks_to_resubscribe() {
    let mut s = Scene::new().await;

    // A new message reaches the phone and the browser at once; the email digest comes later.
    s.say("Your document was shared with you").await;
    s.phone.wait_for(2).await;
    assert_eq!(
        s.phone_kinds(),
        [PushKind::NewMessage, PushKind::NewMessage]
    );
    let browser = s.browser_pushes(1).await;
    assert_eq!(browser[0]["kind"], "new_message");
    assert_eq!(browser[0]["body"], "Your document was shared with you");
    assert_eq!(browser[0]["badge"], 1);
    s.mailbox.nothing_more().await;
    s.advance(time::Duration::minutes(10));
    let digest = s.mailbox.next().await;
    assert_eq!(digest["rcpt_tos"], json!(["vic@example.com"]));
    assert!(
        digest["text"]
            .as_str()
            .unwrap()
            .contains("Your document was shared with you"),
        "{digest}"
    );

    // Read before the digest: read pushes everywhere, no email.
    let position = s.say("Are you there?").await;
    let token = s.hub.token("visitor-1").await;
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    s.hub.settle_engine(s.now()).await;
    let browser = s.browser_pushes(3).await;
    assert_eq!(browser[2]["kind"], "read");
    assert_eq!(
        browser[2]["tag"], browser[1]["tag"],
        "the read replaces what the new message showed"
    );
    s.phone.wait_for(6).await;
    assert_eq!(&s.phone_kinds()[4..], [PushKind::Read, PushKind::Read]);
    s.advance(time::Duration::minutes(10));
    s.hub.settle_engine(s.now()).await;
    s.mailbox.nothing_more().await;

    // An incoming call: pushed and emailed; the caller cancels: revoked + missed push + email.
    s.call("call.ringing", "call-1", None).await;
    let incoming = s.mailbox.next().await;
    assert!(
        subject(&incoming).to_lowercase().contains("call"),
        "{incoming}"
    );
    s.call("call.cancelled", "call-1", Some("agent-7")).await;
    s.phone.wait_for(12).await;
    assert_eq!(
        &s.phone_kinds()[6..],
        [
            PushKind::IncomingCall,
            PushKind::IncomingCall,
            PushKind::RevokedCall,
            PushKind::RevokedCall,
            PushKind::MissedCall,
            PushKind::MissedCall
        ]
    );
    let missed = s.mailbox.next().await;
    assert!(
        subject(&missed).to_lowercase().contains("missed"),
        "{missed}"
    );

    // The callee declines the next call: revoked only — no missed call, no missed-call email.
    s.call("call.ringing", "call-2", None).await;
    let _incoming_again = s.mailbox.next().await;
    s.call("call.declined", "call-2", Some("visitor-1")).await;
    s.phone.wait_for(16).await;
    assert_eq!(
        &s.phone_kinds()[12..],
        [
            PushKind::IncomingCall,
            PushKind::IncomingCall,
            PushKind::RevokedCall,
            PushKind::RevokedCall
        ]
    );
    s.mailbox.nothing_more().await;
    let kinds: Vec<String> = s
        .browser_pushes(7)
        .await
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "new_message",
            "new_message",
            "read",
            "incoming_call",
            "revoked_call",
            "missed_call",
            "incoming_call",
            "revoked_call"
        ],
        "the declined call left no missed call"
    );

    // The browser never acknowledges its health checks: the next live session is told.
    s.advance(time::Duration::seconds(61));
    let tenant = herald_engine::ids::TenantId::parse("default").unwrap();
    let user = herald_engine::ids::UserId::parse("visitor-1").unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while s
        .hub
        .state
        .notify
        .unhealthy_devices(&tenant, &user)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the missed health check was never noticed"
        );
        s.hub.state.engine.wake();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut live = s.hub.live("visitor-1").await;
    let frame = live.next().await;
    assert_eq!(frame["type"], "resubscribe", "{frame}");
    assert_eq!(frame["app_id"], "collab");
}
