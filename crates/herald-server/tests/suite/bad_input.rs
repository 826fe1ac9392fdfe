//! Bad input (SPEC §2, §4 "Bad input"): every endpoint rejects malformed, oversized and hostile
//! input with a clear 4xx problem document — never a 5xx — and changes nothing.
//!
//! Each surface has one table. Every row is checked in full (status, `application/problem+json`,
//! `code`, `type`, and for 422 the field path), and all rows are run before the test fails, so a
//! failure lists every row that misbehaved. After the table, the test shows nothing changed.

use futures_util::{SinkExt, StreamExt};
use herald_testkit::{PATIENCE, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const OPERATOR_KEY: &str = "op-key-0123456789abcdef";
/// A value that stands for a secret: no response may ever echo it.
const MARKER: &str = "s3cr3t-marker-5581";
/// A tenant HS256 secret for client tokens the test signs itself (expired, for one).
const CLIENT_SECRET: &str = "client-signing-secret-0123456789abcdef";

// ---------------------------------------------------------------------------------------------
// The table machinery.

/// Which credential a row sends.
#[derive(Clone)]
enum Cred {
    None,
    /// The default tenant's server key.
    Key,
    /// A client token for `alice` of the default tenant.
    Token,
    /// The operator key.
    Operator,
    /// This exact `Authorization` header value.
    Header(String),
}

/// The credentials a table runs with.
struct Creds {
    key: String,
    token: String,
    operator: Option<String>,
}

impl Creds {
    async fn of(hub: &TestHub) -> Creds {
        Creds {
            key: hub.key.clone(),
            token: hub.token("alice").await,
            operator: None,
        }
    }

    fn header(&self, cred: &Cred) -> Option<String> {
        match cred {
            Cred::None => None,
            Cred::Key => Some(format!("Bearer {}", self.key)),
            Cred::Token => Some(format!("Bearer {}", self.token)),
            Cred::Operator => Some(format!(
                "Bearer {}",
                self.operator.as_deref().unwrap_or(OPERATOR_KEY)
            )),
            Cred::Header(h) => Some(h.clone()),
        }
    }
}

/// `Bad::status` for rows that accept any 4xx.
const ANY_4XX: u16 = 0;

/// One bad request and the problem it must get.
struct Bad {
    what: String,
    method: Method,
    path: String,
    cred: Cred,
    content_type: Option<String>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// For 422: `errors[0].path`.
    field: Option<String>,
}

fn bad(what: impl Into<String>, method: Method, path: impl Into<String>, cred: Cred) -> Bad {
    Bad {
        what: what.into(),
        method,
        path: path.into(),
        cred,
        content_type: None,
        body: vec![],
        status: 0,
        code: "",
        field: None,
    }
}

impl Bad {
    fn json(self, body: Value) -> Self {
        self.raw("application/json", body.to_string())
    }

    fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type.to_string());
        self.body = body.into();
        self
    }

    fn is(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    /// 422 `validation_failed` naming `field` (`""` = the body as a whole).
    fn invalid(self, field: &str) -> Self {
        let mut row = self.is(422, "validation_failed");
        row.field = Some(field.to_string());
        row
    }

    /// Hostile input where any clear 4xx problem will do (e.g. 400 or 422), as long as it is not
    /// a 5xx, a crash or a success.
    fn rejected(self) -> Self {
        self.is(ANY_4XX, "")
    }

    fn malformed(self) -> Self {
        self.is(400, "malformed_request")
    }

    fn unsupported(self) -> Self {
        self.is(415, "unsupported_media_type")
    }

    fn too_large(self) -> Self {
        self.is(413, "payload_too_large")
    }

    fn unauthorized(self) -> Self {
        self.is(401, "unauthorized")
    }

    fn not_found(self) -> Self {
        self.is(404, "not_found")
    }

    fn not_allowed(self) -> Self {
        self.is(405, "method_not_allowed")
    }
}

