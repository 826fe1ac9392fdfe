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
//! - **GMS-shaped** pushes (`content.shape = "gms"`) to Android are data-only, as GMS's were
//!   (the app builds its dialog): `data` also carries `message`, `serviceId`, `lastTranscript`
//!   (the items' JSON text, FCM data being strings) and `tag` = `chat.newagentmessage`; the
//!   oldest items go first when the message is too big. iOS devices get the usual alert (GMS
//!   sent no transcript to iOS either).
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
//!
//! Files: `mod.rs` the shape, the data and the message as a whole; `android.rs` the `android`
//! block; `apns.rs` the `apns` block for iOS devices; `fit.rs` the cut to the size limit;
//! [`gateway`] a gateway's own payload (`Push::gateway`) as the message's data; `tests.rs`.

mod android;
mod apns;
mod fit;
pub mod gateway;

use std::collections::BTreeMap;

use herald_engine::device::{Device, Platform};
use herald_engine::push::{Delivery, GMS_TAG, Gms, Push, PushKind};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use self::apns::{MAX_COLLAPSE_ID, collapse_id};
use self::fit::fit;
pub use self::fit::{MIN_BODY, MIN_TITLE};

pub const MAX_MESSAGE_BYTES: usize = 4096;
/// FCM's longest (and default) Android TTL: four weeks.
pub const MAX_TTL_S: u64 = 2_419_200;

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
            _ if push.gms.is_some() => Shape::DataOnly,
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
    /// The GMS content, for Android devices.
    gms: Option<Gms>,
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
        if let Some(gms) = &self.gms {
            let items =
                serde_json::to_string(&gms.last_transcript).expect("JSON values always serialise");
            data.insert("message".into(), json!(gms.message));
            data.insert("serviceId".into(), json!(gms.service_id));
            data.insert("lastTranscript".into(), json!(items));
            data.insert("tag".into(), json!(GMS_TAG));
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
            !reserved(k)
                && !herald.contains_key(*k)
                && !matches!(
                    k.as_str(),
                    "title" | "body" | "message" | "serviceId" | "lastTranscript"
                )
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
        gms: push
            .gms
            .clone()
            .filter(|_| device.platform != Platform::Ios),
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

#[cfg(test)]
mod tests;
