use std::time::Duration;

use herald_engine::app::{AppConfig, ContentMode};
use herald_engine::device::Device;
use herald_engine::ids::{AppId, TenantId};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, Target};
use serde_json::{Value, json};

use super::outbound::{Guard, Outbound};
use super::*;

fn device(id: &str, channel: &str, token: &str) -> Value {
    json!({"id": id, "app_id": "chat", "user_id": "visitor-1", "channel": channel, "token": token,
        "platform": "ios", "locale": "en", "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"})
}

fn delivery(devices: Vec<Value>) -> Delivery {
    let push: Push = serde_json::from_value(json!({
        "kind": "new_message", "tenant_id": "default", "app_id": "chat", "user_id": "visitor-1",
        "conversation_id": "c1", "position": 4, "event_id": "m2", "title": "Ann", "body": "secret order details",
        "lines": [{"sender_name": "Ann", "text": "secret order details"}],
        "sender": {"id": "agent-7", "role": "agent", "name": "Ann"},
        "message_count": 2, "unread": 2, "badge": 3, "missed_calls": 0, "collapse_key": "conv:c1",
        "high_priority": true, "created_at": "2026-11-23T10:00:01Z", "expires_at": "2026-11-23T11:00:01Z"
    }))
    .unwrap();
    let devices: Vec<Device> = serde_json::from_value(Value::Array(devices)).unwrap();
    Delivery {
        id: "dlv_1".into(),
        notification_id: "ntf_1".into(),
        tenant_id: TenantId::parse("default").unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        channel: "webhook".into(),
        target: Target::Webhook {
            endpoint_id: "hooks".into(),
            devices,
        },
        push,
        attempt: 1,
    }
}

fn rendered(d: &Delivery, mode: ContentMode) -> Value {
    let Target::Webhook { devices, .. } = &d.target else {
        unreachable!()
    };
    serde_json::from_slice(&body::render(
        d,
        "push_notification.new_message",
        mode,
        devices,
    ))
    .unwrap()
}

#[test]
fn a_full_body_carries_recipient_counts_content_and_tokens() {
    let d = delivery(vec![device("dev_1", "apns", "aaaa0001")]);
    let body = rendered(&d, ContentMode::Full);
    assert_eq!(body["type"], "push_notification.new_message");
    assert_eq!(body["timestamp"], "2026-11-23T10:00:01Z");
    let data = &body["data"];
    assert_eq!(data["recipient"], json!({"user_id": "visitor-1"}));
    assert_eq!(
        (
            &data["conversation_id"],
            &data["position"],
            &data["event_id"]
        ),
        (&json!("c1"), &json!(4), &json!("m2"))
    );
    assert_eq!(
        (&data["unread"], &data["badge"], &data["message_count"]),
        (&json!(2), &json!(3), &json!(2))
    );
    assert_eq!(data["kind"], "new_message");
    assert_eq!(data["body"], "secret order details");
    assert_eq!(
        data["sender"],
        json!({"id": "agent-7", "role": "agent", "name": "Ann"})
    );
    assert_eq!(data["lines"][0]["text"], "secret order details");
    assert_eq!(
        data["devices"],
        json!([{"device_id": "dev_1", "channel": "apns", "platform": "ios", "token": "aaaa0001", "locale": "en"}])
    );
}

#[test]
fn a_metadata_only_body_has_no_text_at_all() {
    let d = delivery(vec![device("dev_1", "apns", "aaaa0001")]);
    let body = rendered(&d, ContentMode::MetadataOnly);
    let text = body.to_string();
    assert!(!text.contains("secret order details"), "{text}");
    assert!(!text.contains("Ann"), "{text}");
    for absent in ["title", "body", "lines", "sender"] {
        assert!(body["data"].get(absent).is_none(), "{absent}: {text}");
    }
    assert_eq!(body["data"]["badge"], 3);
    assert_eq!(body["data"]["devices"][0]["token"], "aaaa0001");
}

#[test]
fn a_webpush_device_carries_its_subscription() {
    let p256dh = format!("BA{}", "A".repeat(85));
    let mut web = device("dev_2", "webpush", "https://push.example/abc");
    web["subscription"] = json!({"endpoint": "https://push.example/abc", "keys": {"p256dh": p256dh, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}});
    let body = rendered(&delivery(vec![web]), ContentMode::Full);
    let d = &body["data"]["devices"][0];
    assert_eq!(d["subscription"]["endpoint"], "https://push.example/abc");
    assert!(d.get("token").is_none(), "{d}");
}

