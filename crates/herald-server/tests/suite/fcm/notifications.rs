//! Through a hub: Android notifications tagged per conversation, calls, iOS devices on FCM.

use herald_engine::clock::Clock;
use herald_testkit::fake_fcm::PROJECT_ID;
use serde_json::json;

use super::*;

#[tokio::test]
async fn an_agents_messages_reach_an_away_android_visitor_as_notifications_tagged_per_conversation_and_a_read_cancels_the_tag()
 {
    let s = story().await;
    s.register("tok-android-1", "android").await;
    s.say("m1", "c1", "first").await;
    let first = s.fake.wait_for(1).await.remove(0);
    s.say("m2", "c2", "second").await;
    let second = s.fake.wait_for(2).await.remove(1);

    assert_eq!(first.version, axum::http::Version::HTTP_2, "h2c");
    assert!(first.access_token.starts_with("ya29."));
    assert_eq!(first.project, PROJECT_ID);
    assert_eq!(first.token, "tok-android-1");
    let android = &first.message["android"];
    assert_eq!(android["priority"], "HIGH");
    assert_eq!(android["ttl"], "3600s", "the chat TTL, all of it left");
    let notification = &android["notification"];
    assert!(
        notification["title"].as_str().unwrap().contains("Ann"),
        "{notification}"
    );
    assert_eq!(notification["body"], "first");
    assert_eq!(notification["tag"], "conv:c1");
    assert_eq!(notification["notification_count"], 1);
    assert!(first.message.get("apns").is_none());
    assert_strings(&first.message["data"]);
    assert_eq!(first.data("kind"), Some("new_message"));
    assert_eq!(first.data("conversation_id"), Some("c1"));
    assert_eq!(first.data("event_id"), Some("m1"));

    let notification = &second.message["android"]["notification"];
    assert_eq!(notification["tag"], "conv:c2", "one tag per conversation");
    assert_eq!(notification["notification_count"], 2, "the absolute badge");
    s.delivery_reaches(&first, "delivered", 1).await;

    let user = s.hub.token("visitor-1").await;
    let position = first.data("position").unwrap().parse::<u64>().unwrap();
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &user,
            json!({"position": position}),
        )
        .await;
    let read = s.fake.wait_for(3).await.remove(2);
    assert_eq!(read.data("kind"), Some("read"));
    assert_eq!(read.data("tag"), Some("conv:c1"), "the tag to cancel");
    assert_eq!(read.data("badge"), Some("1"));
    assert!(
        read.message["android"].get("notification").is_none(),
        "data only"
    );
    assert!(read.message.get("notification").is_none());
    assert_eq!(read.message["android"]["priority"], "NORMAL");
    assert_eq!(read.message["android"]["collapse_key"], "conv:c1");
    assert_strings(&read.message["data"]);
    assert!(s.fake.rejections().is_empty(), "{:?}", s.fake.rejections());
}

#[tokio::test]
async fn call_ringing_is_a_high_priority_data_message_with_the_call() {
    let s = story().await;
    s.register("tok-android-2", "android").await;
    s.hub.events(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"], "ring_timeout_s": 30})).await;
    let ring = s.fake.wait_for(1).await.remove(0);
    assert_eq!(ring.message["android"]["priority"], "HIGH");
    assert_eq!(ring.message["android"]["ttl"], "30s", "the ring timeout");
    assert!(
        ring.message["android"].get("notification").is_none(),
        "apps ring from data"
    );
    assert_eq!(ring.message["android"]["collapse_key"], "call:call-1");
    assert_eq!(ring.data("kind"), Some("incoming_call"));
    assert_eq!(ring.data("call_id"), Some("call-1"));
    assert!(
        ring.data("body").is_some_and(|t| t.contains("Ann")),
        "{:?}",
        ring.message
    );
    assert_strings(&ring.message["data"]);
}

#[tokio::test]
async fn an_ios_device_on_fcm_gets_an_apns_block_and_a_read_goes_at_priority_five() {
    let s = story().await;
    s.register("tok-ios-1", "ios").await;
    let start = s.clock.now();
    let position = s.say("m1", "c1", "Hello").await;
    let alert = s.fake.wait_for(1).await.remove(0);
    assert!(alert.message.get("android").is_none());
    let apns = &alert.message["apns"];
    assert_eq!(apns["headers"]["apns-priority"], "10");
    assert_eq!(apns["headers"]["apns-push-type"], "alert");
    assert_eq!(apns["headers"]["apns-collapse-id"], "conv:c1");
    assert_eq!(
        apns["headers"]["apns-expiration"],
        (start + time::Duration::hours(1))
            .unix_timestamp()
            .to_string()
    );
    let aps = &apns["payload"]["aps"];
    assert_eq!(aps["alert"]["body"], "Hello");
    assert_eq!(aps["badge"], 1);
    assert_eq!(aps["thread-id"], "c1");

    let user = s.hub.token("visitor-1").await;
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &user,
            json!({"position": position}),
        )
        .await;
    let read = s.fake.wait_for(2).await.remove(1);
    let apns = &read.message["apns"];
    assert_eq!(
        apns["headers"]["apns-priority"], "5",
        "FCM: data-only to iOS is priority 5"
    );
    assert_eq!(apns["headers"]["apns-push-type"], "background");
    assert_eq!(apns["headers"]["apns-collapse-id"], "conv:c1");
    assert_eq!(
        apns["payload"]["aps"],
        json!({"content-available": 1, "badge": 0})
    );
    assert_eq!(read.data("tag"), Some("conv:c1"));
    assert_eq!(read.status, 200);
}
