//! The APNs request for one push: push type, priority, topic, ids, and the JSON payload cut to
//! Apple's size limit (4096 bytes, 5120 for VoIP) by shortening the text, never by failing.
//!
//! - alert: `{"aps": {"alert": {"title", "body"}, "badge", "sound": "default", "thread-id",
//!   "mutable-content": 1}, "herald": {…}}`;
//! - background (silent kinds on an alert token): `{"aps": {"content-available": 1, "badge"},
//!   "herald": {…}}`, priority 5 as Apple requires;
//! - voip (`apns_voip` tokens): PushKit needs no `aps`; the data is at the top level:
//!   `{"herald": {…, "title", "body"}}`.
//!
//! `herald` carries what the app needs to act without asking: the conversation, position,
//! counts, kind and ids. The badge is always the user's absolute total.

use herald_engine::device::DeviceChannel;
use herald_engine::notify::content::shorten;
use herald_engine::push::{Delivery, Push, PushKind};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub const MAX_PAYLOAD: usize = 4096;
pub const MAX_VOIP_PAYLOAD: usize = 5120;
/// Apple: `apns-collapse-id` may not exceed 64 bytes.
pub const MAX_COLLAPSE_ID: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushType {
    Alert,
    Background,
    Voip,
}

impl PushType {
    pub fn for_push(channel: DeviceChannel, kind: PushKind) -> PushType {
        match channel {
            DeviceChannel::ApnsVoip => PushType::Voip,
            _ if kind.is_silent() => PushType::Background,
            _ => PushType::Alert,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PushType::Alert => "alert",
            PushType::Background => "background",
            PushType::Voip => "voip",
        }
    }

    /// `apns-priority`: Apple requires 5 for background pushes; visible pushes and calls go
    /// at once.
    pub fn priority(self) -> &'static str {
        match self {
            PushType::Background => "5",
            PushType::Alert | PushType::Voip => "10",
        }
    }

    pub fn max_payload(self) -> usize {
        match self {
            PushType::Voip => MAX_VOIP_PAYLOAD,
            _ => MAX_PAYLOAD,
        }
    }

    /// `apns-topic`: the bundle id, with `.voip` for PushKit.
    pub fn topic(self, bundle: &str) -> String {
        match self {
            PushType::Voip if !bundle.ends_with(".voip") => format!("{bundle}.voip"),
            _ => bundle.to_string(),
        }
    }
}

/// `apns-id`: a UUID derived from the delivery id, so every retry of a delivery carries the
/// same id (APNs and the logs de-duplicate by it). The first 16 bytes of SHA-256, marked as an
/// RFC 9562 version 8 (custom) UUID, in canonical lowercase form.
pub fn apns_id(delivery_id: &str) -> String {
    let digest = Sha256::digest(delivery_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// `apns-collapse-id`: the push's collapse key when it fits in 64 bytes; a longer one keeps
/// its start (cut on a character boundary) and ends with a hash of the whole key, so two long
/// keys that share a prefix never collapse into each other.
pub fn collapse_id(key: &str) -> String {
    if key.len() <= MAX_COLLAPSE_ID {
        return key.to_string();
    }
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..8]);
    let mut end = MAX_COLLAPSE_ID - hash.len() - 1;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}~{hash}", &key[..end])
}

fn herald_data(delivery: &Delivery) -> Map<String, Value> {
    let push = &delivery.push;
    let mut data = Map::new();
    data.insert("kind".into(), json!(push.kind.as_str()));
    data.insert("notification_id".into(), json!(delivery.notification_id));
    if let Some(c) = &push.conversation_id {
        data.insert("conversation_id".into(), json!(c.to_string()));
    }
    if let Some(p) = push.position {
        data.insert("position".into(), json!(p));
    }
    data.insert("unread".into(), json!(push.unread));
    data.insert("badge".into(), json!(push.badge));
    if push.message_count > 0 {
        data.insert("message_count".into(), json!(push.message_count));
    }
    if let Some(e) = &push.event_id {
        data.insert("event_id".into(), json!(e.to_string()));
    }
    if let Some(c) = &push.call_id {
        data.insert("call_id".into(), json!(c));
    }
    if push.missed_calls > 0 {
        data.insert("missed_calls".into(), json!(push.missed_calls));
    }
    if let Some(s) = &push.sender {
        data.insert("sender_id".into(), json!(s.id.to_string()));
    }
    if !push.data.is_empty() {
        data.insert("data".into(), json!(push.data));
    }
    data
}

