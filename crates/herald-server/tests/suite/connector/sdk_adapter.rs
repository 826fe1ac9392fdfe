//! The SDK-adapter role: the agreed payload to the customer's backend, one call per device.

use std::collections::BTreeSet;

use serde_json::json;

use super::*;

const PHONE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkZXZpY2UiOiJwaG9uZSIsImZjbSI6ImZYLTEyMyJ9.c2lnbmF0dXJlLXBob25l";
const TABLET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkZXZpY2UiOiJ0YWJsZXQiLCJhcG5zIjoiYWJjZCJ9.c2lnbmF0dXJlLXRhYmxldA";

#[tokio::test]
async fn sdk_adapter_role_live_while_looking_then_one_call_per_device_after_the_grace_delay_and_none_after_deregistering()
 {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 5000, "coalesce_window_ms": 3000},
        "connector": {"preset": "sdk_adapter", "auth_token": "backend-auth-7f3a"},
    }))
    .await;
    let phone = s.device(PHONE).await;
    s.device(TABLET).await;

    // Looking: the message arrives over the session, and the backend is not called.
    let mut live = s.hub.live("visitor-1").await;
    live.resume(json!({})).await;
    s.say("Hi, I am Ann").await;
    assert_eq!(live.next_of("event").await["event"]["text"], "Hi, I am Ann");
    s.advance(60_000);
    let decisions = s.decisions().await;
    assert_eq!(decisions[0]["status"], "suppressed", "{decisions:#?}");
    assert!(s.receiver.captured().is_empty(), "no call while looking");

    // Gone: after the grace delay, one call per connector device.
    live.close().await;
    eventually("the visitor is away", async || {
        s.hub
            .get("/v1/users/visitor-1/presence", &s.hub.key)
            .await
            .1["state"]
            == "away"
    })
    .await;
    let (_, position) = s.say("Your order shipped").await;
    s.advance(4_000);
    s.settle().await;
    assert!(
        s.receiver.captured().is_empty(),
        "nothing inside the grace delay"
    );
    s.advance(1_000);
    let calls = s.exactly(2).await;

    let client = s.hub.token("visitor-1").await;
    let badge = s.hub.get("/v1/me/unread", &client).await.1["total"].clone();
    assert_eq!(badge, 2, "both messages are unread");
    let mut tokens = BTreeSet::new();
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, "/push");
        assert_eq!(call.header("content-type"), Some("application/json"));
        assert_eq!(call.header("x-hmac"), None, "no secret, no signature");
        let body = call.json();
        let token = body["deviceToken"].as_str().unwrap().to_string();
        assert_eq!(
            body,
            json!({
                "authToken": "backend-auth-7f3a",
                "deviceToken": token,
                "payload": {
                    "aps": {
                        "alert": {"title": "New message from Ann", "body": "Your order shipped"},
                        "badge": badge,
                        "sound": "default",
                    },
                    "conversationId": "c1",
                    "position": position,
                    "unread": 2,
                    "kind": "new_message",
                },
            })
        );
        tokens.insert(token);
    }
    assert_eq!(
        tokens,
        BTreeSet::from([PHONE.to_string(), TABLET.to_string()]),
        "each device's token, passed through untouched"
    );

    // The phone is deregistered: the next push reaches the tablet only.
    let (status, body) = s
        .hub
        .delete(&format!("/v1/me/devices/{phone}"), &client)
        .await;
    assert!(status.is_success(), "{body}");
    s.say("Anything else?").await;
    s.advance(3_000);
    let calls = s.exactly(3).await;
    let last = calls[2].json();
    assert_eq!(last["deviceToken"], TABLET);
    assert_eq!(last["payload"]["aps"]["badge"], 3);
    assert_eq!(last["payload"]["aps"]["alert"]["body"], "Anything else?");
}
