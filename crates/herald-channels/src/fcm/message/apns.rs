//! The `apns` block of a message to an iOS device on FCM: headers and `payload.aps`.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Parts, Shape};

/// Apple: `apns-collapse-id` may not exceed 64 bytes.
pub const MAX_COLLAPSE_ID: usize = 64;
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

impl Parts<'_> {
    pub(super) fn apns(&self) -> Value {
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
                self.alert_aps(&mut aps);
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

    /// `aps` of a visible push: the alert, badge, sound, thread and `mutable-content`.
    fn alert_aps(&self, aps: &mut Map<String, Value>) {
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
        aps.insert("badge".into(), json!(self.push.badge));
        aps.insert("sound".into(), json!("default"));
        if let Some(c) = &self.push.conversation_id {
            aps.insert("thread-id".into(), json!(c.to_string()));
        }
        // Lets the app's notification service extension decorate the push (or fetch
        // the content of a metadata-only one).
        aps.insert("mutable-content".into(), json!(1));
    }
}
