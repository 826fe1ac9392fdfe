use std::collections::BTreeMap;

use herald_engine::app::{ConnectorPreset, ConnectorSection};
use herald_engine::device::Device;
use herald_engine::ids::{AppId, TenantId, UserId};
use herald_engine::push::{Push, PushKind, PushSender};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::request::{self, headers, scrub};
use super::*;

fn device(token: &str) -> Device {
    serde_json::from_value(json!({
        "id": "dev_1", "app_id": "chat", "user_id": "visitor-1", "channel": "connector",
        "token": token, "platform": "ios", "locale": "en",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    }))
    .unwrap()
}

fn delivery(kind: PushKind, device: &Device) -> Delivery {
    let tenant = TenantId::parse("acme").unwrap();
    let app = AppId::parse("chat").unwrap();
    let at = OffsetDateTime::from_unix_timestamp(1_710_759_624).unwrap()
        + time::Duration::milliseconds(481);
    Delivery {
        id: "dlv_1".into(),
        notification_id: "ntf_1".into(),
        tenant_id: tenant.clone(),
        app_id: app.clone(),
        channel: "connector".into(),
        target: Target::Device {
            device: device.clone(),
        },
        push: Push {
            kind,
            tenant_id: tenant,
            app_id: app,
            user_id: UserId::parse("visitor-1").unwrap(),
            conversation_id: Some(herald_engine::ids::ConversationId::parse("c1").unwrap()),
            position: Some(4),
            event_id: Some(herald_engine::ids::EventId::parse("m4").unwrap()),
            event_at: Some(at),
            title: (!kind.is_silent()).then(|| "New message from Ann".into()),
            body: (!kind.is_silent()).then(|| "Your order \"shipped\"".into()),
            lines: vec![],
            sender: Some(PushSender {
                id: UserId::parse("agent-7").unwrap(),
                role: herald_engine::participant::Role::Agent,
                name: Some("Ann".into()),
            }),
            message_count: 1,
            unread: 2,
            badge: 5,
            call_id: None,
            missed_calls: 0,
            collapse_key: "conv:c1".into(),
            high_priority: !kind.is_silent(),
            data: BTreeMap::new(),
            created_at: at,
            expires_at: at + time::Duration::hours(1),
            gateway: None,
            gms: None,
        },
        attempt: 1,
    }
}

fn section(preset: ConnectorPreset) -> ConnectorSection {
    ConnectorSection {
        callback_url: "https://push.example.com:8443/notify".into(),
        preset,
        template: None,
        hmac_secret: Some("s3cret".into()),
        auth_token: Some("auth-token".into()),
        headers: BTreeMap::new(),
        timeout_ms: None,
    }
}

fn rendered(preset: ConnectorPreset, kind: PushKind) -> Value {
    let device = device("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2In0.sig");
    let d = delivery(kind, &device);
    let s = section(preset);
    template::render(
        presets::template(preset, &d.push).unwrap(),
        &variables(&d, &device, &s),
    )
    .unwrap()
}

#[test]
fn the_sdk_adapter_shape_carries_the_alert_and_an_absolute_badge() {
    assert_eq!(
        rendered(ConnectorPreset::SdkAdapter, PushKind::NewMessage),
        json!({
            "authToken": "auth-token",
            "deviceToken": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2In0.sig",
            "payload": {
                "aps": {
                    "alert": {"title": "New message from Ann", "body": "Your order \"shipped\""},
                    "badge": 5,
                    "sound": "default",
                },
                "conversationId": "c1",
                "position": 4,
                "unread": 2,
                "kind": "new_message",
            },
        })
    );
}

#[test]
fn silent_kinds_have_content_available_and_no_alert() {
    for kind in [PushKind::Read, PushKind::RevokedCall] {
        let body = rendered(ConnectorPreset::SdkAdapter, kind);
        assert_eq!(
            body["payload"]["aps"],
            json!({"content-available": 1, "badge": 5})
        );
        assert_eq!(body["payload"]["kind"], kind.as_str());
    }
}

#[test]
fn the_push_proxy_shape_is_the_five_metadata_fields() {
    assert_eq!(
        rendered(ConnectorPreset::PushProxy, PushKind::NewMessage),
        json!({
            "eventId": "m4",
            "conversationId": "c1",
            "customerId": "visitor-1",
            "sessionId": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2In0.sig",
            "eventDate": "2024-03-18T11:00:24.481Z",
        })
    );
}

#[test]
fn the_signature_is_lowercase_hex_hmac_sha256_of_event_id_and_session_id() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert_eq!(
        signature("Jefe", "what do ya want ", "for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn app_headers_are_checked_and_reserved_ones_dropped() {
    let mut s = section(ConnectorPreset::Custom);
    s.headers.insert("Authorization".into(), "Bearer x".into());
    s.headers.insert("Content-Type".into(), "text/plain".into());
    let map = headers(&s).unwrap();
    assert_eq!(map.len(), 1);
    assert_eq!(map["authorization"], "Bearer x");
    s.headers.insert("bad name".into(), "v".into());
    assert!(headers(&s).unwrap_err().contains("bad name"));
    s.headers.remove("bad name");
    s.headers.insert("X-Ok".into(), "line\nbreak".into());
    let err = headers(&s).unwrap_err();
    assert!(!err.contains("break"), "values are never quoted: {err}");
}

#[test]
fn the_endpoint_is_the_tenant_app_and_callback_host() {
    let channel = ConnectorChannel::new(Outbound::new(outbound::Guard::default()), 15_000);
    let device = device("tok");
    let d = delivery(PushKind::NewMessage, &device);
    let app = AppConfig {
        connector: Some(section(ConnectorPreset::PushProxy)),
        ..AppConfig::default()
    };
    assert_eq!(
        channel.endpoint_key(&d, &app),
        "connector:acme:chat:push.example.com:8443"
    );
}

#[test]
fn secrets_and_the_token_are_scrubbed_from_reasons() {
    let device = device("tok-abcdef");
    let s = section(ConnectorPreset::Custom);
    let reason = scrub("auth-token s3cret tok-abcdef".to_string(), &device, &s);
    assert_eq!(reason, "******** ******** <device token>");
}

#[test]
fn the_gms_preset_sends_gms_http_push_and_names_what_it_has_no_content_for() {
    let device = device("gms-device-token");
    let s = section(ConnectorPreset::Gms);
    let mut d = delivery(PushKind::NewMessage, &device);
    d.push.gms = serde_json::from_value(json!({
        "message": "New message from Agent", "serviceId": "c1",
        "lastTranscript": [{"Message.Text": "Your order \"shipped\""}],
    }))
    .unwrap();
    let (_, body) = request::call(&d, &device, &s).unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"authToken":"auth-token","deviceToken":"gms-device-token","message":{"lastTranscript":[{"Message.Text":"Your order \"shipped\""}],"message":"New message from Agent","serviceId":"c1"},"tag":"chat.newagentmessage"}"#
    );
    let read = delivery(PushKind::Read, &device);
    let (_, body) = request::call(&read, &device, &s).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"authToken": "auth-token", "deviceToken": "gms-device-token",
            "kind": "read", "serviceId": "c1", "position": 4})
    );
}
