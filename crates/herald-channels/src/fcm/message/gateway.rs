//! The FCM message of a gateway's payload (the Matrix push gateway's, in Sygnal's shape): the
//! payload is the message's `data`, every value a string as FCM requires (strings as they are,
//! anything else as its JSON text); `android.priority` HIGH unless the push asked for less,
//! `android.ttl` the push's. No `notification` block: a gateway's apps build what they show.

use herald_engine::device::Device;
use herald_engine::push::{GatewayPayload, Push};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{MAX_MESSAGE_BYTES, Rendered, Shape, ttl};

/// The message, or why it cannot go: over FCM's limit (its composer fits it; cutting it here
/// would break a shape this channel does not own).
pub fn render(
    push: &Push,
    payload: &GatewayPayload,
    device: &Device,
    now: OffsetDateTime,
) -> Result<Rendered, String> {
    let data: Map<String, Value> = payload
        .0
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect();
    let priority = if push.high_priority { "HIGH" } else { "NORMAL" };
    let mut message = Map::new();
    message.insert("data".into(), Value::Object(data));
    message.insert(
        "android".into(),
        json!({"priority": priority, "ttl": ttl(push, now)}),
    );
    let message_bytes = serde_json::to_vec(&message)
        .expect("JSON values always serialise")
        .len();
    if message_bytes > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the gateway payload makes a {message_bytes}-byte message, over FCM's limit of {MAX_MESSAGE_BYTES}"
        ));
    }
    message.insert("token".into(), json!(device.token));
    Ok(Rendered {
        body: serde_json::to_vec(&json!({ "message": message }))
            .expect("JSON values always serialise"),
        message_bytes,
        shape: Shape::DataOnly,
    })
}
