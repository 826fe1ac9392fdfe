//! One connector call: the variables a payload template is rendered with, the body, and the
//! headers (the app's own, and `X-hmac`).

use herald_engine::app::ConnectorSection;
use herald_engine::device::Device;
use herald_engine::push::{Delivery, DeliveryOutcome, GMS_TAG};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{permanent, presets, template};

/// Headers Herald sets itself; an app's `headers` cannot replace them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
];

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
        "gms": push.gms.as_ref().map(|gms| json!({"message": gms, "tag": GMS_TAG})),
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
pub(super) fn headers(section: &ConnectorSection) -> Result<HeaderMap, String> {
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
pub(super) fn scrub(mut reason: String, device: &Device, section: &ConnectorSection) -> String {
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

/// The template of `section` for pushes of `delivery`'s kind: a preset's, or the app's own.
fn template_of<'a>(
    section: &'a ConnectorSection,
    delivery: &Delivery,
) -> Result<&'a Value, DeliveryOutcome> {
    match presets::template(section.preset, &delivery.push) {
        Some(preset) => Ok(preset),
        None => section
            .template
            .as_ref()
            .ok_or_else(|| permanent("the custom connector preset needs a template")),
    }
}

/// The rendered JSON body of the call; `vars` are its variables.
fn body(
    delivery: &Delivery,
    device: &Device,
    section: &ConnectorSection,
    vars: &Value,
) -> Result<Vec<u8>, DeliveryOutcome> {
    let body = template::render(template_of(section, delivery)?, vars).map_err(|e| {
        tracing::info!(
            tenant.id = %delivery.tenant_id,
            app.id = %delivery.app_id,
            delivery.id = %delivery.id,
            at = %e.path,
            "the connector payload template failed to render"
        );
        permanent(scrub(
            format!("the connector payload template failed to render: {e}"),
            device,
            section,
        ))
    })?;
    let body = serde_json::to_vec(&body).expect("a JSON value always serialises");
    if body.len() > template::MAX_PAYLOAD_BYTES {
        return Err(permanent(format!(
            "the rendered connector payload is {} bytes; at most {} are sent",
            body.len(),
            template::MAX_PAYLOAD_BYTES
        )));
    }
    Ok(body)
}

/// The headers and body of the call of `delivery` to `device`.
pub(super) fn call(
    delivery: &Delivery,
    device: &Device,
    section: &ConnectorSection,
) -> Result<(HeaderMap, Vec<u8>), DeliveryOutcome> {
    let vars = variables(delivery, device, section);
    let body = body(delivery, device, section, &vars)?;
    let mut headers = headers(section).map_err(permanent)?;
    if let Some(secret) = &section.hmac_secret {
        let event_id = vars["event_id"].as_str().unwrap_or_default();
        let mut value = HeaderValue::from_str(&signature(secret, event_id, &device.token))
            .expect("hex is a valid header value");
        value.set_sensitive(true);
        headers.insert("x-hmac", value);
    }
    Ok((headers, body))
}
