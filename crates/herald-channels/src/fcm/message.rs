//! The FCM HTTP v1 message for one push (`projects.messages`), cut to FCM's 4096-byte limit
//! by shortening text, never by failing.
//!
//! - **Target**: `token`.
//! - **`data`** (every value a string; reserved keys dropped): what the app needs to act without
//!   asking — `kind`, `notification_id`, `conversation_id`, `position`, `unread`, `badge`,
//!   `message_count`, `event_id`, `call_id`, `missed_calls`, `sender_id`, and `tag` (the push's
//!   collapse key) — plus a proactive notification's custom data.
//! - **Android** devices (every platform but iOS): `android.priority` HIGH for calls and
//!   visible pushes that ask for it, NORMAL for silent ones; `android.ttl` the seconds left of
//!   the push (capped at 28 days).
//!   - Visible pushes with text are notification messages: `android.notification` with
//!     `title`, `body`, `tag` = the collapse key (one per conversation, so FCM's limit of four
//!     collapse keys per device is never reached) and `notification_count` = the badge.
//!   - Silent pushes (read, revoked call), calls (apps ring from data) and visible pushes
//!     without text (`metadata_only`: the app fetches the content and shows it) are
//!     **data-only** messages with `android.collapse_key`; a read carries the `tag` of the
//!     notification the app should cancel.
//! - **iOS** devices on FCM: an `apns` block with `apns-push-type`, `apns-priority`,
//!   `apns-expiration`, `apns-collapse-id` and `payload.aps` (`alert`, `badge`, `sound`,
//!   `thread-id`, `mutable-content` for visible pushes; `content-available` with priority 5 for
//!   silent ones — FCM allows only priority 5 for data-only messages to iOS). Calls to iOS are
//!   alerts at priority 10 (FCM cannot reach PushKit).
//!
//! The size that is limited is the message without its target (FCM: "both the keys and the
//! values"); a token is not content. Text is shortened (body, then title, on character
//! boundaries, marked with `…`); custom data entries go only as far as needed to leave the
//! text a readable minimum, and everything but the essentials only if even that is not enough.

use std::collections::BTreeMap;

use herald_engine::device::{Device, Platform};
use herald_engine::notify::content::shorten;
use herald_engine::push::{Delivery, Push, PushKind};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub const MAX_MESSAGE_BYTES: usize = 4096;
/// FCM's longest (and default) Android TTL: four weeks.
pub const MAX_TTL_S: u64 = 2_419_200;
/// Apple: `apns-collapse-id` may not exceed 64 bytes.
pub const MAX_COLLAPSE_ID: usize = 64;

/// Which kind of FCM message a push becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Shown by the system (`android.notification`, `aps.alert`).
    Notification,
    /// Handed to the app (`data` only on Android; `content-available` on iOS).
    DataOnly,
}

impl Shape {
    pub fn for_push(push: &Push, platform: Platform) -> Shape {
        let has_text = [&push.title, &push.body]
            .into_iter()
            .any(|t| t.as_deref().is_some_and(|t| !t.is_empty()));
        match (platform, push.kind) {
            (_, kind) if kind.is_silent() => Shape::DataOnly,
            (Platform::Ios, _) => Shape::Notification,
            (_, PushKind::IncomingCall) => Shape::DataOnly,
            _ if !has_text => Shape::DataOnly,
            _ => Shape::Notification,
        }
    }
}

/// Keys FCM reserves in `data` ("from", "message_type", anything starting with "google" or
/// "gcm"), the legacy ones ("notification", "collapse_key"), and "aps", which would collide
/// with the APNs payload on iOS.
pub fn reserved(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.is_empty()
        || [
            "from",
            "message_type",
            "notification",
            "collapse_key",
            "aps",
        ]
        .contains(&k.as_str())
        || k.starts_with("google")
        || k.starts_with("gcm")
}

/// `apns-collapse-id`: the collapse key when it fits in 64 bytes; a longer one keeps its start
/// (on a character boundary) and ends with a hash of the whole key.
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

