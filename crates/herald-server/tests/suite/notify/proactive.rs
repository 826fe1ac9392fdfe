//! Proactive notifications: `send_at` and cancelling.

use herald_engine::clock::Clock;
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_proactive_notification_waits_for_send_at_and_can_be_cancelled_until_then() {
    let s = Story::new(json!({})).await;
    let send_at = herald_engine::event::rfc3339(s.clock.now() + time::Duration::minutes(10));
    let request = json!({"app_id": "chat", "user_ids": ["visitor-1"], "title": "Sale", "body": "20% off", "data": {"promo": "x"}, "send_at": send_at});
    let (status, body) = s
        .hub
        .post("/v1/notifications", &s.hub.key, request.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    let first = body["notifications"][0]["notification_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = s.hub.post("/v1/notifications", &s.hub.key, request).await;
    let second = body["notifications"][0]["notification_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = s
        .hub
        .delete(&format!("/v1/notifications/{second}"), &s.hub.key)
        .await;
    assert_eq!(status, 200);
    s.advance(9 * 60_000);
    let (_, view) = s
        .hub
        .get(&format!("/v1/notifications/{first}"), &s.hub.key)
        .await;
    assert_eq!(view["status"], "scheduled");
    s.advance(60_000);
    s.settle().await;
    let (_, view) = s
        .hub
        .get(&format!("/v1/notifications/{first}"), &s.hub.key)
        .await;
    assert_eq!(view["status"], "sent", "{view}");
    assert_eq!(view["push"]["title"], "Sale");
    assert_eq!(view["push"]["data"]["promo"], "x");
    assert_eq!(view["deliveries"].as_array().unwrap().len(), 1);
    let (_, cancelled) = s
        .hub
        .get(&format!("/v1/notifications/{second}"), &s.hub.key)
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        s.hub
            .delete(&format!("/v1/notifications/{first}"), &s.hub.key)
            .await
            .0,
        409,
        "too late once sent"
    );
}
