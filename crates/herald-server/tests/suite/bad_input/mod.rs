//! Files: `table.rs` (the rows and how each is checked), then one per surface: `events.rs`,
//! `devices.rs`, `apps.rs`, `conversations.rs`, `size_limit.rs`, `credentials.rs`, `routing.rs`,
//! `idempotency.rs`, `live.rs`. This file holds the bodies and look-ups they share.
//!
//! Bad input (SPEC §2, §4 "Bad input"): every endpoint rejects malformed, oversized and hostile
//! input with a clear 4xx problem document — never a 5xx — and changes nothing.
//!
//! Each surface has one table. Every row is checked in full (status, `application/problem+json`,
//! `code`, `type`, and for 422 the field path), and all rows are run before the test fails, so a
//! failure lists every row that misbehaved. After the table, the test shows nothing changed.

mod apps;
mod conversations;
mod credentials;
mod devices;
mod events;
mod idempotency;
mod live;
mod routing;
mod size_limit;
mod table;

use herald_testkit::TestHub;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OPERATOR_KEY: &str = "op-key-0123456789abcdef";
/// A value that stands for a secret: no response may ever echo it.
const MARKER: &str = "s3cr3t-marker-5581";
/// A tenant HS256 secret for client tokens the test signs itself (expired, for one).
const CLIENT_SECRET: &str = "client-signing-secret-0123456789abcdef";

// ---------------------------------------------------------------------------------------------
// Bodies.

fn message(event_id: &str, conversation: &str, text: &str) -> Value {
    json!({
        "event_id": event_id, "conversation_id": conversation, "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "agent-1", "role": "agent", "name": "Ann"}, "text": text
    })
}

fn read_event(event_id: &str, conversation: &str, reader: &str, position: u64) -> Value {
    json!({
        "event_id": event_id, "conversation_id": conversation, "type": "message.read",
        "occurred_at": "2026-11-23T10:00:00Z", "reader_id": reader, "position": position
    })
}

/// `value` with `key` set (top level).
fn set(mut value: Value, key: &str, to: Value) -> Value {
    value[key] = to;
    value
}

/// `value` without `key` (top level).
fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().expect("an object").remove(key);
    value
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    format!("{}{}", open.repeat(depth), close.repeat(depth)).into_bytes()
}

const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

fn webpush_device() -> Value {
    json!({
        "app_id": "app1", "channel": "webpush", "platform": "web",
        "subscription": {"endpoint": "https://push.example.net/sub/1", "keys": {"p256dh": P256DH, "auth": AUTH}}
    })
}

fn apns_device() -> Value {
    json!({"app_id": "app1", "channel": "apns", "token": "a1b2c3d4e5f60718", "platform": "ios", "locale": "en-GB"})
}

fn apns_section(private_key: &str) -> Value {
    json!({"team_id": "ABCDE12345", "key_id": "KEY1234567", "private_key": private_key, "topic": "com.example.app"})
}

async fn last_position(hub: &TestHub, conversation: &str) -> Option<u64> {
    let (status, body) = hub
        .get(&format!("/v1/conversations/{conversation}"), &hub.key)
        .await;
    match status {
        StatusCode::NOT_FOUND => None,
        StatusCode::OK => Some(body["last_position"].as_u64().expect("last_position")),
        other => panic!("GET conversation {conversation}: {other} {body}"),
    }
}

async fn transcript(hub: &TestHub, conversation: &str) -> Vec<Value> {
    let (status, body) = hub
        .get(
            &format!("/v1/conversations/{conversation}/events"),
            &hub.key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().expect("events").clone()
}

async fn json_list(hub: &TestHub, path: &str, auth: &str) -> Vec<Value> {
    let (status, body) = hub.get(path, auth).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body.as_array()
        .unwrap_or_else(|| panic!("GET {path} is a list: {body}"))
        .clone()
}
