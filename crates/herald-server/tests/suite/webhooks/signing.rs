//! One signed webhook per event, verified with either secret; metadata-only apps.

use herald_testkit::capture::CaptureServer;
use serde_json::json;

use super::*;

#[tokio::test]
async fn an_agents_message_to_an_away_visitor_is_one_signed_webhook_that_standardwebhooks_verifies_with_either_secret()
 {
    let receiver = CaptureServer::start().await;
    let url = format!("{}/hooks?src=herald", receiver.url);
    let mut s = Story::new(
        true,
        json!([endpoint("hooks", &url, ALL_EVENTS)]),
        json!({}),
    )
    .await;
    let position = s.say("Your order shipped").await;
    let notification = s.latest("new_message").await;
    let delivery = s.finished(&notification, "hooks").await;
    assert_eq!(delivery["status"], "delivered", "{delivery:#}");

    let requests = receiver.captured();
    assert_eq!(requests.len(), 1, "exactly one POST: {requests:#?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks?src=herald");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("webhook-id"),
        delivery["id"].as_str(),
        "the delivery id is the idempotency key"
    );
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let wall = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (wall - 300..=wall).contains(&timestamp),
        "{timestamp} vs {wall}"
    );
    let signatures: Vec<&str> = request
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(signatures.len(), 2, "one per secret: {signatures:?}");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));

    let body = request.json();
    assert_eq!(body["type"], "push_notification.new_message");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
    let data = &body["data"];
    assert_eq!(data["recipient"]["user_id"], "visitor-1");
    assert_eq!(data["conversation_id"], "c1");
    assert_eq!(data["position"], position);
    assert_eq!(data["event_id"], "m1");
    assert_eq!(
        (&data["unread"], &data["badge"], &data["message_count"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(data["kind"], "new_message");
    assert_eq!(data["body"], "Your order shipped");
    assert_eq!(data["sender"]["id"], "agent-7");
    assert_eq!(data["devices"].as_array().unwrap().len(), 1, "{data}");
    assert_eq!(data["devices"][0]["token"], VISITOR_TOKEN);
    assert_eq!(data["devices"][0]["channel"], "apns");
    assert_eq!(data["devices"][0]["platform"], "ios");
    assert!(request.body.len() < 20_000);

    assert_eq!(
        verify(request, &[OLD_SECRET, NEW_SECRET, STRANGER_SECRET]),
        ["ok", "ok", "WebhookVerificationError"],
        "each of the endpoint's secrets verifies; another secret does not"
    );
}

#[tokio::test]
async fn a_metadata_only_app_sends_ids_and_counts_but_no_text() {
    let receiver = CaptureServer::start().await;
    let mut s = Story::new(
        true,
        json!([endpoint("hooks", &receiver.url, ALL_EVENTS)]),
        json!({"content": {"mode": "metadata_only"}}),
    )
    .await;
    s.say("secret order details").await;
    let request = receiver.wait_for(1).await.remove(0);
    let text = String::from_utf8(request.body.to_vec()).unwrap();
    assert!(!text.contains("secret order details"), "{text}");
    let data = &request.json()["data"];
    for absent in ["title", "body", "lines", "sender"] {
        assert!(data.get(absent).is_none(), "{absent} in {data}");
    }
    assert_eq!(data["conversation_id"], "c1");
    assert_eq!(data["event_id"], "m1");
    assert_eq!((&data["unread"], &data["badge"]), (&json!(1), &json!(1)));
    assert_eq!(data["devices"][0]["token"], VISITOR_TOKEN);
    assert_eq!(verify(&request, &[NEW_SECRET]), ["ok"]);
}
