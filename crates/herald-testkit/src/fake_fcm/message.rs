//! The checks FCM makes on a message.

use serde_json::{Map, Value};

use super::*;

/// The checks FCM makes on a message; `Err` says what is wrong.
pub fn check_message(message: &Value) -> Result<(), String> {
    let Some(m) = message.as_object() else {
        return Err("message must be an object".into());
    };
    check_target(m)?;
    if let Some(data) = m.get("data") {
        check_data(data)?;
    }
    if let Some(android) = m.get("android") {
        check_android(android)?;
    }
    if let Some(apns) = m.get("apns") {
        check_apns(apns)?;
    }
    check_size(m)
}

/// Exactly one target; a token is a string.
fn check_target(m: &Map<String, Value>) -> Result<(), String> {
    let targets = ["token", "topic", "condition"]
        .iter()
        .filter(|t| m.contains_key(**t))
        .count();
    if targets != 1 {
        return Err("exactly one of token, topic and condition must be set".into());
    }
    if m.get("token").is_some_and(|t| !t.is_string()) {
        return Err("token must be a string".into());
    }
    Ok(())
}

/// `data`: a map of strings without reserved keys.
fn check_data(data: &Value) -> Result<(), String> {
    let data = data.as_object().ok_or("data must be a map")?;
    for (k, v) in data {
        if !v.is_string() {
            return Err(format!(
                "Invalid value at 'message.data[{k}].value' (TYPE_STRING)"
            ));
        }
        let lower = k.to_ascii_lowercase();
        if lower == "from"
            || lower == "message_type"
            || lower.starts_with("google")
            || lower.starts_with("gcm")
        {
            return Err(format!("Invalid data payload key: {k}"));
        }
    }
    Ok(())
}

/// `android`: the priority, the TTL (at most four weeks), the notification's count and tag.
fn check_android(android: &Value) -> Result<(), String> {
    if let Some(p) = android.get("priority")
        && !matches!(p.as_str(), Some("NORMAL" | "HIGH"))
    {
        return Err("Invalid value at 'message.android.priority'".into());
    }
    if let Some(ttl) = android.get("ttl") {
        let seconds = ttl
            .as_str()
            .and_then(|t| t.strip_suffix('s'))
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            .and_then(|t| t.parse::<f64>().ok())
            .ok_or("Invalid value at 'message.android.ttl' (Duration)")?;
        if seconds > MAX_TTL_S {
            return Err("message.android.ttl is longer than four weeks".into());
        }
    }
    if let Some(n) = android.get("notification") {
        if n.get("notification_count").is_some_and(|c| !c.is_i64()) {
            return Err(
                "Invalid value at 'message.android.notification.notification_count'".into(),
            );
        }
        if n.get("tag").is_some_and(|t| !t.is_string()) {
            return Err("Invalid value at 'message.android.notification.tag'".into());
        }
    }
    Ok(())
}

/// `apns`: string headers, and priority 5 for data-only messages.
fn check_apns(apns: &Value) -> Result<(), String> {
    if let Some(headers) = apns.get("headers") {
        let headers = headers.as_object().ok_or("apns.headers must be a map")?;
        if headers.values().any(|v| !v.is_string()) {
            return Err("apns.headers values must be strings".into());
        }
    }
    let aps = &apns["payload"]["aps"];
    let data_only = aps.get("alert").is_none() && aps.get("sound").is_none();
    let priority = apns["headers"]["apns-priority"].as_str().unwrap_or("10");
    if data_only && priority != "5" {
        return Err("Only apns-priority 5 is allowed for data-only messages to iOS".into());
    }
    Ok(())
}

/// At most [`MAX_MESSAGE_BYTES`] without the target.
fn check_size(m: &Map<String, Value>) -> Result<(), String> {
    let mut sized = m.clone();
    for t in ["token", "topic", "condition"] {
        sized.remove(t);
    }
    let size = serde_json::to_vec(&sized).expect("JSON").len();
    if size > MAX_MESSAGE_BYTES {
        return Err(format!(
            "Message is too big ({size} bytes; the limit is 4096)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_checks_follow_fcm() {
        assert!(check_message(&json!({"token": "t", "data": {"a": "b"}})).is_ok());
        assert!(
            check_message(&json!({"data": {"a": "b"}})).is_err(),
            "no target"
        );
        assert!(
            check_message(&json!({"token": "t", "topic": "x"})).is_err(),
            "two targets"
        );
        assert!(check_message(&json!({"token": "t", "data": {"a": 1}})).is_err());
        assert!(check_message(&json!({"token": "t", "data": {"google.x": "1"}})).is_err());
        assert!(check_message(&json!({"token": "t", "android": {"ttl": "12"}})).is_err());
        assert!(
            check_message(&json!({"token": "t", "android": {"ttl": "3.5s", "priority": "HIGH"}}))
                .is_ok()
        );
        assert!(check_message(&json!({"token": "t", "android": {"priority": "high"}})).is_err());
        assert!(
            check_message(&json!({"token": "t", "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"content-available": 1}}}}))
                .is_err()
        );
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        assert!(check_message(&json!({"token": "t", "data": {"a": big}})).is_err());
    }
}