/// Runs every row; fails once at the end listing every row that was not refused as it should be.
async fn refuse_all(hub: &TestHub, creds: &Creds, rows: Vec<Bad>) {
    assert!(!rows.is_empty());
    let mut failures = vec![];
    for row in &rows {
        if let Err(why) = check(hub, creds, row).await {
            failures.push(format!(
                "  - {} ({} {}): {why}",
                row.what,
                row.method,
                shorten(&row.path)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad requests were not refused as they should be:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

async fn check(hub: &TestHub, creds: &Creds, row: &Bad) -> Result<(), String> {
    let mut request = hub.http.request(row.method.clone(), hub.url(&row.path));
    let auth = creds.header(&row.cred);
    if let Some(auth) = &auth {
        request = request.header("authorization", auth);
    }
    if let Some(content_type) = &row.content_type {
        request = request.header("content-type", content_type);
    }
    if !row.body.is_empty() {
        request = request.body(row.body.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response
        .text()
        .await
        .map_err(|e| format!("body unreadable: {e}"))?;
    let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let shown = || format!("got {status} {content_type} {}", shorten(&text));
    if status.is_server_error() {
        return Err(format!("a server error for bad input; {}", shown()));
    }
    let (expected_status, expected_code) = if row.status == ANY_4XX {
        if !status.is_client_error() {
            return Err(format!("expected a 4xx; {}", shown()));
        }
        (
            status.as_u16(),
            problem["code"].as_str().unwrap_or("(none)"),
        )
    } else {
        (row.status, row.code)
    };
    if status.as_u16() != expected_status {
        return Err(format!(
            "expected {expected_status} {expected_code}; {}",
            shown()
        ));
    }
    if !content_type.starts_with("application/problem+json") {
        return Err(format!("not application/problem+json; {}", shown()));
    }
    if problem["code"] != expected_code {
        return Err(format!("expected code {expected_code}; {}", shown()));
    }
    if problem["type"] != format!("urn:herald:problem:{expected_code}")
        || problem["status"] != expected_status
        || !problem["title"].is_string()
        || !problem["detail"].is_string()
    {
        return Err(format!(
            "incomplete problem document (type, title, status, detail); {}",
            shown()
        ));
    }
    if let Some(field) = &row.field
        && problem["errors"][0]["path"] != field.as_str()
    {
        return Err(format!("expected errors[0].path {field:?}; {}", shown()));
    }
    if text.contains(MARKER) {
        return Err(format!(
            "the response echoes a submitted secret; {}",
            shown()
        ));
    }
    if let Some(auth) = &auth {
        let credential = auth.split_once(' ').map_or(auth.as_str(), |(_, c)| c);
        if credential.len() >= 16 && text.contains(credential) {
            return Err(format!("the response echoes the credential; {}", shown()));
        }
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    if s.len() <= 300 {
        s.to_string()
    } else {
        format!("{}… ({} bytes)", &s[..s.floor_char_boundary(300)], s.len())
    }
}

/// A request outside a table, asserting a problem document; answers the problem.
async fn problem(
    hub: &TestHub,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> Value {
    let mut request = hub.http.request(method.clone(), hub.url(path));
    if let Some(auth) = auth {
        request = request.bearer_auth(auth);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let got = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{method} {path}: {text}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{method} {path}: content-type {content_type}"
    );
    serde_json::from_str(&text).expect("a problem document is JSON")
}

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

// ---------------------------------------------------------------------------------------------
// POST /v1/events

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

// ---------------------------------------------------------------------------------------------
// POST /v1/me/devices, DELETE /v1/me/devices…

#[tokio::test]
async fn bad_device_registrations_are_refused_with_the_field_named_and_nothing_is_registered() {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    let (status, body) = hub
        .put("/v1/apps/app1", &hub.key, json!({"name": "App one"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let register = |what: &str| bad(what, Method::POST, "/v1/me/devices", Cred::Token);
    let apns = apns_device();
    let webpush = webpush_device();
    let keys = |p256dh: &str, auth: &str| json!({"endpoint": "https://push.example.net/sub/1", "keys": {"p256dh": p256dh, "auth": auth}});
    let rows = vec![
        register("malformed JSON")
            .raw("application/json", "{\"app_id\": ")
            .malformed(),
        register("10,000-deep nested arrays")
            .raw("application/json", nested(10_000, "[", "]"))
            .rejected(),
        register("10,000-deep nested objects")
            .raw("application/json", nested(10_000, "{\"app_id\":", "}"))
            .rejected(),
        register("text/plain content type")
            .raw("text/plain", apns.to_string())
            .unsupported(),
        register("a JSON number").json(json!(42)).invalid(""),
        register("unknown field")
            .json(set(apns.clone(), "colour", json!("red")))
            .invalid("colour"),
        register("apns token is not hex")
            .json(set(apns.clone(), "token", json!("not-hex-at-all!")))
            .invalid("token"),
        register("apns token of odd length")
            .json(set(apns.clone(), "token", json!("abc")))
            .invalid("token"),
        register("apns token empty")
            .json(set(apns.clone(), "token", json!("")))
            .invalid("token"),
        register("apns without a token")
            .json(without(apns.clone(), "token"))
            .invalid("token"),
        register("apns with a subscription as well as a token")
            .json(set(apns.clone(), "subscription", keys(P256DH, AUTH)))
            .invalid("token"),
        register("webpush without a subscription")
            .json(without(webpush.clone(), "subscription"))
            .invalid("subscription"),
        register("webpush with a token instead of a subscription")
            .json(set(
                without(webpush.clone(), "subscription"),
                "token",
                json!("abcdef"),
            ))
            .invalid("subscription"),
        register("webpush with both a token and a subscription")
            .json(set(webpush.clone(), "token", json!("abcdef")))
            .invalid("subscription"),
        register("p256dh of the wrong length")
            .json(set(
                webpush.clone(),
                "subscription",
                keys("BCVxsr7N_eNgVRqvHtD0zQ", AUTH),
            ))
            .invalid("subscription.keys.p256dh"),
        register("p256dh not base64url")
            .json(set(
                webpush.clone(),
                "subscription",
                keys("!!!not base64!!!", AUTH),
            ))
            .invalid("subscription.keys.p256dh"),
        register("auth secret of the wrong length")
            .json(set(
                webpush.clone(),
                "subscription",
                keys(P256DH, "c2hvcnQ"),
            ))
            .invalid("subscription.keys.auth"),
        register("subscription endpoint is not a URL")
            .json(set(
                webpush.clone(),
                "subscription",
                json!({"endpoint": "not a url", "keys": {"p256dh": P256DH, "auth": AUTH}}),
            ))
            .invalid("subscription.endpoint"),
        register("subscription keys missing")
            .json(set(
                webpush.clone(),
                "subscription",
                json!({"endpoint": "https://push.example.net/x"}),
            ))
            .invalid("subscription.keys"),
        register("unknown app_id")
            .json(set(apns.clone(), "app_id", json!("no-such-app")))
            .invalid("app_id"),
        register("app_id with a space")
            .json(set(apns.clone(), "app_id", json!("app 1")))
            .invalid("app_id"),
        register("unknown channel")
            .json(set(apns.clone(), "channel", json!("pigeon")))
            .invalid("channel"),
        register("unknown platform")
            .json(set(apns.clone(), "platform", json!("toaster")))
            .invalid("platform"),
        register("missing platform")
            .json(without(apns.clone(), "platform"))
            .invalid("platform"),
        register("locale with a space")
            .json(set(apns.clone(), "locale", json!("en GB")))
            .invalid("locale"),
        register("installation_id of 300 characters")
            .json(set(apns.clone(), "installation_id", json!("i".repeat(300))))
            .invalid("installation_id"),
        register("connector token over 4 KiB")
            .json(set(
                set(apns.clone(), "channel", json!("connector")),
                "token",
                json!("t".repeat(4097)),
            ))
            .invalid("token"),
        bad(
            "deregister by an empty token",
            Method::DELETE,
            "/v1/me/devices?token=",
            Cred::Token,
        )
        .invalid("token"),
        bad(
            "deregister without a token",
            Method::DELETE,
            "/v1/me/devices",
            Cred::Token,
        )
        .malformed(),
        bad(
            "deregister a device id with a space",
            Method::DELETE,
            "/v1/me/devices/dev%201",
            Cred::Token,
        )
        .invalid("device_id"),
        bad(
            "deregister a device that does not exist",
            Method::DELETE,
            "/v1/me/devices/dev_nope",
            Cred::Token,
        )
        .not_found(),
        bad(
            "server deregister of a device id with a slash",
            Method::DELETE,
            "/v1/users/alice/devices/a%2Fb",
            Cred::Key,
        )
        .invalid("device_id"),
        bad(
            "devices of a user id with a space",
            Method::GET,
            "/v1/users/al%20ice/devices",
            Cred::Key,
        )
        .invalid("user_id"),
    ];
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed.
    assert_eq!(
        json_list(&hub, "/v1/users/alice/devices", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        json_list(&hub, "/v1/me/devices", &creds.token).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        vec![json!("app1")]
    );
    // The bodies the rows were made from are good: each row failed for its own reason.
    let (status, body) = hub.post("/v1/me/devices", &creds.token, apns).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = hub.post("/v1/me/devices", &creds.token, webpush).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

// ---------------------------------------------------------------------------------------------
// PUT /v1/apps/{app_id}

#[tokio::test]
async fn bad_app_documents_are_refused_with_the_field_named_and_nothing_is_stored() {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    let put = |what: &str| bad(what, Method::PUT, "/v1/apps/app1", Cred::Key);
    let not_a_pem = format!("-----BEGIN PRIVATE KEY-----\n{MARKER}\n-----END PRIVATE KEY-----\n");
    let webhook = |url: &str, secret: &str| json!({"webhooks": [{"id": "w1", "url": url, "events": ["push_notification.new_message"], "secrets": [secret]}]});
    let rows = vec![
        put("malformed JSON").raw("application/json", "{\"name\": \"x\"").malformed(),
        put("10,000-deep nested objects").raw("application/json", nested(10_000, "{\"a\":", "}")).rejected(),
        put("10,000-deep nested arrays").raw("application/json", nested(10_000, "[", "]")).rejected(),
        put("text/plain content type").raw("text/plain", "{}").unsupported(),
        put("a JSON array, not an object").json(json!([1, 2])).invalid(""),
        put("a JSON string, not an object").json(json!("app")).invalid(""),
        put("unknown top-level key").json(json!({"name": "x", "colour": "red"})).invalid("colour"),
        put("name is not a string").json(json!({"name": 7})).invalid("name"),
        put("unknown key in rules").json(json!({"rules": {"colour": "red"}})).invalid("rules.colour"),
        put("filter with a non-event type").json(json!({"rules": {"filter": ["message.exploded"]}})).invalid("rules.filter[0]"),
        put("unknown notify role").json(json!({"rules": {"notify_roles": ["boss"]}})).invalid("rules.notify_roles[0]"),
        put("grace delay over a day").json(json!({"rules": {"grace_delay_ms": 86_400_001u64}})).invalid("rules.grace_delay_ms"),
        put("negative grace delay").json(json!({"rules": {"grace_delay_ms": -1}})).invalid("rules.grace_delay_ms"),
        put("unknown content mode").json(json!({"content": {"mode": "everything"}})).invalid("content.mode"),
        put("connector callback_url is not a URL").json(json!({"connector": {"callback_url": "not a url"}})).invalid("connector.callback_url"),
        put("connector callback_url is not http(s)").json(json!({"connector": {"callback_url": "ftp://example.com/push"}})).invalid("connector.callback_url"),
        put("apns private_key is not a PEM").json(json!({"apns": apns_section(MARKER)})).invalid("apns.private_key"),
        put("apns private_key is a PEM of nothing").json(json!({"apns": apns_section(&not_a_pem)})).invalid("apns.private_key"),
        put("apns team_id of the wrong length").json(json!({"apns": set(apns_section(MARKER), "team_id", json!("T1"))})).invalid("apns.team_id"),
        put("apns without a topic").json(json!({"apns": without(apns_section(MARKER), "topic")})).invalid("apns.topic"),
        put("fcm private key is not an RSA PEM")
            .json(json!({"fcm": {"service_account": {"project_id": "p", "client_email": "a@p.iam.gserviceaccount.com", "private_key": MARKER, "token_uri": "https://oauth2.googleapis.com/token"}}}))
            .invalid("fcm.service_account.private_key"),
        put("vapid private key is not 32 bytes").json(json!({"webpush": {"subject": "mailto:ops@example.com", "vapid_private_key": MARKER}})).invalid("webpush.vapid_private_key"),
        put("webpush subject is not a contact").json(json!({"webpush": {"subject": "ops"}})).invalid("webpush.subject"),
        put("webhook url is not a URL").json(webhook("nope", "whsec_abc")).invalid("webhooks[0].url"),
        put("webhook secret is not whsec_").json(webhook("https://hooks.example.com/h", MARKER)).invalid("webhooks[0].secrets[0]"),
        put("a masked secret for an app with no stored secret")
            .json(json!({"smtp": {"host": "smtp.example.com", "port": 587, "from": "push@example.com", "password": "********"}}))
            .invalid("smtp.password"),
        put("a masked apns key for an app with no stored key").json(json!({"apns": apns_section("********")})).invalid("apns.private_key"),
        bad("app id with a space", Method::PUT, "/v1/apps/app%201", Cred::Key).json(json!({})).invalid("app_id"),
        bad("app id with a slash", Method::PUT, "/v1/apps/a%2Fb", Cred::Key).json(json!({})).invalid("app_id"),
        bad("app id of 200 characters", Method::PUT, format!("/v1/apps/{}", "a".repeat(200)), Cred::Key).json(json!({})).invalid("app_id"),
        bad("get an app that does not exist", Method::GET, "/v1/apps/app1", Cred::Key).not_found(),
        bad("delete an app that does not exist", Method::DELETE, "/v1/apps/app1", Cred::Key).not_found(),
    ];
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed.
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    let (status, _) = hub.get("/v1/apps/app1", &hub.key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And a good document is accepted where the bad ones were refused.
    let (status, body) = hub
        .put(
            "/v1/apps/app1",
            &hub.key,
            json!({"name": "App one", "rules": {"filter": ["notice.typing_started"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

// ---------------------------------------------------------------------------------------------
// Participants, reads, transcript pages.

#[tokio::test]
async fn bad_participant_read_and_page_requests_are_refused_and_change_nothing() {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    // c-r: alice joins (1), an agent writes (2).
    let (status, body) = hub
        .put(
            "/v1/conversations/c-r/participants/alice",
            &hub.key,
            json!({"role": "visitor", "name": "Alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.events(message("setup-1", "c-r", "hello alice")).await;
    let (_, before) = hub.get("/v1/conversations/c-r", &hub.key).await;
    assert_eq!(before["last_position"], 2, "{before}");

    let participant = |what: &str, user: &str| {
        bad(
            what,
            Method::PUT,
            format!("/v1/conversations/c-r/participants/{user}"),
            Cred::Key,
        )
    };
    let read = |what: &str| {
        bad(
            what,
            Method::POST,
            "/v1/me/conversations/c-r/read",
            Cred::Token,
        )
    };
    let rows = vec![
        participant("unknown role", "bob")
            .json(json!({"role": "boss"}))
            .invalid("role"),
        participant("role is a number", "bob")
            .json(json!({"role": 3}))
            .invalid("role"),
        participant("missing role", "bob")
            .json(json!({"name": "Bob"}))
            .invalid("role"),
        participant("unknown field", "bob")
            .json(json!({"role": "agent", "colour": "red"}))
            .invalid("colour"),
        participant("secondary is not a boolean", "bob")
            .json(json!({"role": "agent", "secondary": "yes"}))
            .invalid("secondary"),
        participant("name over 256 bytes", "bob")
            .json(json!({"role": "agent", "name": "n".repeat(300)}))
            .invalid("name"),
        participant("malformed JSON", "bob")
            .raw("application/json", "{\"role\":")
            .malformed(),
        participant("text/plain content type", "bob")
            .raw("text/plain", r#"{"role":"agent"}"#)
            .unsupported(),
        participant("user id with a space", "b%20ob")
            .json(json!({"role": "agent"}))
            .invalid("user_id"),
        participant("user id of 200 characters", &"u".repeat(200))
            .json(json!({"role": "agent"}))
            .invalid("user_id"),
        bad(
            "conversation id with a space",
            Method::PUT,
            "/v1/conversations/c%20r/participants/bob",
            Cred::Key,
        )
        .json(json!({"role": "agent"}))
        .invalid("conversation_id"),
        bad(
            "remove someone who is not a participant",
            Method::DELETE,
            "/v1/conversations/c-r/participants/bob",
            Cred::Key,
        )
        .not_found(),
        read("negative position")
            .json(json!({"position": -1}))
            .invalid("position"),
        read("position as a string")
            .json(json!({"position": "1"}))
            .invalid("position"),
        read("fractional position")
            .json(json!({"position": 1.5}))
            .invalid("position"),
        read("missing position").json(json!({})).invalid("position"),
        read("unknown field")
            .json(json!({"position": 1, "colour": "red"}))
            .invalid("colour"),
        read("position beyond the transcript")
            .json(json!({"position": 99}))
            .invalid("position"),
        read("malformed JSON")
            .raw("application/json", "{\"position\":")
            .malformed(),
        read("text/plain content type")
            .raw("text/plain", r#"{"position":1}"#)
            .unsupported(),
        bad(
            "read in a conversation I am not in",
            Method::POST,
            "/v1/me/conversations/c-other/read",
            Cred::Token,
        )
        .json(json!({"position": 1}))
        .not_found(),
        bad(
            "server page with after=abc",
            Method::GET,
            "/v1/conversations/c-r/events?after=abc",
            Cred::Key,
        )
        .malformed(),
        bad(
            "server page with a negative after",
            Method::GET,
            "/v1/conversations/c-r/events?after=-1",
            Cred::Key,
        )
        .malformed(),
        bad(
            "server page with limit=many",
            Method::GET,
            "/v1/conversations/c-r/events?limit=many",
            Cred::Key,
        )
        .malformed(),
        bad(
            "client page with after=abc",
            Method::GET,
            "/v1/me/conversations/c-r/events?after=abc",
            Cred::Token,
        )
        .malformed(),
        bad(
            "conversation that does not exist",
            Method::GET,
            "/v1/conversations/c-none",
            Cred::Key,
        )
        .not_found(),
        bad(
            "client page of a conversation I am not in",
            Method::GET,
            "/v1/me/conversations/c-none/events",
            Cred::Token,
        )
        .not_found(),
        bad(
            "mint a token with ttl_s 0",
            Method::POST,
            "/v1/users/alice/tokens",
            Cred::Key,
        )
        .json(json!({"ttl_s": 0}))
        .invalid("ttl_s"),
        bad(
            "mint a token with an unknown field",
            Method::POST,
            "/v1/users/alice/tokens",
            Cred::Key,
        )
        .json(json!({"ttl": 60}))
        .invalid("ttl"),
        bad(
            "client-auth secret too short",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
        )
        .json(json!({"hs256_secret": "short"}))
        .invalid("hs256_secret"),
        bad(
            "client-auth public key that is not a PEM",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
        )
        .json(json!({"public_key_pem": MARKER, "public_key_alg": "ES256"}))
        .invalid("public_key_pem"),
        bad(
            "client-auth with an unknown algorithm",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
        )
        .json(json!({"public_key_pem": "x", "public_key_alg": "HS512"}))
        .invalid("public_key_alg"),
        bad(
            "revoke a key that does not exist",
            Method::DELETE,
            "/v1/keys/key_nope",
            Cred::Key,
        )
        .not_found(),
        bad(
            "create a key with an unknown field",
            Method::POST,
            "/v1/keys",
            Cred::Key,
        )
        .json(json!({"label": "x"}))
        .invalid("label"),
    ];
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed: the same conversation, the same read state, no new participant.
    let (_, after) = hub.get("/v1/conversations/c-r", &hub.key).await;
    assert_eq!(after, before);
    assert_eq!(last_position(&hub, "c-other").await, None);
    let (_, unread) = hub.get("/v1/me/unread", &creds.token).await;
    assert_eq!(unread["total"], 1, "{unread}");
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
    let (_, client_auth) = hub.get("/v1/client-auth", &hub.key).await;
    assert_eq!(client_auth, json!({}), "client-auth settings unchanged");
    // The good versions work.
    let (status, body) = hub
        .post(
            "/v1/me/conversations/c-r/read",
            &creds.token,
            json!({"position": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unread"], 0, "{body}");
}

// ---------------------------------------------------------------------------------------------
// Body size limit.

#[tokio::test]
async fn a_body_over_the_size_limit_is_refused_with_413_on_every_json_endpoint() {
    let hub = TestHub::builder()
        .configure(|c| c.limits.max_body_bytes = 4096)
        .start()
        .await;
    let creds = Creds::of(&hub).await;
    // Valid JSON made large with whitespace: only the size is wrong.
    let padded = |v: Value| format!("{}{}", v, " ".repeat(8 * 1024)).into_bytes();
    let big = |what: &str, method: Method, path: &str, cred: Cred, body: Value| {
        bad(what, method, path, cred)
            .raw("application/json", padded(body))
            .too_large()
    };
    let rows = vec![
        big(
            "event",
            Method::POST,
            "/v1/events",
            Cred::Key,
            message("e1", "c1", "hello"),
        ),
        bad(
            "event with 8 KiB of text",
            Method::POST,
            "/v1/events",
            Cred::Key,
        )
        .json(message("e2", "c1", &"x".repeat(8 * 1024)))
        .too_large(),
        big(
            "app document",
            Method::PUT,
            "/v1/apps/app1",
            Cred::Key,
            json!({"name": "x"}),
        ),
        big(
            "participant",
            Method::PUT,
            "/v1/conversations/c1/participants/alice",
            Cred::Key,
            json!({"role": "visitor"}),
        ),
        big(
            "device registration",
            Method::POST,
            "/v1/me/devices",
            Cred::Token,
            apns_device(),
        ),
        big(
            "read",
            Method::POST,
            "/v1/me/conversations/c1/read",
            Cred::Token,
            json!({"position": 1}),
        ),
        big(
            "token mint",
            Method::POST,
            "/v1/users/alice/tokens",
            Cred::Key,
            json!({"ttl_s": 60}),
        ),
        big(
            "key creation",
            Method::POST,
            "/v1/keys",
            Cred::Key,
            json!({"name": "k"}),
        ),
        big(
            "client-auth",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
            json!({}),
        ),
    ];
    refuse_all(&hub, &creds, rows).await;

    assert_eq!(last_position(&hub, "c1").await, None);
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        json_list(&hub, "/v1/users/alice/devices", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
    // Under the limit, the same event is fine.
    hub.events(message("e1", "c1", "hello")).await;
}

// ---------------------------------------------------------------------------------------------
// Credentials.

/// A client token signed with the tenant's own HS256 secret.
fn signed_token(secret: &str, tenant: &str, user: &str, exp_offset_s: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let claims = json!({"sub": user, "tid": tenant, "exp": now + exp_offset_s, "iat": now});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signs")
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused_with_401() {
    let hub = TestHub::builder()
        .configure(|c| c.auth.operator_key = Some(OPERATOR_KEY.into()))
        .start()
        .await;
    let mut creds = Creds::of(&hub).await;
    creds.operator = Some(OPERATOR_KEY.into());
    let (status, body) = hub
        .put(
            "/v1/client-auth",
            &hub.key,
            json!({"hs256_secret": CLIENT_SECRET}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let valid_own = signed_token(CLIENT_SECRET, "default", "alice", 3600);
    let expired = signed_token(CLIENT_SECRET, "default", "alice", -3600);
    let wrong_secret = signed_token(
        "another-secret-0123456789abcdefghij",
        "default",
        "alice",
        3600,
    );
    let unknown_tenant = signed_token(CLIENT_SECRET, "nobody", "alice", 3600);
    let no_user = signed_token(CLIENT_SECRET, "default", "al ice", 3600);
    let bearer = |credential: &str| Cred::Header(format!("Bearer {credential}"));

    let server_routes: Vec<(Method, &str, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/events",
            Some(message("e1", "c1", "hello")),
        ),
        (Method::GET, "/v1/apps", None),
        (Method::PUT, "/v1/apps/app1", Some(json!({"name": "x"}))),
        (Method::GET, "/v1/conversations/c1", None),
        (Method::POST, "/v1/users/alice/tokens", None),
        (Method::GET, "/v1/users/alice/devices", None),
        (Method::GET, "/v1/keys", None),
        (Method::POST, "/v1/keys", None),
    ];
    let server_creds: Vec<(&str, Cred)> = vec![
        ("no credentials", Cred::None),
        ("a garbage bearer", bearer("nonsense")),
        (
            "an hk_ key that does not exist",
            bearer(&format!("hk_{}", "A".repeat(43))),
        ),
        ("an empty bearer", Cred::Header("Bearer ".into())),
        (
            "the key under the Basic scheme",
            Cred::Header(format!("Basic {}", hub.key)),
        ),
        ("the key without a scheme", Cred::Header(hub.key.clone())),
        ("a client token", Cred::Token),
        ("the operator key", Cred::Operator),
        (
            "an oversized bearer",
            bearer(&format!("hk_{}", "A".repeat(10_000))),
        ),
    ];
    let client_routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/v1/me/unread", None),
        (Method::GET, "/v1/me/devices", None),
        (Method::POST, "/v1/me/devices", Some(apns_device())),
        (
            Method::POST,
            "/v1/me/conversations/c1/read",
            Some(json!({"position": 1})),
        ),
        (Method::GET, "/v1/me/conversations/c1/events", None),
        (Method::GET, "/v1/live", None),
    ];
    let client_creds: Vec<(&str, Cred)> = vec![
        ("no credentials", Cred::None),
        ("a garbage bearer", bearer("nonsense")),
        (
            "three garbage JWT segments",
            bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"),
        ),
        ("an expired token", bearer(&expired)),
        ("a token signed with another secret", bearer(&wrong_secret)),
        (
            "a token of a tenant that does not exist",
            bearer(&unknown_tenant),
        ),
        ("a token whose user id is invalid", bearer(&no_user)),
        ("the server key", Cred::Key),
        ("the operator key", Cred::Operator),
        (
            "the token under the Basic scheme",
            Cred::Header(format!("Basic {}", creds.token)),
        ),
    ];
    let operator_routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/v1/admin/tenants", None),
        (
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"id": "acme"})),
        ),
        (Method::POST, "/v1/admin/tenants/default/keys", None),
        (Method::DELETE, "/v1/admin/tenants/default/keys/key_x", None),
    ];
    let operator_creds: Vec<(&str, Cred)> = vec![
        ("no credentials", Cred::None),
        ("a wrong operator key", bearer("op-key-0123456789abcdeX")),
        (
            "the operator key with a suffix",
            bearer(&format!("{OPERATOR_KEY}x")),
        ),
        ("a server key", Cred::Key),
        ("a client token", Cred::Token),
    ];
    let mut rows = vec![];
    for (routes, credentials) in [
        (&server_routes, &server_creds),
        (&client_routes, &client_creds),
        (&operator_routes, &operator_creds),
    ] {
        for (method, path, body) in routes {
            for (what, cred) in credentials {
                let row = bad(
                    format!("{what} on {method} {path}"),
                    method.clone(),
                    *path,
                    cred.clone(),
                );
                let row = match body {
                    Some(body) => row.json(body.clone()),
                    None => row,
                };
                rows.push(row.unauthorized());
            }
        }
    }
    rows.push(
        bad(
            "a garbage ?token= on the live endpoint",
            Method::GET,
            "/v1/live?token=nonsense",
            Cred::None,
        )
        .unauthorized(),
    );
    rows.push(
        bad(
            "an expired ?token= on the live endpoint",
            Method::GET,
            format!("/v1/live?token={expired}"),
            Cred::None,
        )
        .unauthorized(),
    );
    rows.push(
        bad(
            "?token= is only for the live endpoint",
            Method::GET,
            format!("/v1/me/unread?token={}", creds.token),
            Cred::None,
        )
        .unauthorized(),
    );
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed.
    assert_eq!(last_position(&hub, "c1").await, None);
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
    let (_, tenants) = hub.get("/v1/admin/tenants", OPERATOR_KEY).await;
    assert_eq!(tenants.as_array().map(Vec::len), Some(1), "{tenants}");
    // Each credential, when right, works: the refusals were about the credentials.
    for (token, what) in [
        (&creds.token, "a minted token"),
        (&valid_own, "a token signed with the tenant's secret"),
    ] {
        let (status, body) = hub.get("/v1/me/unread", token).await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
    }
    let (status, _) = hub.get("/v1/apps", &hub.key).await;
    assert_eq!(status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Routing and the admin API's availability.

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems_and_the_admin_api_is_off_without_an_operator_key()
 {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    let rows = vec![
        bad("unknown route", Method::GET, "/v1/nope", Cred::Key).not_found(),
        bad(
            "unknown route without credentials",
            Method::GET,
            "/v2/events",
            Cred::None,
        )
        .not_found(),
        bad("the root", Method::GET, "/", Cred::None).not_found(),
        bad(
            "a route with an extra segment",
            Method::GET,
            "/v1/apps/app1/extra",
            Cred::Key,
        )
        .not_found(),
        bad(
            "path traversal",
            Method::GET,
            "/v1/apps/..%2F..%2Fetc%2Fpasswd/x",
            Cred::Key,
        )
        .not_found(),
        bad(
            "GET on the events endpoint",
            Method::GET,
            "/v1/events",
            Cred::Key,
        )
        .not_allowed(),
        bad(
            "DELETE on the events endpoint",
            Method::DELETE,
            "/v1/events",
            Cred::Key,
        )
        .not_allowed(),
        bad("POST on an app", Method::POST, "/v1/apps/app1", Cred::Key)
            .json(json!({}))
            .not_allowed(),
        bad("PATCH on an app", Method::PATCH, "/v1/apps/app1", Cred::Key)
            .json(json!({}))
            .not_allowed(),
        bad("POST on healthz", Method::POST, "/healthz", Cred::None).not_allowed(),
        bad(
            "PUT on a conversation",
            Method::PUT,
            "/v1/conversations/c1",
            Cred::Key,
        )
        .json(json!({}))
        .not_allowed(),
        bad(
            "admin API without an operator key configured",
            Method::GET,
            "/v1/admin/tenants",
            Cred::None,
        )
        .not_found(),
        bad(
            "admin API without an operator key configured, with a server key",
            Method::GET,
            "/v1/admin/tenants",
            Cred::Key,
        )
        .not_found(),
        bad(
            "admin API without an operator key configured, with a guessed key",
            Method::POST,
            "/v1/admin/tenants",
            Cred::Operator,
        )
        .json(json!({"id": "acme"}))
        .not_found(),
        bad(
            "admin key creation without an operator key configured",
            Method::POST,
            "/v1/admin/tenants/default/keys",
            Cred::Operator,
        )
        .not_found(),
    ];
    refuse_all(&hub, &creds, rows).await;
    assert_eq!(last_position(&hub, "c1").await, None);
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
}

#[tokio::test]
async fn bad_admin_requests_are_refused_and_create_nothing() {
    let hub = TestHub::builder()
        .configure(|c| c.auth.operator_key = Some(OPERATOR_KEY.into()))
        .start()
        .await;
    let mut creds = Creds::of(&hub).await;
    creds.operator = Some(OPERATOR_KEY.into());
    let create = |what: &str| bad(what, Method::POST, "/v1/admin/tenants", Cred::Operator);
    let rows = vec![
        create("malformed JSON")
            .raw("application/json", "{\"id\":")
            .malformed(),
        create("text/plain content type")
            .raw("text/plain", r#"{"id":"acme"}"#)
            .unsupported(),
        create("tenant id with a space")
            .json(json!({"id": "ac me"}))
            .invalid("id"),
        create("tenant id of 200 characters")
            .json(json!({"id": "t".repeat(200)}))
            .invalid("id"),
        create("missing tenant id")
            .json(json!({"name": "Acme"}))
            .invalid("id"),
        create("unknown field")
            .json(json!({"id": "acme", "colour": "red"}))
            .invalid("colour"),
        create("name over 256 bytes")
            .json(json!({"id": "acme", "name": "n".repeat(300)}))
            .invalid("name"),
        create("a tenant that exists")
            .json(json!({"id": "default"}))
            .is(409, "already_exists"),
        bad(
            "a key for a tenant that does not exist",
            Method::POST,
            "/v1/admin/tenants/nobody/keys",
            Cred::Operator,
        )
        .not_found(),
        bad(
            "revoke a key that does not exist",
            Method::DELETE,
            "/v1/admin/tenants/default/keys/key_nope",
            Cred::Operator,
        )
        .not_found(),
        bad(
            "a key with an unknown field",
            Method::POST,
            "/v1/admin/tenants/default/keys",
            Cred::Operator,
        )
        .json(json!({"label": "x"}))
        .invalid("label"),
    ];
    refuse_all(&hub, &creds, rows).await;
    let tenants = json_list(&hub, "/v1/admin/tenants", OPERATOR_KEY).await;
    assert_eq!(tenants.len(), 1, "{tenants:?}");
    assert_eq!(tenants[0]["id"], "default");
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Idempotency.

#[tokio::test]
async fn a_repeated_event_is_acknowledged_and_a_conflicting_one_changes_nothing() {
    let hub = TestHub::start().await;
    let original = message("e1", "c1", "the original text");
    let first = hub.events(original.clone()).await;
    assert_eq!(first["position"], 1, "{first}");
    assert_eq!(first["duplicate"], false, "{first}");

    // The same event again: the original result, nothing new.
    let again = hub.events(original.clone()).await;
    assert_eq!(again["position"], 1, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    // Key order and whitespace do not make it a different event.
    let reordered = r#"{"text":"the original text","type":"message.created","sender":{"role":"agent","name":"Ann","id":"agent-1"},
        "occurred_at":"2026-11-23T10:00:00Z","conversation_id":"c1","event_id":"e1"}"#;
    let (status, body) = hub
        .call_raw(
            Method::POST,
            "/v1/events",
            Some(&hub.key),
            "application/json",
            reordered.into(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["duplicate"], true, "{body}");

    // The same event_id with a different body: 409, nothing stored.
    let changed = set(original.clone(), "text", json!("a rewritten text"));
    let conflict = problem(
        &hub,
        Method::POST,
        "/v1/events",
        Some(&hub.key),
        Some(changed.clone()),
        409,
    )
    .await;
    assert_eq!(conflict["code"], "event_conflict", "{conflict}");
    assert_eq!(conflict["errors"][0]["path"], "event_id", "{conflict}");
    assert!(
        !conflict.to_string().contains("rewritten"),
        "the problem does not echo the text: {conflict}"
    );
    // Reused in another conversation: also a conflict.
    let elsewhere = problem(
        &hub,
        Method::POST,
        "/v1/events",
        Some(&hub.key),
        Some(set(original.clone(), "conversation_id", json!("c2"))),
        409,
    )
    .await;
    assert_eq!(elsewhere["code"], "event_conflict", "{elsewhere}");
    // In a batch, the conflict names its event, and the batch's new event is not stored either.
    let batch = json!([message("e2", "c1", "a new message"), changed]);
    let in_batch = problem(
        &hub,
        Method::POST,
        "/v1/events",
        Some(&hub.key),
        Some(batch),
        409,
    )
    .await;
    assert_eq!(in_batch["code"], "event_conflict", "{in_batch}");
    assert_eq!(
        in_batch["errors"][0]["path"], "events[1].event_id",
        "{in_batch}"
    );

    assert_eq!(last_position(&hub, "c1").await, Some(1));
    assert_eq!(last_position(&hub, "c2").await, None);
    let events = transcript(&hub, "c1").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["text"], "the original text");
    assert_eq!(events[0]["event_id"], "e1");
    let (_, unread) = hub.get("/v1/users/alice/unread", &hub.key).await;
    assert_eq!(unread["total"], 0, "{unread}");
    // e2 was never stored: it is new now.
    let e2 = hub.events(message("e2", "c1", "a new message")).await;
    assert_eq!(e2["position"], 2, "{e2}");
    assert_eq!(e2["duplicate"], false, "{e2}");
}

// ---------------------------------------------------------------------------------------------
// Live sessions.

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(hub: &TestHub, user: &str) -> Socket {
    let token = hub.token(user).await;
    let mut request = format!("{}/v1/live", hub.base.replacen("http", "ws", 1))
        .into_client_request()
        .expect("ws url");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("live session connects");
    let hello = next_frame(&mut socket).await.expect("hello");
    assert_eq!(hello["type"], "hello", "{hello}");
    socket
}

/// The next text frame as JSON; `None` when the connection closes. Panics after PATIENCE.
async fn next_frame(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the server answers or closes")
        {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("frames are JSON"));
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn bad_live_frames_get_a_bad_frame_error_and_the_session_keeps_working() {
    let hub = TestHub::start().await;
    let mut socket = connect(&hub, "alice").await;
    let bad_frames: Vec<(&str, Message)> = vec![
        ("garbage text", Message::text("this is not json {{{")),
        (
            "an unknown frame type",
            Message::text(r#"{"type":"explode"}"#),
        ),
        ("a binary frame", Message::binary(vec![0u8, 159, 146, 150])),
        (
            "a frame without a type",
            Message::text(r#"{"positions":{}}"#),
        ),
        ("a JSON array", Message::text("[1,2,3]")),
        (
            "a ping with an unknown field",
            Message::text(r#"{"type":"ping","extra":1}"#),
        ),
        (
            "a resume with a negative position",
            Message::text(r#"{"type":"resume","positions":{"c1":-1}}"#),
        ),
        (
            "a read with a bad conversation id",
            Message::text(r#"{"type":"read","conversation_id":"c 1","position":1}"#),
        ),
        (
            "a state that does not exist",
            Message::text(r#"{"type":"state","state":"asleep"}"#),
        ),
        (
            "10,000-deep nested arrays",
            Message::text(String::from_utf8(nested(10_000, "[", "]")).expect("ascii")),
        ),
    ];
    let mut failures = vec![];
    for (what, frame) in bad_frames {
        socket.send(frame).await.expect("frame sent");
        match next_frame(&mut socket).await {
            Some(reply)
                if reply["type"] == "error"
                    && reply["code"] == "bad_frame"
                    && reply["message"].is_string() => {}
            Some(reply) => failures.push(format!(
                "  - {what}: expected an error frame with code bad_frame, got {reply}"
            )),
            None => {
                failures.push(format!("  - {what}: the server closed the session"));
                break;
            }
        }
        // The session keeps working.
        socket
            .send(Message::text(r#"{"type":"ping"}"#))
            .await
            .expect("ping sent");
        match next_frame(&mut socket).await {
            Some(reply) if reply == json!({"type": "pong"}) => {}
            other => {
                failures.push(format!(
                    "  - after {what}: a ping got {other:?} instead of a pong"
                ));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "bad live frames were not handled:\n{}",
        failures.join("\n")
    );
    // Still a working session: it gets live events.
    let (status, body) = hub
        .put(
            "/v1/conversations/c1/participants/alice",
            &hub.key,
            json!({"role": "visitor"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.events(message("e1", "c1", "still listening?")).await;
    loop {
        let frame = next_frame(&mut socket).await.expect("the session is open");
        if frame["type"] == "event" && frame["event"]["event_id"] == "e1" {
            break;
        }
    }
}

#[tokio::test]
async fn a_live_frame_over_the_size_limit_closes_the_connection_and_the_server_stays_up() {
    let hub = TestHub::start().await;
    let max = 64 * 1024;
    let mut socket = connect(&hub, "alice").await;
    let mut other = connect(&hub, "bob").await;
    let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(max + 1024));
    // The server may close while we are still writing; either way the connection must end.
    let _ = socket.send(Message::text(huge)).await;
    let mut closed = false;
    for _ in 0..10 {
        match next_frame(&mut socket).await {
            None => {
                closed = true;
                break;
            }
            // An error frame before the close is acceptable; a pong is not.
            Some(frame) => assert_ne!(
                frame["type"], "pong",
                "an oversized frame was processed: {frame}"
            ),
        }
    }
    assert!(
        closed,
        "the connection was not closed after a frame over max_frame_bytes"
    );

    // The server is fine: health, other sessions, new sessions.
    let (status, body) = hub.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    other
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .expect("ping sent");
    assert_eq!(next_frame(&mut other).await, Some(json!({"type": "pong"})));
    let mut again = hub.live("alice").await;
    again.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(again.next().await, json!({"type": "pong"}));
    // A frame just under the limit is not refused for its size.
    let under = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(max - 1024));
    again.send_text(&under).await;
    let reply = again
        .try_next(PATIENCE)
        .await
        .expect("a frame under the limit keeps the session open");
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "bad_frame", "{reply}");
}
