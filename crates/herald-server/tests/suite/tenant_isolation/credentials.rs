//! Client tokens act only as their own user in their own tenant; a revoked key stops at once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

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
