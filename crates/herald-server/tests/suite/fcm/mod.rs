//! Files, through a hub: `notifications.rs` (Android tags, calls, the apns block for iOS),
//! `failures.rs` (dead and kept tokens, Retry-After), `payload.rs`; the channel on its own:
//! `errors.rs` (the error table), `access_token.rs` (fetch, refresh, PyJWT). This file holds the
//! story and the deliveries they share.
//!
//! The FCM channel against a fake FCM and token endpoint (`herald_testkit::fake_fcm`): end to
//! end through a hub (Android notifications with a per-conversation tag, data-only reads and
//! calls, the apns block for iOS, dead tokens and kept tokens, Retry-After, payload fitting),
//! and the channel on its own (the error table over real HTTP, one token fetch for sixteen
//! concurrent sends, the 401 refresh, the clock-driven refresh), the assertion checked by PyJWT.

mod access_token;
mod errors;
mod failures;
mod notifications;
mod payload;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_channels::fcm::{FcmChannel, FcmOptions};
use herald_engine::app::AppConfig;
use herald_engine::clock::{Clock, ManualClock};
use herald_engine::device::{Device, DeviceChannel, Platform};
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use herald_testkit::fake_fcm::{FakeFcm, FcmMessage};
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
// Through a hub (notifications.rs, failures.rs, payload.rs).

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

// ---------------------------------------------------------------------------------------------
// The channel on its own (errors.rs, access_token.rs).

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
            gateway: None,
            gms: None,
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
