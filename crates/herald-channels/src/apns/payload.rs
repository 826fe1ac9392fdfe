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

use herald_engine::device::Channel as DeviceChannel;
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
mod tests {
    use super::*;
    use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
    use herald_engine::push::Target;

    pub(crate) fn delivery(kind: PushKind, title: &str, body: &str) -> Delivery {
        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        Delivery {
            id: "dlv_1".into(),
            notification_id: "ntf_1".into(),
            tenant_id: TenantId::parse("default").unwrap(),
            app_id: AppId::parse("chat").unwrap(),
            channel: "apns".into(),
            target: Target::Webhook {
                endpoint_id: "x".into(),
                devices: vec![],
            },
            push: Push {
                kind,
                tenant_id: TenantId::parse("default").unwrap(),
                app_id: AppId::parse("chat").unwrap(),
                user_id: UserId::parse("visitor-1").unwrap(),
                conversation_id: Some(ConversationId::parse("c1").unwrap()),
                position: Some(7),
                event_id: None,
                event_at: None,
                title: Some(title.into()),
                body: Some(body.into()),
                lines: vec![],
                sender: None,
                message_count: 1,
                unread: 2,
                badge: 5,
                call_id: None,
                missed_calls: 0,
                collapse_key: "conv:c1".into(),
                high_priority: true,
                data: Default::default(),
                created_at: now,
                expires_at: now + time::Duration::hours(1),
            },
            attempt: 1,
        }
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn an_alert_carries_text_absolute_badge_thread_and_herald_data() {
        let d = delivery(PushKind::NewMessage, "New message from Ann", "Hello");
        let p = json(&render(&d, PushType::Alert));
        assert_eq!(
            p["aps"],
            json!({"alert": {"title": "New message from Ann", "body": "Hello"}, "badge": 5,
                "sound": "default", "thread-id": "c1", "mutable-content": 1})
        );
        assert_eq!(p["herald"]["conversation_id"], "c1");
        assert_eq!(p["herald"]["position"], 7);
        assert_eq!(p["herald"]["unread"], 2);
        assert_eq!(p["herald"]["kind"], "new_message");
        assert_eq!(p["herald"]["notification_id"], "ntf_1");
    }

    #[test]
    fn a_silent_push_is_content_available_with_the_badge_and_no_text() {
        let d = delivery(PushKind::Read, "t", "b");
        let p = json(&render(&d, PushType::Background));
        assert_eq!(p["aps"], json!({"content-available": 1, "badge": 5}));
        assert!(p.get("title").is_none());
        assert_eq!(
            PushType::for_push(DeviceChannel::Apns, PushKind::Read),
            PushType::Background
        );
        assert_eq!(
            PushType::for_push(DeviceChannel::Apns, PushKind::RevokedCall),
            PushType::Background
        );
        assert_eq!(PushType::Background.priority(), "5");
    }

    #[test]
    fn voip_has_its_data_at_the_top_level_and_the_voip_topic() {
        let mut d = delivery(PushKind::IncomingCall, "Ann is calling", "");
        d.push.call_id = Some("call-1".into());
        let p = json(&render(&d, PushType::Voip));
        assert!(p.get("aps").is_none());
        assert_eq!(p["herald"]["call_id"], "call-1");
        assert_eq!(p["herald"]["title"], "Ann is calling");
        assert_eq!(
            PushType::Voip.topic("com.example.chat"),
            "com.example.chat.voip"
        );
        assert_eq!(
            PushType::Voip.topic("com.example.chat.voip"),
            "com.example.chat.voip"
        );
        assert_eq!(
            PushType::Alert.topic("com.example.chat"),
            "com.example.chat"
        );
    }

    #[test]
    fn ten_kilobytes_of_text_are_cut_to_the_limit_on_a_character_boundary() {
        for (push_type, limit) in [(PushType::Alert, 4096), (PushType::Voip, 5120)] {
            // Two-, three- and four-byte characters, and characters JSON escapes.
            let body: String = "é€😀\"\n".repeat(1000);
            assert!(body.len() > 10_000);
            let d = delivery(PushKind::NewMessage, &"T€".repeat(30), &body);
            let bytes = render(&d, push_type);
            assert!(bytes.len() <= limit, "{} > {limit}", bytes.len());
            assert!(
                bytes.len() > limit - 8,
                "not cut more than needed: {}",
                bytes.len()
            );
            let p = json(&bytes);
            let text = match push_type {
                PushType::Voip => p["herald"]["body"].as_str().unwrap().to_string(),
                _ => p["aps"]["alert"]["body"].as_str().unwrap().to_string(),
            };
            assert!(text.ends_with('…'));
            assert!(body.starts_with(text.trim_end_matches('…')));
        }
    }

    #[test]
    fn the_title_is_cut_only_when_the_body_is_gone() {
        let d = delivery(PushKind::NewMessage, &"t".repeat(5000), "short body");
        let p = json(&render(&d, PushType::Alert));
        assert!(p["aps"]["alert"]["title"].as_str().unwrap().len() < 4096);
        assert_eq!(p["aps"]["alert"]["body"], "");
    }

    #[test]
    fn huge_custom_data_never_makes_a_push_fail() {
        let mut d = delivery(PushKind::Proactive, "Offer", "Hi");
        for i in 0..100 {
            d.push.data.insert(format!("k{i}"), "v".repeat(100));
        }
        let bytes = render(&d, PushType::Alert);
        assert!(bytes.len() <= 4096);
        assert_eq!(json(&bytes)["herald"]["notification_id"], "ntf_1");
    }

    #[test]
    fn apns_ids_are_stable_canonical_uuids() {
        let id = apns_id("dlv_0193");
        assert_eq!(id, apns_id("dlv_0193"));
        assert_ne!(id, apns_id("dlv_0194"));
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.hyphenated().to_string(), id);
        assert_eq!(id, id.to_lowercase());
        assert_eq!(id.len(), 36);
        assert_eq!(parsed.get_version_num(), 8);
    }

    #[test]
    fn collapse_ids_fit_in_64_bytes_and_long_ones_stay_distinct() {
        assert_eq!(collapse_id("conv:c1"), "conv:c1");
        let a = format!("conv:{}a", "é".repeat(40));
        let b = format!("conv:{}b", "é".repeat(40));
        let (ca, cb) = (collapse_id(&a), collapse_id(&b));
        assert!(ca.len() <= 64 && cb.len() <= 64);
        assert_ne!(ca, cb);
        assert!(ca.starts_with("conv:é"));
        assert_eq!(collapse_id(&"x".repeat(64)), "x".repeat(64));
    }
}
