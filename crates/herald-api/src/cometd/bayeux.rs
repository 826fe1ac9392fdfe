//! Bayeux 1.0 on the wire: a body (or a WebSocket frame) is one message or an array of them;
//! every `/meta/*` reply echoes the request's `id`; errors are `code:args:message`.

use serde_json::{Map, Value, json};

/// One message as the client sent it.
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub id: Option<Value>,
    pub client_id: Option<String>,
    pub raw: Map<String, Value>,
}

impl Message {
    pub fn ext(&self) -> Option<&Map<String, Value>> {
        self.raw.get("ext").and_then(Value::as_object)
    }

    pub fn data(&self) -> Option<&Value> {
        self.raw.get("data")
    }

    /// The `advice.timeout` a connect asks for (`0`: answer at once).
    pub fn advice_timeout(&self) -> Option<u64> {
        self.raw.get("advice")?.get("timeout")?.as_u64()
    }

    /// A reply on this message's channel, echoing its id.
    pub fn reply(&self, successful: bool) -> Map<String, Value> {
        let mut reply = Map::new();
        reply.insert("channel".into(), json!(self.channel));
        if let Some(id) = &self.id {
            reply.insert("id".into(), id.clone());
        }
        if let Some(client) = &self.client_id {
            reply.insert("clientId".into(), json!(client));
        }
        reply.insert("successful".into(), json!(successful));
        reply
    }

    /// An unsuccessful reply with a Bayeux error string and, if given, advice.
    pub fn error(&self, error: &str, advice: Option<Value>) -> Value {
        let mut reply = self.reply(false);
        reply.insert("error".into(), json!(error));
        if let Some(advice) = advice {
            reply.insert("advice".into(), advice);
        }
        Value::Object(reply)
    }
}

/// Why a body could not be read as Bayeux messages.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Reads a body: one message object or a non-empty array of at most `max` of them.
pub fn parse(body: &[u8], max: usize) -> Result<Vec<Message>, Malformed> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Malformed("the body is not JSON"))?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return Err(Malformed("expected a message or an array of messages")),
    };
    if items.is_empty() || items.len() > max {
        return Err(Malformed("a batch holds 1 to the configured most messages"));
    }
    items
        .into_iter()
        .map(|item| {
            let Value::Object(raw) = item else {
                return Err(Malformed("every message is an object"));
            };
            let channel = match raw.get("channel") {
                Some(Value::String(c)) if c.starts_with('/') && c.len() <= 256 => c.clone(),
                _ => return Err(Malformed("every message needs a channel")),
            };
            let id = raw
                .get("id")
                .filter(|v| v.is_string() || v.is_number())
                .cloned();
            let client_id = raw
                .get("clientId")
                .and_then(Value::as_str)
                .map(str::to_string);
            Ok(Message {
                channel,
                id,
                client_id,
                raw,
            })
        })
        .collect()
}

/// The reply to a body that is not Bayeux: one unsuccessful message, so a client sees why.
pub fn malformed(why: &Malformed) -> Value {
    json!({"channel": "/meta/unsuccessful", "successful": false, "error": format!("400::{}", why.0)})
}

/// Advice telling the client to start over with a handshake.
pub fn rehandshake() -> Value {
    json!({"reconnect": "handshake", "interval": 0})
}

/// A delivery: a message on `channel` carrying `data`, never `successful`.
pub fn delivery(channel: &str, data: Value) -> Value {
    json!({"channel": channel, "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_or_an_array_is_read_and_ids_are_echoed() {
        let one = parse(br#"{"channel":"/meta/handshake","id":"7"}"#, 10).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(Value::Object(one[0].reply(true))["id"], "7");
        let many = parse(
            br#"[{"channel":"/a","id":1},{"channel":"/b","clientId":"c"}]"#,
            10,
        )
        .unwrap();
        assert_eq!(many[1].client_id.as_deref(), Some("c"));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            &b"nope"[..],
            b"[]",
            b"5",
            br#"[{"id":1}]"#,
            br#"[1]"#,
            br#"{"channel":"x"}"#,
        ] {
            assert!(
                parse(body, 10).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse(br#"[{"channel":"/a"},{"channel":"/b"}]"#, 1).is_err());
    }
}
