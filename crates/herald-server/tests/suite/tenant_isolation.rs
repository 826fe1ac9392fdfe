//! Tenant isolation (SPEC §1 "Nothing crosses tenants, ever", §2.1): tenant B's keys and tokens
//! see nothing of tenant A — not its conversations, transcripts, apps, users' devices, unread
//! counts, keys or live events — and what B cannot see it is told does not exist (404, not
//! 403). Within a tenant, a client token acts as its own user only. A revoked key stops at once.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_testkit::{LiveClient, TestHub};
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

#[tokio::test]
async fn a_second_tenant_cannot_see_or_touch_the_first_tenants_data() {
    let hub = hub_with_operator().await;
    let a = populate_a(&hub).await;
    let b_key = create_tenant(&hub, "acme").await;

    // Conversations and transcripts.
    not_found(&hub, Method::GET, "/v1/conversations/conv-a", &b_key, None).await;
    not_found(
        &hub,
        Method::GET,
        "/v1/conversations/conv-a/events",
        &b_key,
        None,
    )
    .await;
    not_found(
        &hub,
        Method::DELETE,
        "/v1/conversations/conv-a/participants/alice",
        &b_key,
        None,
    )
    .await;
    // Apps.
    not_found(&hub, Method::GET, "/v1/apps/app-a", &b_key, None).await;
    not_found(&hub, Method::DELETE, "/v1/apps/app-a", &b_key, None).await;
    assert_eq!(
        ok(&hub, Method::GET, "/v1/apps", &b_key, None).await,
        json!([])
    );
    // Users and devices.
    assert_eq!(
        ok(&hub, Method::GET, "/v1/users/alice/devices", &b_key, None).await,
        json!([])
    );
    not_found(
        &hub,
        Method::DELETE,
        &format!("/v1/users/alice/devices/{}", a.device_id),
        &b_key,
        None,
    )
    .await;
    let removed = ok(
        &hub,
        Method::DELETE,
        "/v1/users/alice/devices",
        &b_key,
        None,
    )
    .await;
    assert_eq!(
        removed["removed"], 0,
        "B's sign-out-everywhere removed A's devices: {removed}"
    );
    let unread = ok(&hub, Method::GET, "/v1/users/alice/unread", &b_key, None).await;
    assert_eq!(unread, json!({"conversations": [], "total": 0}));
    // Keys: B lists only its own, and cannot revoke A's.
    let b_keys = ok(&hub, Method::GET, "/v1/keys", &b_key, None).await;
    assert_eq!(list(&b_keys).len(), 1, "{b_keys}");
    assert!(
        list(&b_keys).iter().all(|k| k["tenant_id"] == "acme"
            && !a
                .key_ids
                .contains(&k["id"].as_str().unwrap_or_default().to_string())),
        "{b_keys}"
    );
    for id in &a.key_ids {
        not_found(
            &hub,
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            &b_key,
            None,
        )
        .await;
        // Not even the operator can revoke A's key by naming it under B.
        not_found(
            &hub,
            Method::DELETE,
            &format!("/v1/admin/tenants/acme/keys/{id}"),
            OPERATOR_KEY,
            None,
        )
        .await;
    }
    // Nothing B tried changed anything of A's.
    a_is_intact(&hub, &a).await;
}

#[tokio::test]
async fn a_second_tenants_client_token_sees_none_of_the_same_user_in_the_first_tenant() {
    let hub = hub_with_operator().await;
    let a = populate_a(&hub).await;
    let b_key = create_tenant(&hub, "acme").await;
    let b_alice = hub.token_with(&b_key, "alice").await;

    let unread = ok(&hub, Method::GET, "/v1/me/unread", &b_alice, None).await;
    assert_eq!(
        unread,
        json!({"conversations": [], "total": 0}),
        "B-alice sees A-alice's unread"
    );
    assert_eq!(
        ok(&hub, Method::GET, "/v1/me/devices", &b_alice, None).await,
        json!([])
    );
    not_found(
        &hub,
        Method::GET,
        "/v1/me/conversations/conv-a/events",
        &b_alice,
        None,
    )
    .await;
    not_found(
        &hub,
        Method::POST,
        "/v1/me/conversations/conv-a/read",
        &b_alice,
        Some(json!({"position": 2})),
    )
    .await;
    not_found(
        &hub,
        Method::DELETE,
        &format!("/v1/me/devices/{}", a.device_id),
        &b_alice,
        None,
    )
    .await;
    not_found(
        &hub,
        Method::DELETE,
        "/v1/me/devices?token=fcm-token-of-a-alice",
        &b_alice,
        None,
    )
    .await;
    // A's app does not exist in B.
    let (status, body) = hub.post("/v1/me/devices", &b_alice, json!({"app_id": "app-a", "channel": "fcm", "token": "fcm-token-of-a-alice", "platform": "android"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["path"], "app_id", "{body}");
    // A B token is not an A token: relabelling its tenant breaks its signature.
    let mut parts: Vec<String> = b_alice.split('.').map(str::to_string).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("base64url"))
            .expect("claims");
    assert_eq!(claims["tid"], "acme", "{claims}");
    claims["tid"] = json!("default");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = parts.join(".");
    let (status, body) = hub.get("/v1/me/unread", &forged).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a B token relabelled as A's was accepted: {body}"
    );
    // B's key cannot mint for A either: its tokens act in B.
    let minted = ok(&hub, Method::POST, "/v1/users/alice/tokens", &b_key, None).await;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                minted["token"]
                    .as_str()
                    .expect("token")
                    .split('.')
                    .nth(1)
                    .expect("payload"),
            )
            .expect("base64url"),
    )
    .expect("claims");
    assert_eq!(claims["tid"], "acme", "{claims}");

    a_is_intact(&hub, &a).await;
}