/// What the payload says, before fitting.
struct Parts {
    push_type: PushType,
    title: Option<String>,
    body: Option<String>,
    herald: Map<String, Value>,
}

impl Parts {
    fn render(&self, push: &Push) -> Vec<u8> {
        let mut herald = self.herald.clone();
        let value = match self.push_type {
            PushType::Voip => {
                if let Some(t) = &self.title {
                    herald.insert("title".into(), json!(t));
                }
                if let Some(b) = &self.body {
                    herald.insert("body".into(), json!(b));
                }
                json!({"herald": herald})
            }
            PushType::Background => json!({
                "aps": {"content-available": 1, "badge": push.badge},
                "herald": herald,
            }),
            PushType::Alert => {
                let mut aps = Map::new();
                let mut alert = Map::new();
                if let Some(t) = &self.title {
                    alert.insert("title".into(), json!(t));
                }
                if let Some(b) = &self.body {
                    alert.insert("body".into(), json!(b));
                }
                if !alert.is_empty() {
                    aps.insert("alert".into(), Value::Object(alert));
                }
                aps.insert("badge".into(), json!(push.badge));
                aps.insert("sound".into(), json!("default"));
                if let Some(c) = &push.conversation_id {
                    aps.insert("thread-id".into(), json!(c.to_string()));
                }
                // Lets the app's notification service extension decorate the push (or fetch
                // the content of a metadata-only one).
                aps.insert("mutable-content".into(), json!(1));
                json!({"aps": aps, "herald": herald})
            }
        };
        serde_json::to_vec(&value).expect("JSON values always serialise")
    }
}

#[derive(Clone, Copy)]
enum Field {
    Body,
    Title,
}

impl Parts {
    fn field(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Body => &mut self.body,
            Field::Title => &mut self.title,
        }
    }
}

/// Shortens one text field to the longest cut (on a character boundary, marked with `…`)
/// with which the payload fits. Answers whether it now fits; if no cut does, the field is
/// emptied.
fn shrink(parts: &mut Parts, field: Field, push: &Push, limit: usize) -> bool {
    let Some(original) = parts.field(field).take().filter(|t| !t.is_empty()) else {
        return false;
    };
    let fits = |parts: &mut Parts, max: usize| {
        *parts.field(field) = Some(shorten(&original, max));
        parts.render(push).len() <= limit
    };
    // The payload size grows with `max`; find the largest that fits.
    let (mut lo, mut hi) = (0usize, original.len());
    if !fits(parts, lo) {
        *parts.field(field) = Some(String::new());
        return false;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(parts, mid) { lo = mid } else { hi = mid }
    }
    fits(parts, lo)
}

/// The payload of `delivery` as `push_type`, at most `push_type.max_payload()` bytes: the body
/// is shortened first, then the title; custom data and secondary metadata go last.
pub fn render(delivery: &Delivery, push_type: PushType) -> Vec<u8> {
    let push = &delivery.push;
    let (title, body) = match push_type {
        PushType::Background => (None, None),
        _ => (push.title.clone(), push.body.clone()),
    };
    let mut parts = Parts {
        push_type,
        title,
        body,
        herald: herald_data(delivery),
    };
    let limit = push_type.max_payload();
    let payload = parts.render(push);
    if payload.len() <= limit {
        return payload;
    }
    if shrink(&mut parts, Field::Body, push, limit) || shrink(&mut parts, Field::Title, push, limit)
    {
        return parts.render(push);
    }
    // Only data is left to give: custom data first, then everything but the essentials.
    parts.herald.remove("data");
    let payload = parts.render(push);
    if payload.len() <= limit {
        return payload;
    }
    let essentials = [
        "kind",
        "notification_id",
        "conversation_id",
        "position",
        "call_id",
    ];
    parts.herald.retain(|k, _| essentials.contains(&k.as_str()));
    let payload = parts.render(push);
    if payload.len() <= limit {
        return payload;
    }
    // Ids are bounded far below the limit; this cannot happen, but never send too much.
    parts.herald.clear();
    parts.render(push)
}

#[cfg(test)]
mod tests;
