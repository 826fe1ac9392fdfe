//! The `android` block of a message to an Android (or any non-iOS) device.

use serde_json::{Map, Value, json};

use super::{Parts, Shape};

impl Parts<'_> {
    pub(super) fn android(&self) -> Value {
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
}