#[test]
fn a_body_stays_under_the_size_bound_by_dropping_devices_it_cannot_fit() {
    let devices = (0..20)
        .map(|i| device(&format!("dev_{i}"), "apns", &"a".repeat(4000)))
        .collect();
    let d = delivery(devices);
    let bytes = {
        let Target::Webhook { devices, .. } = &d.target else {
            unreachable!()
        };
        body::render(&d, "x", ContentMode::Full, devices)
    };
    assert!(bytes.len() <= MAX_BODY_BYTES, "{}", bytes.len());
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let kept = body["data"]["devices"].as_array().unwrap().len();
    assert!(kept >= 3, "as many as fit are kept: {kept}");
    assert_eq!(
        body["data"]["devices_omitted"].as_u64().unwrap() as usize + kept,
        20
    );
    assert!(body["data"].get("lines").is_none());
    assert_eq!(body["data"]["body"], "secret order details");
}

fn app(endpoints: Value) -> AppConfig {
    serde_json::from_value(json!({ "webhooks": endpoints })).unwrap()
}

fn channel() -> WebhookChannel {
    WebhookChannel::new(Outbound::new(Guard::default()), Duration::from_secs(1))
}

#[test]
fn each_endpoint_has_its_own_key() {
    let d = delivery(vec![]);
    assert_eq!(
        channel().endpoint_key(&d, &AppConfig::default()),
        "webhook:default:chat:hooks"
    );
}

#[tokio::test]
async fn a_removed_or_unsubscribed_endpoint_fails_permanently_without_a_call() {
    let d = delivery(vec![]);
    let outcome = channel().deliver(&d, &app(json!([]))).await;
    assert_eq!(
        outcome,
        DeliveryOutcome::Permanent {
            reason: "the webhook endpoint was removed".into(),
            status: None
        }
    );
    let only_calls = app(
        json!([{"id": "hooks", "url": "https://hooks.example/x", "events": ["push_notification.missed_call"], "secrets": ["whsec_AAECAw=="]}]),
    );
    let outcome = channel().deliver(&d, &only_calls).await;
    assert!(
        matches!(&outcome, DeliveryOutcome::Permanent { reason, .. } if reason.contains("no longer subscribes")),
        "{outcome:?}"
    );
    let bad_secret = app(
        json!([{"id": "hooks", "url": "https://hooks.example/x", "events": ["push_notification.new_message"], "secrets": ["whsec_AAECAw==", "whsec_!!"]}]),
    );
    let outcome = channel().deliver(&d, &bad_secret).await;
    assert!(
        matches!(&outcome, DeliveryOutcome::Permanent { reason, .. } if reason.contains("secrets[1]") && !reason.contains("!!")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_loopback_url_is_refused_before_any_connection() {
    let d = delivery(vec![]);
    let app = app(
        json!([{"id": "hooks", "url": "http://127.0.0.1:9/x", "events": ["push_notification.new_message"], "secrets": ["whsec_AAECAw=="]}]),
    );
    let outcome = channel().deliver(&d, &app).await;
    assert!(
        matches!(&outcome, DeliveryOutcome::Permanent { reason, status: None } if reason.contains("forbidden address")),
        "{outcome:?}"
    );
}

#[test]
fn a_gms_push_carries_gms_http_notification_as_it_is() {
    let mut d = delivery(vec![]);
    d.push.gms = serde_json::from_value(json!({
        "message": "New message from Agent", "serviceId": "c1",
        "lastTranscript": [{"Notice.Custom": "transferring you"}, {"Message.Text": "hello"}],
    }))
    .unwrap();
    let Target::Webhook { devices, .. } = &d.target else {
        unreachable!()
    };
    let bytes = body::render(
        &d,
        "push_notification.new_message",
        ContentMode::Full,
        devices,
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(r#""gms":{"message":{"lastTranscript":[{"Notice.Custom":"transferring you"},{"Message.Text":"hello"}],"message":"New message from Agent","serviceId":"c1"},"tag":"chat.newagentmessage"}"#),
        "{text}"
    );
}
