//! The connector channel (SPEC §2.5): the customer's own push backend, called once per
//! `connector` device with a payload the customer agreed on.
//!
//! `POST connector.callback_url` with the body rendered from a payload template
//! ([`template`]): the `sdk_adapter` preset
//! (`{authToken, deviceToken, payload: {aps: {alert: {title, body}, badge, sound}, …}}`, a
//! silent `aps` for reads and revoked calls), the `push_proxy` preset (exactly
//! `{eventId, conversationId, customerId, sessionId, eventDate}`, metadata only), or the app's
//! own `template` (`custom`). Presets are templates too ([`presets`]): one code path.
//!
//! Variables: `device_token` (the device's token, opaque, passed through untouched),
//! `auth_token` (the app's `connector.auth_token`), `event_id` (the id of the event behind the
//! push; the notification id when there is none), `event_date` (RFC 3339; when that event was
//! recorded, else when the push was made), `conversation_id`, `customer_id` (the recipient's
//! user id), `session_id` (= the device token), `title`, `body`, `badge` (absolute), `unread`,
//! `message_count`, `missed_calls`, `kind`, `silent`, `position`, `call_id`, `sender_name`,
//! `data` (a map), `push` (the whole push), `notification_id`, `delivery_id` (stable across
//! retries: a de-duplication key), `app_id`, `platform`, `locale`. What a push lacks is `none`.
//!
//! Headers: the app's `connector.headers`, and `X-hmac` when `connector.hmac_secret` is set
//! (required by `push_proxy`): lowercase hex HMAC-SHA256(secret, event_id + session_id).
//! Time limit: the app's `connector.timeout_ms`, else the server's `outbound.timeout_ms`. The
//! answer is read by [`outbound::classify`]; a template that cannot be rendered is a permanent
//! failure with the reason. Logs never carry the token, the payload or the secrets.

pub mod presets;
pub mod template;

use std::time::Duration;

use async_trait::async_trait;
use herald_engine::app::{AppConfig, ConnectorSection};
use herald_engine::delivery::Channel;
use herald_engine::device::Device;
use herald_engine::push::{Delivery, DeliveryOutcome, Target};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use sha2::Sha256;

pub use template::validate_template;

use super::outbound::{self, Outbound};

/// Headers Herald sets itself; an app's `headers` cannot replace them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
];

pub struct ConnectorChannel {
    outbound: Outbound,
    default_timeout: Duration,
}

impl ConnectorChannel {
    /// `default_timeout_ms`: the server's `outbound.timeout_ms`, for apps without their own.
    pub fn new(outbound: Outbound, default_timeout_ms: u64) -> ConnectorChannel {
        ConnectorChannel {
            outbound,
            default_timeout: Duration::from_millis(default_timeout_ms),
        }
    }
}

fn permanent(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status: None,
    }
}

/// The variables a payload template is rendered with.
pub fn variables(delivery: &Delivery, device: &Device, section: &ConnectorSection) -> Value {
    let push = &delivery.push;
    let event_id = push
        .event_id
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_else(|| delivery.notification_id.clone());
    json!({
        "device_token": device.token,
        "auth_token": section.auth_token,
        "event_id": event_id,
        "event_date": herald_engine::event::rfc3339(push.event_at.unwrap_or(push.created_at)),
        "conversation_id": push.conversation_id,
        "customer_id": push.user_id,
        "session_id": device.token,
        "title": push.title,
        "body": push.body,
        "badge": push.badge,
        "unread": push.unread,
        "message_count": push.message_count,
        "missed_calls": push.missed_calls,
        "kind": push.kind.as_str(),
        "silent": push.kind.is_silent(),
        "position": push.position,
        "call_id": push.call_id,
        "sender_name": push.sender.as_ref().and_then(|s| s.name.clone()),
        "data": push.data,
        "push": push,
        "notification_id": delivery.notification_id,
        "delivery_id": delivery.id,
        "app_id": delivery.app_id,
        "platform": device.platform,
        "locale": device.locale,
    })
}

