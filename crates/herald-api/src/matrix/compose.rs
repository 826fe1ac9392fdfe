//! What a Matrix notification becomes for one device, in the shape the Matrix apps already
//! read (Sygnal's: Element and the other clients parse these keys), fitted to the provider's
//! size limit. Facts from Sygnal's documented behaviour; the code is Herald's.
//!
//! - **APNs**: with `event_id` and no `type` (what a homeserver sends for `format:
//!   event_id_only`), `default_payload` + `room_id`, `event_id`, `unread_count`,
//!   `missed_calls`; otherwise an alert with a localisation key (`MSG_FROM_USER_IN_ROOM_WITH_CONTENT`,
//!   …) and its arguments, `aps.badge` = unread + missed calls, `room_id` and `event_id`, on top
//!   of `default_payload`. Nothing to show and no badge: nothing is sent.
//! - **FCM**: `data` = `default_payload` + the notification's fields (strings cut to 1024
//!   bytes, ending in `…`), the content's string fields as `content_<key>`, `prio` (`high`/`normal`),
//!   `unread`, `missed_calls`.
//! - **Web Push**: `default_payload` + the notification's fields, the counts and the content
//!   (without `formatted_body`, the body cut to 1000 characters, a long `ciphertext` dropped).
//!
//! A `default_payload` that is not an object makes the pushkey rejected, as Sygnal does.

use herald_engine::notify::content::shorten;
use serde_json::{Map, Value, json};

use super::request::{Device, Notification};

/// Sygnal's cap on one displayed field (sender, room, content).
const MAX_FIELD_BYTES: usize = 1024;
/// APNs' limit on a (non-VoIP) payload.
pub const APNS_MAX_PAYLOAD: usize = 4096;
/// FCM's limit on a message without its token; the `android` block takes the rest.
pub const FCM_MAX_DATA: usize = 4096 - 80;
/// Web Push: 4096 bytes of record minus the aes128gcm header, tag and padding delimiter.
pub const WEBPUSH_MAX_PAYLOAD: usize = 3993;
const WEBPUSH_MAX_BODY_CHARS: usize = 1000;
const WEBPUSH_MAX_CIPHERTEXT: usize = 2000;

/// Why a device gets nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Skip {
    /// The pushkey cannot work (bad `default_payload`, incomplete Web Push keys): rejected.
    Reject(&'static str),
    /// Nothing to tell this device (no alert and no badge; `events_only` and no event).
    Nothing,
}

fn default_payload(device: &Device) -> Result<Map<String, Value>, Skip> {
    match device.data.as_ref().and_then(|d| d.get("default_payload")) {
        None => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(_) => Err(Skip::Reject("default_payload is not an object")),
    }
}

