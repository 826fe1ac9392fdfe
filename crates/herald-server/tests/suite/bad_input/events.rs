//! POST /v1/events.

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::table::*;
use super::*;

#[tokio::test]
async fn bad_events_are_refused_with_the_field_named_and_nothing_is_stored() {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    // A conversation to aim reads at: alice joins (1), an agent writes (2).
    let (status, body) = hub
        .put(
            "/v1/conversations/c-read/participants/alice",
            &hub.key,
            json!({"role": "visitor"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.events(message("setup-1", "c-read", "hello alice"))
        .await;
    assert_eq!(last_position(&hub, "c-read").await, Some(2));
    let (_, before) = hub.get("/v1/conversations/c-read", &hub.key).await;
    let unread_before = hub.get("/v1/users/alice/unread", &hub.key).await.1;
    assert_eq!(unread_before["total"], 1, "{unread_before}");

    let post = |what: &str| bad(what, Method::POST, "/v1/events", Cred::Key);
    let ok = message("e1", "c1", "hello");
    let many: Vec<Value> = (0..1001)
        .map(|i| message(&format!("b{i}"), "c1", "x"))
        .collect();
    let attachments: Vec<Value> = (0..21)
        .map(|i| json!({"name": format!("f{i}.png")}))
        .collect();
    let deep = String::from_utf8(nested(10_000, "[", "]")).expect("ascii");
    let deep_inside = format!(
        r#"{{"event_id":"e1","conversation_id":"c1","type":"notice.custom","occurred_at":"2026-11-23T10:00:00Z","data":{deep}}}"#
    );
    let rows = vec![
        // Not JSON, or not the JSON it should be.
        post("malformed JSON").raw("application/json", r#"{"event_id": "e1","#).malformed(),
        post("not JSON at all").raw("application/json", "hello").malformed(),
        post("trailing garbage after the JSON").raw("application/json", format!("{ok} {{}}")).malformed(),
        post("invalid UTF-8").raw("application/json", b"{\"text\": \"\xff\xfe\"}".to_vec()).malformed(),
        post("empty body").raw("application/json", "").malformed(),
        post("10,000-deep nested arrays").raw("application/json", nested(10_000, "[", "]")).rejected(),
        post("10,000-deep nested objects").raw("application/json", nested(10_000, "{\"a\":", "}")).rejected(),
        post("10,000-deep nesting inside an event").raw("application/json", deep_inside).rejected(),
        post("a JSON string, not an object or array").json(json!("hello")).invalid(""),
        post("a JSON number, not an object or array").json(json!(42)).invalid(""),
        post("JSON null").json(Value::Null).invalid(""),
        // Wrong content type.
        post("text/plain content type").raw("text/plain", ok.to_string()).unsupported(),
        post("form content type").raw("application/x-www-form-urlencoded", "event_id=e1").unsupported(),
        bad("no content type", Method::POST, "/v1/events", Cred::Key).unsupported(),
        // The envelope.
        post("unknown event type").json(set(ok.clone(), "type", json!("message.exploded"))).invalid("type"),
        post("missing type").json(without(ok.clone(), "type")).invalid("type"),
        post("missing event_id").json(without(ok.clone(), "event_id")).invalid("event_id"),
        post("missing conversation_id").json(without(ok.clone(), "conversation_id")).invalid("conversation_id"),
        post("occurred_at is not a time").json(set(ok.clone(), "occurred_at", json!("yesterday"))).invalid("occurred_at"),
        post("occurred_at is a number").json(set(ok.clone(), "occurred_at", json!(1_764_000_000))).invalid("occurred_at"),
        post("conversation_id with a space").json(set(ok.clone(), "conversation_id", json!("c 1"))).invalid("conversation_id"),
        post("event_id with a slash").json(set(ok.clone(), "event_id", json!("e/1"))).invalid("event_id"),
        post("event_id of 200 characters").json(set(ok.clone(), "event_id", json!("e".repeat(200)))).invalid("event_id"),
        post("empty event_id").json(set(ok.clone(), "event_id", json!(""))).invalid("event_id"),
        // The type's own fields.
        post("unknown field").json(set(ok.clone(), "colour", json!("red"))).invalid("colour"),
        post("missing sender").json(without(ok.clone(), "sender")).invalid("sender"),
        post("unknown sender role").json(set(ok.clone(), "sender", json!({"id": "agent-1", "role": "boss"}))).invalid("sender.role"),
        post("sender id of 200 characters").json(set(ok.clone(), "sender", json!({"id": "a".repeat(200), "role": "agent"}))).invalid("sender.id"),
        post("text is not a string").json(set(ok.clone(), "text", json!(["hello"]))).invalid("text"),
        post("text over 32 KiB").json(set(ok.clone(), "text", json!("x".repeat(32 * 1024 + 1)))).invalid("text"),
        post("text with a NUL character").json(set(ok.clone(), "text", json!("a\u{0}b"))).invalid("text"),
        post("21 attachments").json(set(ok.clone(), "attachments", json!(attachments))).invalid("attachments"),
        post("call.declined without by")
            .json(json!({"event_id": "e1", "conversation_id": "c1", "type": "call.declined", "occurred_at": "2026-11-23T10:00:00Z", "call_id": "k1"}))
            .invalid("by"),
        post("participant.joined with an unknown role")
            .json(json!({"event_id": "e1", "conversation_id": "c1", "type": "participant.joined", "occurred_at": "2026-11-23T10:00:00Z",
                         "participant": {"user_id": "u1", "role": "boss"}}))
            .invalid("participant.role"),
        // Batches.
        post("a batch over max_batch_events").json(json!(many)).invalid("events"),
        post("an empty batch").json(json!([])).invalid("events"),
        post("an empty events list").json(json!({"events": []})).invalid("events"),
        post("events is not an array").json(json!({"events": {"event_id": "e1"}})).invalid("events"),
        post("events beside another field").json(json!({"events": [ok.clone()], "extra": 1})).invalid("events"),
        post("batch: event 2 has oversized text")
            .json(json!([message("b-1", "c1", "first"), message("b-2", "c1", &"x".repeat(32 * 1024 + 1))]))
            .invalid("events[1].text"),
        post("batch: event 2 has an unknown sender role")
            .json(json!([message("b-3", "c1", "first"), set(message("b-4", "c1", "second"), "sender", json!({"id": "a", "role": "boss"}))]))
            .invalid("events[1].sender.role"),
        post("batch: event 2 is a read by a non-participant").json(json!([message("b-5", "c1", "first"), read_event("b-6", "c1", "mallory", 1)])).invalid("events[1].reader_id"),
        post("batch: event 2 is not an object").json(json!([message("b-7", "c1", "first"), "second"])).invalid("events[1]"),
        // Impossible in the conversation's state.
        post("message.read by a non-participant").json(read_event("r-1", "c-read", "mallory", 1)).invalid("reader_id"),
        post("message.read beyond the transcript").json(read_event("r-2", "c-read", "alice", 99)).invalid("position"),
        post("message.read with a negative position")
            .json(json!({"event_id": "r-3", "conversation_id": "c-read", "type": "message.read", "occurred_at": "2026-11-23T10:00:00Z", "reader_id": "alice", "position": -1}))
            .invalid("position"),
    ];
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed.
    assert_eq!(
        last_position(&hub, "c1").await,
        None,
        "no bad event created conversation c1 (batches are all or nothing)"
    );
    assert_eq!(
        last_position(&hub, "c-read").await,
        Some(2),
        "no bad read was appended to c-read"
    );
    // Same participants (no mallory), same read positions and unread counts.
    let (_, after) = hub.get("/v1/conversations/c-read", &hub.key).await;
    assert_eq!(after, before);
    assert_eq!(
        hub.get("/v1/users/alice/unread", &hub.key).await.1,
        unread_before
    );
    assert_eq!(transcript(&hub, "c-read").await.len(), 2);
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        json_list(&hub, "/v1/users/alice/devices", &hub.key).await,
        Vec::<Value>::new()
    );
    // The ids the refused events used are still free.
    let accepted = hub
        .events(json!([
            message("b-1", "c1", "first"),
            message("e1", "c1", "hello")
        ]))
        .await;
    assert_eq!(accepted["results"][0]["position"], 1, "{accepted}");
    assert_eq!(accepted["results"][0]["duplicate"], false, "{accepted}");
    assert_eq!(accepted["results"][1]["position"], 2, "{accepted}");
}
