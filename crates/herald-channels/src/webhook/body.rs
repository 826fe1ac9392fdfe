//! The webhook body: `{type, timestamp, data}` as Standard Webhooks recommends, with the
//! recipient, the conversation, the counts, the content (only in `full` mode) and the
//! recipient's devices, so a customer can push through their own infrastructure. A GMS-shaped
//! push (`content.shape = "gms"`) also carries `gms`: `{"message": {message, serviceId,
//! lastTranscript}, "tag": "chat.newagentmessage"}`, GMS's HTTP notification as it is.

use herald_engine::app::ContentMode;
use herald_engine::device::Device;
use herald_engine::push::{Delivery, GMS_TAG};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

/// Standard Webhooks suggests keeping payloads under about 20 kB.
pub const MAX_BODY_BYTES: usize = 20_000;

/// The exact bytes to sign and send for `delivery` as event `event_type`.
pub fn render(
    delivery: &Delivery,
    event_type: &str,
    mode: ContentMode,
    devices: &[Device],
) -> Vec<u8> {
    let push = &delivery.push;
    let mut data = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            data.insert(key.to_string(), value);
        }
    };
    put("notification_id", json!(delivery.notification_id));
    put("app_id", json!(push.app_id));
    put("kind", json!(push.kind.as_str()));
    put("recipient", json!({"user_id": push.user_id}));
    put("conversation_id", json!(push.conversation_id));
    put("position", json!(push.position));
    put("event_id", json!(push.event_id));
    put("event_at", json!(push.event_at.and_then(rfc3339)));
    put("unread", json!(push.unread));
    put("badge", json!(push.badge));
    put("message_count", json!(push.message_count));
    put("missed_calls", json!(push.missed_calls));
    put("call_id", json!(push.call_id));
    if mode == ContentMode::Full {
        put("title", json!(push.title));
        put("body", json!(push.body));
        if let Some(sender) = &push.sender {
            put(
                "sender",
                json!({"id": sender.id, "role": sender.role, "name": sender.name}),
            );
        }
        if !push.lines.is_empty() {
            put("lines", json!(push.lines));
        }
        if let Some(gms) = &push.gms {
            put("gms", json!({"message": gms, "tag": GMS_TAG}));
        }
    }
    let devices: Vec<Value> = devices.iter().map(device).collect();
    data.insert("devices".into(), Value::Array(devices));

    let mut doc = json!({
        "type": event_type,
        "timestamp": rfc3339(push.created_at),
        "data": Value::Object(data),
    });
    let mut bytes = serde_json::to_vec(&doc).expect("JSON values always serialise");
    if bytes.len() <= MAX_BODY_BYTES {
        return bytes;
    }
    // Too big: drop the transcript lines first (a GMS transcript keeps its latest item), then
    // devices from the end (saying how many).
    let data = doc["data"].as_object_mut().expect("data is an object");
    data.remove("lines");
    if let Some(Value::Array(items)) = data
        .get_mut("gms")
        .and_then(|g| g["message"].get_mut("lastTranscript"))
    {
        let keep = items.len().saturating_sub(1);
        items.drain(..keep);
    }
    let mut omitted = 0u64;
    loop {
        bytes = serde_json::to_vec(&doc).expect("JSON values always serialise");
        let data = doc["data"].as_object_mut().expect("data is an object");
        let devices = data["devices"].as_array_mut().expect("devices is a list");
        if bytes.len() <= MAX_BODY_BYTES || devices.is_empty() {
            return bytes;
        }
        devices.pop();
        omitted += 1;
        data.insert("devices_omitted".into(), json!(omitted));
    }
}

fn rfc3339(at: time::OffsetDateTime) -> Option<String> {
    at.format(&Rfc3339).ok()
}

/// A device as the customer needs it to push: its token, or a Web Push subscription.
fn device(d: &Device) -> Value {
    let mut out = json!({
        "device_id": d.id,
        "channel": d.channel.as_str(),
        "platform": d.platform.as_str(),
    });
    match &d.subscription {
        Some(subscription) => out["subscription"] = json!(subscription),
        None => out["token"] = json!(d.token),
    }
    if let Some(locale) = &d.locale {
        out["locale"] = json!(locale);
    }
    out
}