/// Takes `over` bytes off `s`, marking the cut with `…`; empties it when that cannot help.
fn shrink(s: &mut String, over: usize) {
    let shorter = shorten(s, s.len().saturating_sub(over));
    if shorter.len() < s.len() {
        *s = shorter;
    } else {
        s.clear();
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn size(v: &Map<String, Value>) -> usize {
    serde_json::to_vec(v)
        .expect("JSON values always serialise")
        .len()
}

// ---------------------------------------------------------------------------------------------
// APNs

pub fn apns(n: &Notification, device: &Device) -> Result<Map<String, Value>, Skip> {
    let defaults = default_payload(device)?;
    if n.event_id.is_some() && n.kind.is_none() {
        return Ok(event_id_only(n, defaults));
    }
    let alert = alert(n);
    let badge = match (n.counts.unread, n.counts.missed_calls) {
        (None, None) => None,
        (unread, missed) => Some(unread.unwrap_or(0) + missed.unwrap_or(0)),
    };
    if alert.is_none() && badge.is_none() {
        return Err(Skip::Nothing);
    }
    let mut payload = if n.kind.is_some() {
        defaults
    } else {
        Map::new()
    };
    let aps = payload
        .entry("aps")
        .or_insert_with(|| Value::Object(Map::new()));
    if !aps.is_object() {
        *aps = Value::Object(Map::new());
    }
    let aps = aps.as_object_mut().expect("made an object above");
    if let Some((key, args)) = &alert {
        let entry = aps
            .entry("alert")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let entry = entry.as_object_mut().expect("made an object above");
        entry.insert("loc-key".into(), json!(key));
        entry.insert("loc-args".into(), json!(args));
    }
    if let Some(badge) = badge {
        aps.insert("badge".into(), json!(badge));
    }
    if alert.is_some() {
        if let Some(room) = &n.room_id {
            payload.insert("room_id".into(), json!(room));
        }
        if let Some(event) = &n.event_id {
            payload.insert("event_id".into(), json!(event));
        }
    }
    fit_apns(&mut payload);
    Ok(payload)
}

fn event_id_only(n: &Notification, mut payload: Map<String, Value>) -> Map<String, Value> {
    if let Some(room) = &n.room_id {
        payload.insert("room_id".into(), json!(room));
    }
    if let Some(event) = &n.event_id {
        payload.insert("event_id".into(), json!(event));
    }
    if let Some(unread) = n.counts.unread {
        payload.insert("unread_count".into(), json!(unread));
    }
    if let Some(missed) = n.counts.missed_calls {
        payload.insert("missed_calls".into(), json!(missed));
    }
    payload
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// The localisation key and its arguments, by event type (Sygnal's keys, which the iOS apps
/// ship translations for).
fn alert(n: &Notification) -> Option<(&'static str, Vec<Option<String>>)> {
    let from = given(&n.sender_display_name)
        .or(given(&n.sender))
        .map_or(" ".to_string(), |s| cut(s, MAX_FIELD_BYTES));
    let room = || {
        n.room_name
            .as_deref()
            .or(n.room_alias.as_deref())
            .map(|r| cut(r, MAX_FIELD_BYTES))
    };
    match n.kind.as_deref()? {
        "m.room.message" | "m.room.encrypted" => {
            let content = n.content.as_ref();
            let msgtype = content
                .and_then(|c| c.get("msgtype"))
                .and_then(Value::as_str);
            let body = content.and_then(|c| c.get("body")).and_then(Value::as_str);
            let (text, action, image) = match (msgtype, body) {
                (Some("m.emote"), Some(b)) => (None, Some(b.to_string()), false),
                (Some(t), Some(b)) => (Some(b.to_string()), None, t == "m.image"),
                _ => (None, None, false),
            };
            let room = room();
            Some(match (room, image, text, action) {
                (Some(r), true, text, _) => {
                    ("IMAGE_FROM_USER_IN_ROOM", vec![Some(from), text, Some(r)])
                }
                (Some(r), false, Some(t), _) => (
                    "MSG_FROM_USER_IN_ROOM_WITH_CONTENT",
                    vec![Some(from), Some(r), Some(t)],
                ),
                (Some(r), false, None, Some(a)) => (
                    "ACTION_FROM_USER_IN_ROOM",
                    vec![Some(r), Some(from), Some(a)],
                ),
                (Some(r), false, None, None) => {
                    ("MSG_FROM_USER_IN_ROOM", vec![Some(from), Some(r)])
                }
                (None, true, text, _) => ("IMAGE_FROM_USER", vec![Some(from), text]),
                (None, false, Some(t), _) => {
                    ("MSG_FROM_USER_WITH_CONTENT", vec![Some(from), Some(t)])
                }
                (None, false, None, Some(a)) => ("ACTION_FROM_USER", vec![Some(from), Some(a)]),
                (None, false, None, None) => ("MSG_FROM_USER", vec![Some(from)]),
            })
        }
        "m.call.invite" => {
            let video = n
                .content
                .as_ref()
                .and_then(|c| c.get("offer"))
                .and_then(|o| o.get("sdp"))
                .and_then(Value::as_str)
                .is_some_and(|sdp| sdp.contains("m=video"));
            let key = if video {
                "VIDEO_CALL_FROM_USER"
            } else {
                "VOICE_CALL_FROM_USER"
            };
            Some((key, vec![Some(from)]))
        }
        "m.room.member" => {
            if n.user_is_target != Some(true) || n.membership.as_deref() != Some("invite") {
                return None;
            }
            Some(match room() {
                Some(r) => ("USER_INVITE_TO_NAMED_ROOM", vec![Some(from), Some(r)]),
                None => ("USER_INVITE_TO_CHAT", vec![Some(from)]),
            })
        }
        _ => Some(("MSG_FROM_USER", vec![Some(from)])),
    }
}

/// Cuts the longest alert argument until the payload fits APNs' limit, marking the cut
/// with `…`; gives up (the channel then refuses it) only if the arguments are all gone.
fn fit_apns(payload: &mut Map<String, Value>) {
    while size(payload) > APNS_MAX_PAYLOAD {
        let over = size(payload) - APNS_MAX_PAYLOAD;
        let Some(args) = payload
            .get_mut("aps")
            .and_then(|a| a.get_mut("alert"))
            .and_then(|a| a.get_mut("loc-args"))
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        let Some(longest) = args
            .iter_mut()
            .filter_map(|a| match a {
                Value::String(s) if !s.is_empty() => Some(s),
                _ => None,
            })
            .max_by_key(|s| s.len())
        else {
            return;
        };
        shrink(longest, over);
    }
}

// ---------------------------------------------------------------------------------------------
// FCM

pub fn fcm(n: &Notification, device: &Device) -> Result<Map<String, Value>, Skip> {
    let mut data = default_payload(device)?;
    let fields = [
        ("event_id", &n.event_id),
        ("type", &n.kind),
        ("sender", &n.sender),
        ("room_name", &n.room_name),
        ("room_alias", &n.room_alias),
        ("membership", &n.membership),
        ("sender_display_name", &n.sender_display_name),
        ("room_id", &n.room_id),
    ];
    for (key, value) in fields {
        if let Some(v) = value {
            data.insert(key.into(), json!(shorten(v, MAX_FIELD_BYTES)));
        }
    }
    if let Some(content) = &n.content {
        for (key, value) in content {
            if let Value::String(s) = value {
                data.insert(format!("content_{key}"), json!(shorten(s, MAX_FIELD_BYTES)));
            }
        }
    }
    data.insert(
        "prio".into(),
        json!(if n.low_priority { "normal" } else { "high" }),
    );
    if let Some(unread) = n.counts.unread {
        data.insert("unread".into(), json!(unread.to_string()));
    }
    if let Some(missed) = n.counts.missed_calls {
        data.insert("missed_calls".into(), json!(missed.to_string()));
    }
    fit_strings(
        &mut data,
        FCM_MAX_DATA,
        &["content_body", "content_formatted_body"],
    );
    Ok(data)
}

/// Shortens the named string fields, in order, until `payload` fits `limit`.
fn fit_strings(payload: &mut Map<String, Value>, limit: usize, fields: &[&str]) {
    for field in fields {
        let over = size(payload).saturating_sub(limit);
        if over == 0 {
            return;
        }
        if let Some(Value::String(s)) = payload.get_mut(*field) {
            shrink(s, over);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Web Push

/// A Web Push device's subscription, from its pushkey (the `p256dh` key, Sygnal's convention)
/// and `data.endpoint` + `data.auth`.
pub struct Subscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

pub fn subscription(device: &Device) -> Result<Subscription, Skip> {
    let data = device
        .data
        .as_ref()
        .ok_or(Skip::Reject("a Web Push pusher needs data"))?;
    match (data.get("endpoint"), data.get("auth")) {
        (Some(Value::String(endpoint)), Some(Value::String(auth))) => Ok(Subscription {
            endpoint: endpoint.clone(),
            p256dh: device.pushkey.clone(),
            auth: auth.clone(),
        }),
        _ => Err(Skip::Reject(
            "a Web Push pusher needs data.endpoint and data.auth",
        )),
    }
}

pub fn webpush(n: &Notification, device: &Device) -> Result<Map<String, Value>, Skip> {
    let flag = |key: &str| {
        device
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(Value::as_bool)
            == Some(true)
    };
    if flag("events_only") && n.event_id.is_none() {
        return Err(Skip::Nothing);
    }
    let mut payload = match device.data.as_ref().and_then(|d| d.get("default_payload")) {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    let fields = [
        ("room_id", &n.room_id),
        ("room_name", &n.room_name),
        ("room_alias", &n.room_alias),
        ("membership", &n.membership),
        ("event_id", &n.event_id),
        ("sender", &n.sender),
        ("sender_display_name", &n.sender_display_name),
        ("type", &n.kind),
    ];
    for (key, value) in fields {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            payload.insert(key.into(), json!(v));
        }
    }
    if n.user_is_target == Some(true) {
        payload.insert("user_is_target".into(), json!(true));
    }
    if let Some(unread) = n.counts.unread {
        payload.insert("unread".into(), json!(unread));
    }
    if let Some(missed) = n.counts.missed_calls {
        payload.insert("missed_calls".into(), json!(missed));
    }
    if let Some(content) = &n.content {
        let mut content = content.clone();
        // A web notification cannot show formatted text anyway.
        content.remove("formatted_body");
        if let Some(Value::String(body)) = content.get_mut("body")
            && body.chars().count() > WEBPUSH_MAX_BODY_CHARS
        {
            *body = format!(
                "{}…",
                body.chars()
                    .take(WEBPUSH_MAX_BODY_CHARS - 1)
                    .collect::<String>()
            );
        }
        if content
            .get("ciphertext")
            .and_then(Value::as_str)
            .is_some_and(|c| c.len() > WEBPUSH_MAX_CIPHERTEXT)
        {
            content.remove("ciphertext");
        }
        payload.insert("content".into(), Value::Object(content));
    }
    while size(&payload) > WEBPUSH_MAX_PAYLOAD {
        let over = size(&payload) - WEBPUSH_MAX_PAYLOAD;
        let Some(Value::String(body)) = payload.get_mut("content").and_then(|c| c.get_mut("body"))
        else {
            break;
        };
        if body.is_empty() {
            break;
        }
        shrink(body, over);
    }
    Ok(payload)
}

/// Web Push only: `only_last_per_room` asks the push service to keep the room's latest push.
pub fn webpush_collapse_key(n: &Notification, device: &Device) -> String {
    let last_only = device
        .data
        .as_ref()
        .and_then(|d| d.get("only_last_per_room"))
        .and_then(Value::as_bool)
        == Some(true);
    match (&n.room_id, last_only) {
        (Some(room), true) => format!("room:{room}"),
        _ => String::new(),
    }
}

#[cfg(test)]
#[path = "compose_tests.rs"]
mod tests;