/// `android.ttl`: the seconds the push has left, as a duration string.
pub fn ttl(push: &Push, now: OffsetDateTime) -> String {
    format!("{}s", push.ttl_at(now).min(MAX_TTL_S))
}

fn herald_data(delivery: &Delivery) -> BTreeMap<String, String> {
    let push = &delivery.push;
    let mut data = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        data.insert(k.to_string(), v);
    };
    put("kind", push.kind.as_str().into());
    put("notification_id", delivery.notification_id.clone());
    if let Some(c) = &push.conversation_id {
        put("conversation_id", c.to_string());
    }
    if let Some(p) = push.position {
        put("position", p.to_string());
    }
    put("unread", push.unread.to_string());
    put("badge", push.badge.to_string());
    if push.message_count > 0 {
        put("message_count", push.message_count.to_string());
    }
    if let Some(e) = &push.event_id {
        put("event_id", e.to_string());
    }
    if let Some(c) = &push.call_id {
        put("call_id", c.clone());
    }
    if push.missed_calls > 0 {
        put("missed_calls", push.missed_calls.to_string());
    }
    if let Some(s) = &push.sender {
        put("sender_id", s.id.to_string());
    }
    if !push.collapse_key.is_empty() {
        put("tag", push.collapse_key.clone());
    }
    data
}

/// The keys that survive when nothing else fits.
const ESSENTIALS: &[&str] = &[
    "kind",
    "notification_id",
    "conversation_id",
    "position",
    "call_id",
    "badge",
    "tag",
];

/// The text a message keeps before any custom data is given up.
pub const MIN_TITLE: usize = 256;
pub const MIN_BODY: usize = 512;

/// What the message says, before fitting.
struct Parts<'a> {
    push: &'a Push,
    platform: Platform,
    shape: Shape,
    ttl: String,
    title: Option<String>,
    body: Option<String>,
    herald: BTreeMap<String, String>,
    custom: BTreeMap<String, String>,
}

impl Parts<'_> {
    fn data(&self) -> Map<String, Value> {
        let mut data: Map<String, Value> = Map::new();
        for (k, v) in &self.custom {
            data.insert(k.clone(), json!(v));
        }
        for (k, v) in &self.herald {
            data.insert(k.clone(), json!(v));
        }
        // Android apps build data-only notifications (calls) from these.
        if self.shape == Shape::DataOnly && self.platform != Platform::Ios {
            if let Some(t) = &self.title {
                data.insert("title".into(), json!(t));
            }
            if let Some(b) = &self.body {
                data.insert("body".into(), json!(b));
            }
        }
        data
    }

    fn android(&self) -> Value {
        let push = self.push;
        let high = push.high_priority && !push.kind.is_silent();
        let mut android = Map::new();
        android.insert(
            "priority".into(),
            json!(if high { "HIGH" } else { "NORMAL" }),
        );
        android.insert("ttl".into(), json!(self.ttl));
        match self.shape {
            Shape::DataOnly => {
                if !push.collapse_key.is_empty() {
                    android.insert("collapse_key".into(), json!(push.collapse_key));
                }
            }
            Shape::Notification => {
                let mut n = Map::new();
                if let Some(t) = &self.title {
                    n.insert("title".into(), json!(t));
                }
                if let Some(b) = &self.body {
                    n.insert("body".into(), json!(b));
                }
                if !push.collapse_key.is_empty() {
                    n.insert("tag".into(), json!(push.collapse_key));
                }
                n.insert(
                    "notification_count".into(),
                    json!(push.badge.min(i32::MAX as u64)),
                );
                android.insert("notification".into(), Value::Object(n));
            }
        }
        Value::Object(android)
    }

    fn apns(&self) -> Value {
        let push = self.push;
        let mut headers = Map::new();
        let mut aps = Map::new();
        match self.shape {
            Shape::DataOnly => {
                headers.insert("apns-push-type".into(), json!("background"));
                headers.insert("apns-priority".into(), json!("5"));
                aps.insert("content-available".into(), json!(1));
                aps.insert("badge".into(), json!(push.badge));
            }
            Shape::Notification => {
                headers.insert("apns-push-type".into(), json!("alert"));
                headers.insert(
                    "apns-priority".into(),
                    json!(if push.high_priority { "10" } else { "5" }),
                );
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
            }
        }
        headers.insert(
            "apns-expiration".into(),
            json!(push.expires_at.unix_timestamp().max(0).to_string()),
        );
        if !push.collapse_key.is_empty() {
            headers.insert(
                "apns-collapse-id".into(),
                json!(collapse_id(&push.collapse_key)),
            );
        }
        json!({"headers": headers, "payload": {"aps": aps}})
    }

    /// The message without its target.
    fn message(&self) -> Map<String, Value> {
        let mut message = Map::new();
        message.insert("data".into(), Value::Object(self.data()));
        if self.platform == Platform::Ios {
            message.insert("apns".into(), self.apns());
        } else {
            message.insert("android".into(), self.android());
        }
        message
    }

    fn size(&self) -> usize {
        serde_json::to_vec(&self.message())
            .expect("JSON values always serialise")
            .len()
    }

    fn field(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Body => &mut self.body,
            Field::Title => &mut self.title,
        }
    }
}