#[tokio::test]
async fn a_live_session_in_another_tenant_never_receives_the_first_tenants_events() {
    let hub = hub_with_operator().await;
    let b_key = create_tenant(&hub, "acme").await;
    // alice takes part in conv-a in both tenants, so both would be recipients if tenants mixed.
    ok(
        &hub,
        Method::PUT,
        "/v1/conversations/conv-a/participants/alice",
        &hub.key,
        Some(json!({"role": "visitor"})),
    )
    .await;
    ok(
        &hub,
        Method::PUT,
        "/v1/conversations/conv-a/participants/alice",
        &b_key,
        Some(json!({"role": "visitor"})),
    )
    .await;
    let mut a_alice = hub.live("alice").await;
    let mut b_alice =
        LiveClient::connect(&hub.base, &hub.token_with(&b_key, "alice").await, "").await;
    // A first frame releases live events on both sessions.
    for session in [&mut a_alice, &mut b_alice] {
        session.send_text(r#"{"type":"ping"}"#).await;
        assert_eq!(session.next_of("pong").await["type"], "pong");
    }

    hub.events(message("a-e1", "conv-a", "agent-a", A_TEXT))
        .await;
    let event = a_alice.next_of("event").await;
    assert_eq!(event["event"]["text"], A_TEXT, "{event}");
    assert_eq!(
        b_alice.try_next(QUIET).await,
        None,
        "B-alice received something from tenant A"
    );
    // And resuming A's conversation from B gives B's transcript only (its own joined event).
    b_alice.resume(json!({"conv-a": 0})).await;
    let mut frames = vec![];
    loop {
        let frame = b_alice.next().await;
        if frame["type"] == "caught_up" {
            break;
        }
        frames.push(frame);
    }
    assert!(
        !Value::Array(frames.clone()).to_string().contains(A_TEXT),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .all(|f| f["event"]["type"] != "message.created"),
        "{frames:?}"
    );
}

#[tokio::test]
async fn the_same_conversation_and_event_ids_in_two_tenants_are_independent() {
    let hub = hub_with_operator().await;
    let b_key = create_tenant(&hub, "acme").await;
    let a_event = message("same-id", "same-conv", "agent-1", "from A");
    let b_event = message("same-id", "same-conv", "agent-1", "from B");

    let a_result = hub.events(a_event.clone()).await;
    assert_eq!(a_result["position"], 1, "{a_result}");
    assert_eq!(a_result["duplicate"], false, "{a_result}");
    // Another body under the same ids in B: no 409, not a duplicate, its own position 1.
    let b_result = ok(
        &hub,
        Method::POST,
        "/v1/events",
        &b_key,
        Some(b_event.clone()),
    )
    .await;
    assert_eq!(b_result["position"], 1, "{b_result}");
    assert_eq!(b_result["duplicate"], false, "{b_result}");
    // Even the identical body is new in B.
    let identical = message("other-id", "same-conv", "agent-1", "identical");
    assert_eq!(hub.events(identical.clone()).await["position"], 2);
    let b_identical = ok(&hub, Method::POST, "/v1/events", &b_key, Some(identical)).await;
    assert_eq!(b_identical["position"], 2, "{b_identical}");
    assert_eq!(b_identical["duplicate"], false, "{b_identical}");
    // Repeats stay repeats within each tenant.
    assert_eq!(hub.events(a_event).await["duplicate"], true);
    assert_eq!(
        ok(&hub, Method::POST, "/v1/events", &b_key, Some(b_event)).await["duplicate"],
        true
    );

    let a_page = ok(
        &hub,
        Method::GET,
        "/v1/conversations/same-conv/events",
        &hub.key,
        None,
    )
    .await;
    let b_page = ok(
        &hub,
        Method::GET,
        "/v1/conversations/same-conv/events",
        &b_key,
        None,
    )
    .await;
    let texts = |page: &Value| {
        list(&page["events"])
            .iter()
            .map(|e| e["text"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&a_page), vec![json!("from A"), json!("identical")]);
    assert_eq!(texts(&b_page), vec![json!("from B"), json!("identical")]);
}

#[tokio::test]
async fn a_client_token_acts_only_as_its_own_user() {
    let hub = TestHub::start().await;
    ok(
        &hub,
        Method::PUT,
        "/v1/apps/app1",
        &hub.key,
        Some(json!({"name": "App"})),
    )
    .await;
    let alice = hub.token("alice").await;
    let bob = hub.token("bob").await;
    let device = ok(
        &hub,
        Method::POST,
        "/v1/me/devices",
        &alice,
        Some(json!({"app_id": "app1", "channel": "apns", "token": "a1b2c3d4", "platform": "ios"})),
    )
    .await;
    let device_id = device["id"].as_str().expect("device id");
    ok(
        &hub,
        Method::PUT,
        "/v1/conversations/c-alice/participants/alice",
        &hub.key,
        Some(json!({"role": "visitor"})),
    )
    .await;
    hub.events(message("e1", "c-alice", "agent-1", A_TEXT))
        .await;

    // Bob cannot remove alice's device, by id or by token.
    not_found(
        &hub,
        Method::DELETE,
        &format!("/v1/me/devices/{device_id}"),
        &bob,
        None,
    )
    .await;
    not_found(
        &hub,
        Method::DELETE,
        "/v1/me/devices?token=a1b2c3d4",
        &bob,
        None,
    )
    .await;
    // Bob does not see alice's devices, conversation or unread counts.
    assert_eq!(
        ok(&hub, Method::GET, "/v1/me/devices", &bob, None).await,
        json!([])
    );
    not_found(
        &hub,
        Method::GET,
        "/v1/me/conversations/c-alice/events",
        &bob,
        None,
    )
    .await;
    not_found(
        &hub,
        Method::POST,
        "/v1/me/conversations/c-alice/read",
        &bob,
        Some(json!({"position": 2})),
    )
    .await;
    assert_eq!(
        ok(&hub, Method::GET, "/v1/me/unread", &bob, None).await,
        json!({"conversations": [], "total": 0})
    );
    // Nor over a live session: resuming a conversation he is not in is refused.
    let mut live = hub.live("bob").await;
    live.resume(json!({"c-alice": 0})).await;
    let frame = live.next().await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "not_a_participant", "{frame}");
    assert!(!frame.to_string().contains(A_TEXT), "{frame}");
    assert_eq!(
        live.try_next(QUIET).await,
        None,
        "bob received frames of alice's conversation"
    );

    // Alice still has it all; and she can do what bob could not.
    let devices = ok(&hub, Method::GET, "/v1/users/alice/devices", &hub.key, None).await;
    assert_eq!(list(&devices).len(), 1, "{devices}");
    let unread = ok(&hub, Method::GET, "/v1/me/unread", &alice, None).await;
    assert_eq!(unread["total"], 1, "{unread}");
    let page = ok(
        &hub,
        Method::GET,
        "/v1/me/conversations/c-alice/events",
        &alice,
        None,
    )
    .await;
    assert_eq!(page["events"][1]["text"], A_TEXT, "{page}");
    let (status, _) = hub
        .delete(&format!("/v1/me/devices/{device_id}"), &alice)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let hub = hub_with_operator().await;
    // A tenant revokes one of its own keys.
    let created = ok(
        &hub,
        Method::POST,
        "/v1/keys",
        &hub.key,
        Some(json!({"name": "ci"})),
    )
    .await;
    let secret = created["secret"].as_str().expect("secret").to_string();
    let id = created["key"]["id"].as_str().expect("key id").to_string();
    let (status, _) = hub.get("/v1/apps", &secret).await;
    assert_eq!(status, StatusCode::OK, "the new key works");
    let (status, _) = hub.delete(&format!("/v1/keys/{id}"), &hub.key).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, path, body) in [
        (Method::GET, "/v1/apps", None),
        (
            Method::POST,
            "/v1/events",
            Some(message("e1", "c1", "agent-1", "hi")),
        ),
        (Method::POST, "/v1/users/alice/tokens", None),
        (Method::GET, "/v1/keys", None),
    ] {
        let (status, response) = hub.call(method.clone(), path, Some(&secret), body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a revoked key: {response}"
        );
        assert_eq!(response["code"], "unauthorized", "{response}");
    }
    let (status, _) = hub.get("/v1/conversations/c1", &hub.key).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the revoked key's event was not stored"
    );
    let keys = ok(&hub, Method::GET, "/v1/keys", &hub.key, None).await;
    let revoked = list(&keys).iter().find(|k| k["id"] == id.as_str()).cloned();
    assert!(
        revoked.is_none_or(|k| k["revoked_at"].is_string()),
        "{keys}"
    );
    // Other keys are untouched.
    let (status, _) = hub.get("/v1/apps", &hub.key).await;
    assert_eq!(status, StatusCode::OK);

    // The operator revokes another tenant's key.
    let b_key = create_tenant(&hub, "acme").await;
    let b_keys = ok(&hub, Method::GET, "/v1/keys", &b_key, None).await;
    let b_id = b_keys[0]["id"].as_str().expect("key id").to_string();
    let (status, body) = hub
        .delete(&format!("/v1/admin/tenants/acme/keys/{b_id}"), OPERATOR_KEY)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = hub.get("/v1/apps", &b_key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = hub.get("/v1/apps", &hub.key).await;
    assert_eq!(status, StatusCode::OK, "revoking B's key leaves A's alone");
}