/// `X-hmac`: lowercase hex HMAC-SHA256 with the secret as key over `event_id + session_id`.
pub fn signature(secret: &str, event_id: &str, session_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(event_id.as_bytes());
    mac.update(session_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The app's headers (names and values checked; the values are never quoted in a reason).
fn headers(section: &ConnectorSection) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in &section.headers {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("connector header `{name}` is not a valid header name"))?;
        if RESERVED_HEADERS.contains(&parsed.as_str()) {
            continue;
        }
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            format!("the value of connector header `{name}` is not a valid header value")
        })?;
        value.set_sensitive(true);
        map.insert(parsed, value);
    }
    Ok(map)
}

/// Takes secrets and the token out of a reason that is stored and shown by the API.
fn scrub(mut reason: String, device: &Device, section: &ConnectorSection) -> String {
    let secrets = [
        section.auth_token.as_deref(),
        section.hmac_secret.as_deref(),
    ];
    for secret in secrets.into_iter().flatten().filter(|s| s.len() >= 4) {
        reason = reason.replace(secret, herald_engine::app::SECRET_MASK);
    }
    if device.token.len() >= 4 {
        reason = reason.replace(&device.token, "<device token>");
    }
    reason
}

/// The callback's host (and port, when the URL names one).
fn callback_host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => "-".to_string(),
        },
        Err(_) => "-".to_string(),
    }
}

fn label(outcome: &DeliveryOutcome) -> &'static str {
    match outcome {
        DeliveryOutcome::Delivered { .. } => "delivered",
        DeliveryOutcome::Retryable { .. } => "retryable",
        DeliveryOutcome::InvalidTarget { .. } => "invalid_target",
        DeliveryOutcome::Permanent { .. } => "permanent",
    }
}

#[async_trait]
impl Channel for ConnectorChannel {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        let Target::Device { device } = &delivery.target else {
            return permanent("the connector channel delivers to devices only");
        };
        let Some(section) = &app.connector else {
            return permanent("the app has no connector section");
        };
        let template = match presets::template(section.preset, delivery.push.kind) {
            Some(preset) => preset,
            None => match &section.template {
                Some(own) => own,
                None => return permanent("the custom connector preset needs a template"),
            },
        };
        let vars = variables(delivery, device, section);
        let body = match template::render(template, &vars) {
            Ok(body) => body,
            Err(e) => {
                tracing::info!(
                    tenant.id = %delivery.tenant_id,
                    app.id = %delivery.app_id,
                    delivery.id = %delivery.id,
                    at = %e.path,
                    "the connector payload template failed to render"
                );
                return permanent(scrub(
                    format!("the connector payload template failed to render: {e}"),
                    device,
                    section,
                ));
            }
        };
        let body = serde_json::to_vec(&body).expect("a JSON value always serialises");
        if body.len() > template::MAX_PAYLOAD_BYTES {
            return permanent(format!(
                "the rendered connector payload is {} bytes; at most {} are sent",
                body.len(),
                template::MAX_PAYLOAD_BYTES
            ));
        }
        let mut headers = match headers(section) {
            Ok(h) => h,
            Err(reason) => return permanent(reason),
        };
        if let Some(secret) = &section.hmac_secret {
            let event_id = vars["event_id"].as_str().unwrap_or_default();
            let mut value = HeaderValue::from_str(&signature(secret, event_id, &device.token))
                .expect("hex is a valid header value");
            value.set_sensitive(true);
            headers.insert("x-hmac", value);
        }
        let timeout = section
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.default_timeout);
        let outcome = match self
            .outbound
            .post_json(&section.callback_url, headers, body, timeout)
            .await
        {
            Ok(answer) => outbound::classify(&answer),
            Err(outcome) => outcome,
        };
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            app.id = %delivery.app_id,
            delivery.id = %delivery.id,
            attempt = delivery.attempt,
            outcome = label(&outcome),
            "connector call made"
        );
        outcome
    }

    fn endpoint_key(&self, delivery: &Delivery, app: &AppConfig) -> String {
        let host = app
            .connector
            .as_ref()
            .map(|c| callback_host(&c.callback_url))
            .unwrap_or_else(|| "-".to_string());
        format!(
            "connector:{}:{}:{host}",
            delivery.tenant_id, delivery.app_id
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use herald_engine::app::ConnectorPreset;
    use herald_engine::ids::{AppId, TenantId, UserId};
    use herald_engine::push::{Push, PushKind, PushSender};
    use time::OffsetDateTime;

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
            presets::template(preset, kind).unwrap(),
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
}