#[derive(Clone, Copy)]
enum Field {
    Body,
    Title,
}

/// Shortens one text field to the longest cut with which the message fits. Answers whether it
/// now fits; if no cut does, the field is emptied.
fn shrink(parts: &mut Parts<'_>, field: Field, limit: usize) -> bool {
    let Some(original) = parts.field(field).take().filter(|t| !t.is_empty()) else {
        return false;
    };
    let fits = |parts: &mut Parts<'_>, max: usize| {
        *parts.field(field) = Some(shorten(&original, max));
        parts.size() <= limit
    };
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

/// The request body of one send.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `{"message": {...}}`
    pub body: Vec<u8>,
    /// The size FCM limits: the message without its target.
    pub message_bytes: usize,
    pub shape: Shape,
}

/// The message of `delivery` to `device` at `now`, fitted to [`MAX_MESSAGE_BYTES`].
pub fn render(delivery: &Delivery, device: &Device, now: OffsetDateTime) -> Rendered {
    let push = &delivery.push;
    let shape = Shape::for_push(push, device.platform);
    let silent = push.kind.is_silent();
    let herald = herald_data(delivery);
    let custom = push
        .data
        .iter()
        .filter(|(k, _)| {
            !reserved(k) && !herald.contains_key(*k) && !matches!(k.as_str(), "title" | "body")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut parts = Parts {
        push,
        platform: device.platform,
        shape,
        ttl: ttl(push, now),
        title: push.title.clone().filter(|_| !silent),
        body: push.body.clone().filter(|_| !silent),
        herald,
        custom,
    };
    fit(&mut parts, MAX_MESSAGE_BYTES);
    let mut message = parts.message();
    let message_bytes = serde_json::to_vec(&message)
        .expect("JSON values always serialise")
        .len();
    message.insert("token".into(), json!(device.token));
    Rendered {
        body: serde_json::to_vec(&json!({ "message": message }))
            .expect("JSON values always serialise"),
        message_bytes,
        shape,
    }
}

/// Fits the message: if it is too big even with the text cut to [`MIN_TITLE`] and
/// [`MIN_BODY`] bytes, custom data entries go (last key first), then everything but the
/// essentials; then the body and the title are shortened as little as needed.
fn fit(parts: &mut Parts<'_>, limit: usize) {
    if parts.size() <= limit {
        return;
    }
    let texts = (parts.title.clone(), parts.body.clone());
    parts.title = texts.0.as_deref().map(|t| shorten(t, MIN_TITLE));
    parts.body = texts.1.as_deref().map(|b| shorten(b, MIN_BODY));
    while parts.size() > limit && parts.custom.pop_last().is_some() {}
    if parts.size() > limit {
        parts.herald.retain(|k, _| ESSENTIALS.contains(&k.as_str()));
    }
    if parts.size() > limit {
        // Ids are bounded far below the limit; this cannot happen, but never send too much.
        parts.herald.clear();
    }
    (parts.title, parts.body) = texts;
    if parts.size() <= limit || shrink(parts, Field::Body, limit) {
        return;
    }
    shrink(parts, Field::Title, limit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_engine::device::Channel as DeviceChannel;
    use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
    use herald_engine::push::{PushSender, Target};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 10:00 UTC)
    }

    fn device(platform: Platform) -> Device {
        Device {
            id: DeviceId::parse("dev_1").unwrap(),
            app_id: AppId::parse("chat").unwrap(),
            user_id: UserId::parse("visitor-1").unwrap(),
            channel: DeviceChannel::Fcm,
            token: "fcm-token-1".into(),
            subscription: None,
            platform,
            locale: None,
            installation_id: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn delivery(kind: PushKind, title: &str, body: &str) -> Delivery {
        let silent = kind.is_silent();
        Delivery {
            id: "dlv_1".into(),
            notification_id: "ntf_1".into(),
            tenant_id: TenantId::parse("default").unwrap(),
            app_id: AppId::parse("chat").unwrap(),
            channel: "fcm".into(),
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
                title: (!silent).then(|| title.to_string()),
                body: (!silent).then(|| body.to_string()),
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
                high_priority: !silent,
                data: BTreeMap::new(),
                created_at: now(),
                expires_at: now() + time::Duration::hours(1),
            },
            attempt: 1,
        }
    }

    fn message(d: &Delivery, platform: Platform) -> Value {
        let r = render(d, &device(platform), now());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["message"].clone()
    }

    #[test]
    fn a_new_message_to_android_is_a_notification_with_tag_count_priority_and_ttl() {
        let m = message(
            &delivery(PushKind::NewMessage, "Ann", "Hello"),
            Platform::Android,
        );
        assert_eq!(m["token"], "fcm-token-1");
        assert_eq!(m["android"]["priority"], "HIGH");
        assert_eq!(m["android"]["ttl"], "3600s");
        assert_eq!(
            m["android"]["notification"],
            json!({"title": "Ann", "body": "Hello", "tag": "conv:c1", "notification_count": 5})
        );
        assert!(m.get("apns").is_none() && m["android"].get("collapse_key").is_none());
        assert_eq!(m["data"]["badge"], "5");
        assert_eq!(m["data"]["position"], "7");
        assert!(
            m["data"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_string)
        );
    }

    #[test]
    fn a_read_is_data_only_and_normal_priority_with_the_same_tag() {
        let m = message(&delivery(PushKind::Read, "", ""), Platform::Android);
        assert!(m["android"].get("notification").is_none());
        assert_eq!(m["android"]["priority"], "NORMAL");
        assert_eq!(m["android"]["collapse_key"], "conv:c1");
        assert_eq!(m["data"]["kind"], "read");
        assert_eq!(m["data"]["tag"], "conv:c1");
        assert_eq!(m["data"]["conversation_id"], "c1");
    }

    #[test]
    fn a_call_is_high_priority_data_with_its_texts() {
        let mut d = delivery(PushKind::IncomingCall, "Ann is calling", "Tap to answer");
        d.push.call_id = Some("call-9".into());
        d.push.collapse_key = "call:call-9".into();
        let m = message(&d, Platform::Android);
        assert_eq!(m["android"]["priority"], "HIGH");
        assert!(m["android"].get("notification").is_none());
        assert_eq!(m["data"]["call_id"], "call-9");
        assert_eq!(m["data"]["title"], "Ann is calling");
        assert_eq!(m["data"]["kind"], "incoming_call");
    }

    #[test]
    fn ios_devices_get_an_apns_block() {
        let m = message(
            &delivery(PushKind::NewMessage, "Ann", "Hello"),
            Platform::Ios,
        );
        assert!(m.get("android").is_none());
        let apns = &m["apns"];
        assert_eq!(apns["headers"]["apns-priority"], "10");
        assert_eq!(apns["headers"]["apns-push-type"], "alert");
        assert_eq!(apns["headers"]["apns-collapse-id"], "conv:c1");
        assert_eq!(
            apns["headers"]["apns-expiration"],
            (now() + time::Duration::hours(1))
                .unix_timestamp()
                .to_string()
        );
        let aps = &apns["payload"]["aps"];
        assert_eq!(aps["alert"], json!({"title": "Ann", "body": "Hello"}));
        assert_eq!(aps["badge"], 5);
        assert_eq!(aps["thread-id"], "c1");

        let read = message(&delivery(PushKind::Read, "", ""), Platform::Ios);
        assert_eq!(
            read["apns"]["headers"]["apns-priority"], "5",
            "FCM's rule for data-only to iOS"
        );
        assert_eq!(read["apns"]["headers"]["apns-push-type"], "background");
        assert_eq!(
            read["apns"]["payload"]["aps"],
            json!({"content-available": 1, "badge": 5})
        );
    }

    #[test]
    fn metadata_only_pushes_to_android_are_data_for_the_app_to_show() {
        let mut d = delivery(PushKind::NewMessage, "", "");
        d.push.title = None;
        d.push.body = None;
        let m = message(&d, Platform::Android);
        assert!(m["android"].get("notification").is_none());
        assert_eq!(m["android"]["priority"], "HIGH");
    }

    #[test]
    fn custom_data_is_strings_without_reserved_or_clashing_keys() {
        let mut d = delivery(PushKind::Proactive, "Offer", "10% off");
        d.push.data = BTreeMap::from(
            [
                ("from", "x"),
                ("google.x", "y"),
                ("gcm.notification.a", "z"),
                ("coupon", "ABC"),
                ("kind", "hijack"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let m = message(&d, Platform::Android);
        let data = m["data"].as_object().unwrap();
        assert_eq!(data["coupon"], "ABC");
        assert_eq!(data["kind"], "proactive");
        assert!(data.keys().all(|k| !reserved(k)));
    }

    #[test]
    fn the_ttl_is_what_is_left_and_at_most_four_weeks() {
        let mut d = delivery(PushKind::NewMessage, "a", "b");
        assert_eq!(ttl(&d.push, now() + time::Duration::seconds(1877)), "1723s");
        d.push.expires_at = now() + time::Duration::days(60);
        assert_eq!(ttl(&d.push, now()), "2419200s");
        assert_eq!(ttl(&d.push, now() + time::Duration::days(90)), "0s");
    }

    #[test]
    fn ten_kilobytes_are_cut_on_a_character_boundary_to_fit() {
        for platform in [Platform::Android, Platform::Ios] {
            let long = "é".repeat(5000);
            let mut d = delivery(PushKind::Proactive, &"t".repeat(3000), &long);
            d.push.data = BTreeMap::from([("k".to_string(), "v".repeat(500))]);
            let r = render(&d, &device(platform), now());
            assert!(r.message_bytes <= MAX_MESSAGE_BYTES, "{}", r.message_bytes);
            assert!(
                r.message_bytes > MAX_MESSAGE_BYTES - 64,
                "not cut more than needed"
            );
            let m: Value = serde_json::from_slice(&r.body).unwrap();
            let body = match platform {
                Platform::Ios => m["message"]["apns"]["payload"]["aps"]["alert"]["body"].clone(),
                _ => m["message"]["android"]["notification"]["body"].clone(),
            };
            let body = body.as_str().unwrap();
            assert!(body.ends_with('…') && long.starts_with(body.trim_end_matches('…')));
            assert_eq!(
                m["message"]["data"]["k"],
                "v".repeat(500),
                "data is kept while text can give"
            );
        }
    }

    #[test]
    fn long_collapse_keys_are_hashed_into_sixty_four_bytes() {
        let key = format!("conv:{}", "ü".repeat(60));
        let id = collapse_id(&key);
        assert!(id.len() <= 64);
        assert_ne!(collapse_id(&format!("{key}x")), id);
        assert_eq!(collapse_id("conv:c1"), "conv:c1");
    }
}
