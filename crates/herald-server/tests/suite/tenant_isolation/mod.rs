//! Files: `data.rs` (another tenant's keys see and touch nothing; the same ids are independent),
//! `credentials.rs` (client tokens and revoked keys), `live.rs` (live events stay in their
//! tenant). This file holds tenant A and the checks they share.
//!
//! Tenant isolation (SPEC §1 "Nothing crosses tenants, ever", §2.1): tenant B's keys and tokens
//! see nothing of tenant A — not its conversations, transcripts, apps, users' devices, unread
//! counts, keys or live events — and what B cannot see it is told does not exist (404, not
//! 403). Within a tenant, a client token acts as its own user only. A revoked key stops at once.

mod credentials;
mod data;
mod live;

use std::time::Duration;

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OPERATOR_KEY: &str = "op-key-0123456789abcdef";
/// Tenant A's message text: must never appear in anything tenant B reads.
const A_TEXT: &str = "tenant-A-only-text-7731";
const QUIET: Duration = Duration::from_millis(300);

async fn hub_with_operator() -> TestHub {
    TestHub::builder()
        .configure(|c| c.auth.operator_key = Some(OPERATOR_KEY.into()))
        .start()
        .await
}

/// Creates tenant `id` through the admin API; answers its first server key.
async fn create_tenant(hub: &TestHub, id: &str) -> String {
    let (status, body) = hub
        .post("/v1/admin/tenants", OPERATOR_KEY, json!({"id": id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "tenant {id}: {body}");
    assert_eq!(body["key"]["tenant_id"], id, "{body}");
    let secret = body["secret"]
        .as_str()
        .expect("the key's secret is shown once")
        .to_string();
    assert!(secret.starts_with("hk_"), "{body}");
    secret
}

fn message(event_id: &str, conversation: &str, sender: &str, text: &str) -> Value {
    json!({
        "event_id": event_id, "conversation_id": conversation, "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": sender, "role": "agent", "name": "Ann"}, "text": text
    })
}

async fn ok(hub: &TestHub, method: Method, path: &str, auth: &str, body: Option<Value>) -> Value {
    let (status, response) = hub.call(method.clone(), path, Some(auth), body).await;
    assert!(status.is_success(), "{method} {path}: {status} {response}");
    response
}

/// Asserts 404 (never 403) and that nothing of tenant A leaks into the answer.
async fn not_found(hub: &TestHub, method: Method, path: &str, auth: &str, body: Option<Value>) {
    let (status, response) = hub.call(method.clone(), path, Some(auth), body).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{method} {path} must be 404 (not 403, not 200): {response}"
    );
    assert_eq!(response["code"], "not_found", "{response}");
    assert!(
        !response.to_string().contains(A_TEXT),
        "{method} {path} leaks tenant A's text: {response}"
    );
}

fn list(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
}

/// What tenant A holds, for B to try to reach.
struct TenantA {
    token: String,
    device_id: String,
    key_ids: Vec<String>,
}

/// Tenant A (the default tenant): app `app-a`, conversation `conv-a` where alice (visitor)
/// has one unread message from an agent, and an FCM device of alice's.
async fn populate_a(hub: &TestHub) -> TenantA {
    ok(
        hub,
        Method::PUT,
        "/v1/apps/app-a",
        &hub.key,
        Some(json!({"name": "A's app"})),
    )
    .await;
    ok(
        hub,
        Method::PUT,
        "/v1/conversations/conv-a/participants/alice",
        &hub.key,
        Some(json!({"role": "visitor"})),
    )
    .await;
    hub.events(message("a-e1", "conv-a", "agent-a", A_TEXT))
        .await;
    let token = hub.token("alice").await;
    let device = ok(hub, Method::POST, "/v1/me/devices", &token, Some(json!({"app_id": "app-a", "channel": "fcm", "token": "fcm-token-of-a-alice", "platform": "android"}))).await;
    let device_id = device["id"].as_str().expect("device id").to_string();
    let keys = ok(hub, Method::GET, "/v1/keys", &hub.key, None).await;
    let key_ids = list(&keys)
        .iter()
        .map(|k| k["id"].as_str().expect("key id").to_string())
        .collect();
    TenantA {
        token,
        device_id,
        key_ids,
    }
}

/// A still has everything: B's attempts changed nothing.
async fn a_is_intact(hub: &TestHub, a: &TenantA) {
    let conversation = ok(hub, Method::GET, "/v1/conversations/conv-a", &hub.key, None).await;
    assert_eq!(conversation["last_position"], 2, "{conversation}");
    let events = ok(
        hub,
        Method::GET,
        "/v1/conversations/conv-a/events",
        &hub.key,
        None,
    )
    .await;
    assert_eq!(events["events"][1]["text"], A_TEXT, "{events}");
    let apps = ok(hub, Method::GET, "/v1/apps", &hub.key, None).await;
    assert_eq!(apps, json!(["app-a"]));
    let devices = ok(hub, Method::GET, "/v1/users/alice/devices", &hub.key, None).await;
    assert_eq!(list(&devices).len(), 1, "{devices}");
    assert_eq!(devices[0]["id"], a.device_id.as_str());
    let unread = ok(hub, Method::GET, "/v1/me/unread", &a.token, None).await;
    assert_eq!(unread["total"], 1, "{unread}");
    let (status, body) = hub.get("/v1/apps", &hub.key).await;
    assert_eq!(status, StatusCode::OK, "A's key still works: {body}");
}
