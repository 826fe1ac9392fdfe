//! The Matrix push gateway (`POST /_matrix/push/v1/notify`) as a homeserver uses it, through
//! HTTP, against the fake APNs and FCM and the `web-push-testing` peer. Files: `stories.rs`
//! (a message per platform, `event_id_only`, priorities, a homeserver's retries),
//! `failures.rs` (dead pushkeys, unknown and ambiguous app ids, provider 5xx within the
//! budget), `bad_input.rs` (Matrix errors, nothing sent). This file holds the gateway they
//! share: one app `element` serving three Matrix app ids, one per provider.

mod bad_input;
mod failures;
mod stories;

use base64::Engine;
use herald_channels::webpush::generate_vapid_keys;
use herald_testkit::TestHub;
use herald_testkit::fake_apns::{FakeApns, KEY_ID, TEAM_ID};
use herald_testkit::fake_fcm::FakeFcm;
use herald_testkit::keys::EC_PRIVATE_PEM;
use herald_testkit::peers::webpush::PushService;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOPIC: &str = "im.vector.app";
const IOS: &str = "im.vector.app.ios";
const ANDROID: &str = "im.vector.app.android";
const WEB: &str = "im.vector.app.web";

struct Gateway {
    hub: TestHub,
    apns: FakeApns,
    fcm: FakeFcm,
    vapid_public: String,
}

/// `element`'s app document: APNs, FCM and Web Push sections, and the three Matrix app ids.
fn element(apns: &FakeApns, fcm: &FakeFcm, public: &str, private: &str) -> Value {
    json!({
        "apns": {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": EC_PRIVATE_PEM,
                 "topic": TOPIC, "base_url": apns.url()},
        "fcm": {"service_account": fcm.service_account(), "base_url": fcm.url()},
        "webpush": {"vapid_public_key": public, "vapid_private_key": private, "subject": "mailto:ops@example.com"},
        "matrix": {"app_ids": {
            IOS: {"channel": "apns"},
            ANDROID: {"channel": "fcm"},
            WEB: {"channel": "webpush"},
        }}
    })
}

impl Gateway {
    async fn start() -> Gateway {
        Gateway::with_budget(10_000).await
    }

    /// A hub whose `/notify` may take `budget_ms`; loopback open to outbound calls (the Web
    /// Push peer lives there).
    async fn with_budget(budget_ms: u64) -> Gateway {
        let apns = FakeApns::builder().topic(TOPIC).start().await;
        let fcm = FakeFcm::start().await;
        let hub = TestHub::builder()
            .configure(|c| {
                c.matrix.budget_ms = budget_ms;
                c.outbound.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
            })
            .start()
            .await;
        let (public, private) = generate_vapid_keys();
        let (status, body) = hub
            .put(
                "/v1/apps/element",
                &hub.key,
                element(&apns, &fcm, &public, &private),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Gateway {
            hub,
            apns,
            fcm,
            vapid_public: public,
        }
    }

    /// What a homeserver does: POST the notification, no credentials.
    async fn notify(&self, notification: Value) -> (StatusCode, Value) {
        self.hub
            .call(
                Method::POST,
                "/_matrix/push/v1/notify",
                None,
                Some(json!({ "notification": notification })),
            )
            .await
    }

    /// A Web Push subscription at the peer, as a Matrix web client registers it: the pushkey
    /// is its `p256dh`, `data` carries the endpoint and `auth`.
    async fn web_device(&self, peer: &PushService, data: Value) -> (Value, Value) {
        let subscription = peer.subscribe(&self.vapid_public).await;
        let mut pusher_data =
            json!({"endpoint": subscription["endpoint"], "auth": subscription["keys"]["auth"]});
        if let (Value::Object(d), Value::Object(extra)) = (&mut pusher_data, data) {
            d.extend(extra);
        }
        let device =
            json!({"app_id": WEB, "pushkey": subscription["keys"]["p256dh"], "data": pusher_data});
        (device, subscription)
    }
}

/// An APNs pushkey as Matrix iOS clients upload it (base64 of the token), and the hex token
/// APNs must see.
fn ios_pushkey(seed: u8) -> (String, String) {
    let token: Vec<u8> = (0..32).map(|i| seed.wrapping_add(i)).collect();
    (
        base64::engine::general_purpose::STANDARD.encode(&token),
        hex::encode(&token),
    )
}

/// Sygnal's test notification (`tests/testutils.py`, `_make_dummy_notification`).
fn message(devices: Value) -> Value {
    json!({
        "id": "$3957tyerfgewrf384",
        "room_id": "!slw48wfj34rtnrf:example.com",
        "event_id": "$qTOWWTEL48yPm3uT-gdNhFcoHxfKbZuqRVnnWWSkGBs",
        "type": "m.room.message",
        "sender": "@exampleuser:matrix.org",
        "sender_display_name": "Major Tom",
        "room_name": "Mission Control",
        "room_alias": "#exampleroom:matrix.org",
        "prio": "high",
        "content": {"msgtype": "m.text", "body": "I'm floating in a most peculiar way.", "other": 1},
        "counts": {"unread": 2, "missed_calls": 1},
        "devices": devices,
    })
}

fn rejected(body: &Value) -> Vec<&str> {
    body["rejected"]
        .as_array()
        .unwrap_or_else(|| panic!("no rejected list: {body}"))
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}
