//! A message per platform, `event_id_only`, priorities, a homeserver's retries.

use super::*;

#[tokio::test]
async fn a_message_reaches_an_iphone_as_sygnal_shapes_it_with_unread_plus_missed_calls_as_badge() {
    let g = Gateway::start().await;
    let (pushkey, token) = ios_pushkey(1);
    let (status, body) = g
        .notify(message(
            json!([{"app_id": IOS, "pushkey": pushkey, "pushkey_ts": 42}]),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"rejected": []}));
    let requests = g.apns.requests_for(&token);
    assert_eq!(
        requests.len(),
        1,
        "one push, answered before the homeserver got its 200"
    );
    // Sygnal's own expectation for this notification (tests/test_apns.py, test_expected).
    assert_eq!(
        requests[0].payload,
        json!({
            "room_id": "!slw48wfj34rtnrf:example.com",
            "event_id": "$qTOWWTEL48yPm3uT-gdNhFcoHxfKbZuqRVnnWWSkGBs",
            "aps": {"alert": {"loc-key": "MSG_FROM_USER_IN_ROOM_WITH_CONTENT",
                              "loc-args": ["Major Tom", "Mission Control", "I'm floating in a most peculiar way."]},
                    "badge": 3}
        })
    );
    assert_eq!(requests[0].header("apns-priority"), Some("10"));
    assert_eq!(requests[0].header("apns-push-type"), Some("alert"));
    assert_eq!(requests[0].header("apns-topic"), Some(TOPIC));
}

#[tokio::test]
async fn event_id_only_sends_ids_and_counts_on_the_clients_default_payload() {
    let g = Gateway::start().await;
    let (pushkey, token) = ios_pushkey(2);
    let device = json!({"app_id": IOS, "pushkey": pushkey, "data": {"format": "event_id_only",
        "default_payload": {"aps": {"mutable-content": 1, "alert": {"loc-key": "SINGLE_UNREAD", "loc-args": []}}}}});
    let (status, body) = g
        .notify(json!({"room_id": "!slw48wfj34rtnrf:example.com",
            "event_id": "$qTOWWTEL48yPm3uT-gdNhFcoHxfKbZuqRVnnWWSkGBs", "counts": {"unread": 2}, "devices": [device]}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"rejected": []})));
    let requests = g.apns.requests_for(&token);
    assert_eq!(
        requests[0].payload,
        json!({
            "room_id": "!slw48wfj34rtnrf:example.com",
            "event_id": "$qTOWWTEL48yPm3uT-gdNhFcoHxfKbZuqRVnnWWSkGBs",
            "unread_count": 2,
            "aps": {"mutable-content": 1, "alert": {"loc-key": "SINGLE_UNREAD", "loc-args": []}}
        }),
        "no message text leaves Herald"
    );
}

#[tokio::test]
async fn an_android_phone_gets_flat_string_data_and_low_priority_when_asked() {
    let g = Gateway::start().await;
    let mut n = message(json!([{"app_id": ANDROID, "pushkey": "fcm-token-1"}]));
    n["prio"] = json!("low");
    let (status, body) = g.notify(n).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"rejected": []})));
    let messages = g.fcm.messages_for("fcm-token-1");
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        m.data("event_id"),
        Some("$qTOWWTEL48yPm3uT-gdNhFcoHxfKbZuqRVnnWWSkGBs")
    );
    assert_eq!(m.data("room_id"), Some("!slw48wfj34rtnrf:example.com"));
    assert_eq!(m.data("type"), Some("m.room.message"));
    assert_eq!(m.data("sender_display_name"), Some("Major Tom"));
    assert_eq!(
        m.data("content_body"),
        Some("I'm floating in a most peculiar way.")
    );
    assert_eq!(m.data("content_msgtype"), Some("m.text"));
    assert_eq!(m.data("unread"), Some("2"));
    assert_eq!(m.data("missed_calls"), Some("1"));
    assert_eq!(m.data("prio"), Some("normal"));
    assert_eq!(m.message["android"]["priority"], "NORMAL");
    assert!(
        m.message.get("notification").is_none()
            && m.message["android"].get("notification").is_none()
    );
}

#[tokio::test]
async fn a_browser_decrypts_the_notification_under_vapid() {
    let g = Gateway::start().await;
    let peer = PushService::start().await;
    let (device, subscription) = g.web_device(&peer, json!({})).await;
    let (status, body) = g.notify(message(json!([device]))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"rejected": []})));
    let messages = peer.wait_for(&subscription, 1).await;
    let payload: Value = serde_json::from_str(&messages[0]).unwrap();
    assert_eq!(
        payload["event_id"],
        "$qTOWWTEL48yPm3uT-gdNhFcoHxfKbZuqRVnnWWSkGBs"
    );
    assert_eq!(payload["room_name"], "Mission Control");
    assert_eq!(payload["unread"], 2);
    assert_eq!(
        payload["content"]["body"],
        "I'm floating in a most peculiar way."
    );
}

#[tokio::test]
async fn a_homeservers_retry_of_the_same_event_pushes_once_but_badge_updates_always_go() {
    let g = Gateway::start().await;
    let (pushkey, token) = ios_pushkey(3);
    let devices = json!([{"app_id": IOS, "pushkey": pushkey}]);
    for _ in 0..2 {
        let (status, body) = g.notify(message(devices.clone())).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"rejected": []})));
    }
    assert_eq!(
        g.apns.requests_for(&token).len(),
        1,
        "the retry was not sent again"
    );
    let badge = json!({"counts": {"unread": 0}, "devices": devices});
    for _ in 0..2 {
        let (status, _) = g.notify(badge.clone()).await;
        assert_eq!(status, 200);
    }
    let requests = g.apns.requests_for(&token);
    assert_eq!(
        requests.len(),
        3,
        "count-only notifications carry no event to repeat"
    );
    assert_eq!(requests[2].payload, json!({"aps": {"badge": 0}}));
}

#[tokio::test]
async fn low_priority_goes_to_apns_at_priority_5() {
    let g = Gateway::start().await;
    let (pushkey, token) = ios_pushkey(4);
    let mut n = message(json!([{"app_id": IOS, "pushkey": pushkey}]));
    n["prio"] = json!("low");
    assert_eq!(g.notify(n).await.0, 200);
    assert_eq!(
        g.apns.requests_for(&token)[0].header("apns-priority"),
        Some("5")
    );
}

#[tokio::test]
async fn every_notify_is_counted_in_the_metrics() {
    let g = Gateway::start().await;
    let (pushkey, _) = ios_pushkey(5);
    g.notify(message(
        json!([{"app_id": IOS, "pushkey": pushkey}, {"app_id": "unknown.app", "pushkey": "x"}]),
    ))
    .await;
    let metrics = g
        .hub
        .http
        .get(g.hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "herald_matrix_pushes_total{result=\"sent\"} 1",
        "herald_matrix_pushes_total{result=\"rejected\"} 1",
        "herald_matrix_requests_total{result=\"ok\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}
