//! Device registration (SPEC §2.3): a token belongs to one user per app; rotation by
//! installation id; deregistration by the owner or a server key; sign-out everywhere.

use herald_testkit::TestHub;
use serde_json::{Value, json};

async fn with_app(hub: &TestHub) {
    let (status, body) = hub
        .put("/v1/apps/chat", &hub.key, json!({"name": "Chat"}))
        .await;
    assert_eq!(status, 201, "{body}");
}

fn apns(token: &str, installation: Option<&str>) -> Value {
    let mut body = json!({"app_id": "chat", "channel": "apns", "token": token, "platform": "ios", "locale": "en-GB"});
    if let Some(i) = installation {
        body["installation_id"] = json!(i);
    }
    body
}

async fn devices(hub: &TestHub, token: &str) -> Vec<Value> {
    let (status, list) = hub.get("/v1/me/devices", token).await;
    assert_eq!(status, 200);
    list.as_array().unwrap().clone()
}

#[tokio::test]
async fn registering_the_same_token_twice_keeps_one_device() {
    let hub = TestHub::start().await;
    with_app(&hub).await;
    let alice = hub.token("alice").await;
    let (first, created) = hub.post("/v1/me/devices", &alice, apns("aa01", None)).await;
    let (second, again) = hub.post("/v1/me/devices", &alice, apns("aa01", None)).await;
    assert_eq!((first.as_u16(), second.as_u16()), (201, 200));
    assert_eq!(created["id"], again["id"]);
    assert_eq!(devices(&hub, &alice).await.len(), 1);
}

#[tokio::test]
async fn a_token_registered_by_another_user_moves_so_the_signed_out_user_gets_nothing() {
    let hub = TestHub::start().await;
    with_app(&hub).await;
    let alice = hub.token("alice").await;
    let bob = hub.token("bob").await;
    let (_, device) = hub.post("/v1/me/devices", &alice, apns("beef", None)).await;
    let (status, moved) = hub.post("/v1/me/devices", &bob, apns("beef", None)).await;
    assert_eq!(status, 200);
    assert_eq!(moved["id"], device["id"]);
    assert_eq!(moved["user_id"], "bob");
    assert!(
        devices(&hub, &alice).await.is_empty(),
        "alice no longer receives on that phone"
    );
    assert_eq!(
        hub.get("/v1/users/alice/devices", &hub.key).await.1,
        json!([])
    );
    assert_eq!(devices(&hub, &bob).await.len(), 1);
}

#[tokio::test]
async fn a_new_token_for_the_same_installation_replaces_the_old_one() {
    let hub = TestHub::start().await;
    with_app(&hub).await;
    let alice = hub.token("alice").await;
    let (_, old) = hub
        .post("/v1/me/devices", &alice, apns("0001", Some("install-1")))
        .await;
    let (status, new) = hub
        .post("/v1/me/devices", &alice, apns("0002", Some("install-1")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(new["id"], old["id"]);
    let list = devices(&hub, &alice).await;
    assert_eq!(list.len(), 1, "no duplicate after rotation");
    assert_eq!(list[0]["token"], "0002");
}

#[tokio::test]
async fn only_the_owner_or_a_server_key_can_deregister_a_device() {
    let hub = TestHub::start().await;
    with_app(&hub).await;
    let alice = hub.token("alice").await;
    let bob = hub.token("bob").await;
    let (_, a) = hub.post("/v1/me/devices", &alice, apns("a1", None)).await;
    let (_, b) = hub.post("/v1/me/devices", &alice, apns("a2", None)).await;
    let (_, c) = hub.post("/v1/me/devices", &alice, apns("a3", None)).await;
    let id = |d: &Value| d["id"].as_str().unwrap().to_string();

    assert_eq!(
        hub.delete(&format!("/v1/me/devices/{}", id(&a)), &bob)
            .await
            .0,
        404,
        "bob cannot"
    );
    assert_eq!(
        hub.delete(&format!("/v1/me/devices/{}", id(&a)), &alice)
            .await
            .0,
        204
    );
    assert_eq!(
        hub.delete("/v1/me/devices?token=a2", &bob).await.0,
        404,
        "bob cannot by token either"
    );
    assert_eq!(hub.delete("/v1/me/devices?token=a2", &alice).await.0, 204);
    assert_eq!(
        hub.delete(&format!("/v1/users/bob/devices/{}", id(&c)), &hub.key)
            .await
            .0,
        404,
        "wrong owner named"
    );
    assert_eq!(
        hub.delete(&format!("/v1/users/alice/devices/{}", id(&c)), &hub.key)
            .await
            .0,
        204
    );
    assert!(devices(&hub, &alice).await.is_empty());
    let _ = b;
}

#[tokio::test]
async fn signing_out_everywhere_removes_every_device_of_the_user() {
    let hub = TestHub::start().await;
    with_app(&hub).await;
    let alice = hub.token("alice").await;
    hub.post("/v1/me/devices", &alice, apns("c1", None)).await;
    hub.post(
        "/v1/me/devices",
        &alice,
        json!({"app_id": "chat", "channel": "fcm", "token": "fcm-token:1", "platform": "android"}),
    )
    .await;
    let (status, body) = hub.delete("/v1/users/alice/devices", &hub.key).await;
    assert_eq!(status, 200);
    assert_eq!(body["removed"], 2);
    assert!(devices(&hub, &alice).await.is_empty());
}

#[tokio::test]
async fn web_push_subscriptions_and_opaque_connector_tokens_register() {
    let hub = TestHub::start().await;
    with_app(&hub).await;
    let alice = hub.token("alice").await;
    let subscription = json!({
        "endpoint": "https://push.example.net/send/abc",
        "keys": {
            "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            "auth": "BTBZMqHH6r4Tts7J_aSIgg"
        },
        "expirationTime": null
    });
    let (status, web) = hub.post("/v1/me/devices", &alice, json!({"app_id": "chat", "channel": "webpush", "subscription": subscription, "platform": "web"})).await;
    assert_eq!(status, 201, "{web}");
    assert_eq!(web["token"], "https://push.example.net/send/abc");
    let jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig";
    let (status, _) = hub.post("/v1/me/devices", &alice, json!({"app_id": "chat", "channel": "connector", "token": jwt_like, "platform": "other"})).await;
    assert_eq!(status, 201);
    assert_eq!(devices(&hub, &alice).await.len(), 2);
}

#[tokio::test]
async fn deleting_an_app_removes_its_devices() {
    let hub = TestHub::start().await;
    with_app(&hub).await;
    let alice = hub.token("alice").await;
    hub.post("/v1/me/devices", &alice, apns("dd", None)).await;
    assert_eq!(hub.delete("/v1/apps/chat", &hub.key).await.0, 204);
    assert!(devices(&hub, &alice).await.is_empty());
}
