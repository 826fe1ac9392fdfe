//! The `/notify` request (Push Gateway API v1) read the way Sygnal reads it: only `devices` is
//! required; a field of the wrong type is the homeserver's mistake (`M_BAD_JSON`), a body that
//! is not JSON is `M_NOT_JSON`. Unknown fields are kept out of the way, never refused: the
//! spec grows and homeservers send what they have.

use serde_json::{Map, Value};

use super::error::MatrixError;

/// The spec caps a pusher's `pushkey` at 512 bytes; a longer one can never have been valid.
pub const MAX_PUSHKEY_BYTES: usize = 512;

#[derive(Debug, Default)]
pub struct Counts {
    pub unread: Option<u64>,
    pub missed_calls: Option<u64>,
}

#[derive(Debug)]
pub struct Device {
    pub app_id: String,
    pub pushkey: String,
    /// When the homeserver last saw the pushkey (unix seconds; 0 when not given): a provider
    /// that saw the token unregistered after this time means it is dead.
    pub pushkey_ts: i64,
    /// The pusher's `data` (minus `url`): `format`, `default_payload`, Web Push keys, …
    pub data: Option<Map<String, Value>>,
}

#[derive(Debug, Default)]
pub struct Notification {
    pub event_id: Option<String>,
    pub room_id: Option<String>,
    pub kind: Option<String>,
    pub sender: Option<String>,
    pub sender_display_name: Option<String>,
    pub room_name: Option<String>,
    pub room_alias: Option<String>,
    pub membership: Option<String>,
    pub user_is_target: Option<bool>,
    /// `prio: low` (default high).
    pub low_priority: bool,
    pub content: Option<Map<String, Value>>,
    pub counts: Counts,
    pub devices: Vec<Device>,
}

fn bad(message: impl Into<String>) -> MatrixError {
    MatrixError::bad_json(message)
}

fn text(raw: &Map<String, Value>, key: &str) -> Result<Option<String>, MatrixError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

fn count(raw: &Map<String, Value>, key: &str) -> Result<Option<u64>, MatrixError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("counts.{key} must be a non-negative integer"))),
    }
}

fn object<'a>(
    raw: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, MatrixError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(bad(format!("{key} must be an object"))),
    }
}

fn device(raw: &Value, at: usize) -> Result<Device, MatrixError> {
    let raw = raw
        .as_object()
        .ok_or_else(|| bad(format!("devices[{at}] must be an object")))?;
    let required = |key: &str| match raw.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(bad(format!(
            "devices[{at}].{key} must be a non-empty string"
        ))),
    };
    let app_id = required("app_id")?;
    let pushkey = required("pushkey")?;
    let pushkey_ts = match raw.get("pushkey_ts") {
        None | Some(Value::Null) => 0,
        Some(ts) => ts
            .as_i64()
            .ok_or_else(|| bad(format!("devices[{at}].pushkey_ts must be an integer")))?,
    };
    object(raw, "tweaks").map_err(|_| bad(format!("devices[{at}].tweaks must be an object")))?;
    let data = object(raw, "data")
        .map_err(|_| bad(format!("devices[{at}].data must be an object")))?
        .cloned();
    Ok(Device {
        app_id,
        pushkey,
        pushkey_ts,
        data,
    })
}

/// Reads a `/notify` body.
pub fn parse(body: &[u8], max_devices: usize) -> Result<Notification, MatrixError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| MatrixError::not_json())?;
    let notification = value
        .as_object()
        .and_then(|o| o.get("notification"))
        .and_then(Value::as_object)
        .ok_or_else(|| bad("expected an object in the notification key"))?;
    let devices = match notification.get("devices") {
        Some(Value::Array(devices)) => devices,
        _ => return Err(bad("expected a list in the devices key")),
    };
    if devices.is_empty() {
        return Err(bad("no devices in the notification"));
    }
    if devices.len() > max_devices {
        return Err(bad(format!(
            "at most {max_devices} devices per notification"
        )));
    }
    let counts = match object(notification, "counts")? {
        Some(raw) => Counts {
            unread: count(raw, "unread")?,
            missed_calls: count(raw, "missed_calls")?,
        },
        None => Counts::default(),
    };
    let low_priority = match text(notification, "prio")?.as_deref() {
        None | Some("high") => false,
        Some("low") => true,
        Some(_) => return Err(bad("prio must be high or low")),
    };
    let user_is_target = match notification.get("user_is_target") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("user_is_target must be a boolean")),
    };
    Ok(Notification {
        event_id: text(notification, "event_id")?,
        room_id: text(notification, "room_id")?,
        kind: text(notification, "type")?,
        sender: text(notification, "sender")?,
        sender_display_name: text(notification, "sender_display_name")?,
        room_name: text(notification, "room_name")?,
        room_alias: text(notification, "room_alias")?,
        membership: text(notification, "membership")?,
        user_is_target,
        low_priority,
        content: object(notification, "content")?.cloned(),
        counts,
        devices: devices
            .iter()
            .enumerate()
            .map(|(at, d)| device(d, at))
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_json(v: Value) -> Result<Notification, MatrixError> {
        parse(&serde_json::to_vec(&v).unwrap(), 20)
    }

    #[test]
    fn a_full_notification_reads_every_field() {
        let n = parse_json(json!({"notification": {
            "event_id": "$e", "room_id": "!r", "type": "m.room.message", "sender": "@a:x",
            "sender_display_name": "Ann", "room_name": "Ops", "prio": "low",
            "content": {"msgtype": "m.text", "body": "hi"}, "counts": {"unread": 3},
            "devices": [{"app_id": "im.app", "pushkey": "k", "pushkey_ts": 1, "data": {"format": "event_id_only"}, "tweaks": {}}]
        }}))
        .unwrap();
        assert_eq!(n.event_id.as_deref(), Some("$e"));
        assert!(n.low_priority);
        assert_eq!(n.counts.unread, Some(3));
        assert_eq!(n.counts.missed_calls, None);
        assert_eq!(
            n.devices[0].data.as_ref().unwrap()["format"],
            "event_id_only"
        );
    }

    #[test]
    fn wrong_types_and_missing_devices_are_bad_json() {
        for body in [
            json!({}),
            json!({"notification": []}),
            json!({"notification": {"devices": []}}),
            json!({"notification": {"devices": [{"app_id": "a"}]}}),
            json!({"notification": {"devices": [{"app_id": 1, "pushkey": "k"}]}}),
            json!({"notification": {"event_id": 5, "devices": [{"app_id": "a", "pushkey": "k"}]}}),
            json!({"notification": {"counts": {"unread": -1}, "devices": [{"app_id": "a", "pushkey": "k"}]}}),
            json!({"notification": {"prio": "urgent", "devices": [{"app_id": "a", "pushkey": "k"}]}}),
            json!({"notification": {"devices": [{"app_id": "a", "pushkey": "k", "data": "x"}]}}),
        ] {
            let e = parse_json(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.errcode, "M_BAD_JSON", "{body}");
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_not_json() {
        assert_eq!(parse(b"{nope", 20).unwrap_err().errcode, "M_NOT_JSON");
    }

    #[test]
    fn too_many_devices_are_refused() {
        let devices: Vec<Value> = (0..3)
            .map(|i| json!({"app_id": "a", "pushkey": format!("k{i}")}))
            .collect();
        let body = serde_json::to_vec(&json!({"notification": {"devices": devices}})).unwrap();
        assert_eq!(parse(&body, 2).unwrap_err().errcode, "M_BAD_JSON");
        assert_eq!(parse(&body, 3).unwrap().devices.len(), 3);
    }
}
