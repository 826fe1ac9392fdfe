//! Through a hub: ten-kilobyte pushes cut to fit on a character boundary.

use herald_testkit::fake_fcm::FcmMessage;
use serde_json::{Value, json};

use super::*;

/// The message without its target, as FCM counts it.
fn size(sent: &FcmMessage) -> usize {
    let mut message = sent.message.as_object().unwrap().clone();
    message.remove("token");
    serde_json::to_vec(&message).unwrap().len()
}

#[tokio::test]
async fn ten_kilobyte_pushes_are_cut_to_fit_on_a_character_boundary() {
    let s = story().await;
    s.register("tok-long", "android").await;
    let text = "Grüße aus Köln! ".repeat(640);
    assert!(text.len() > 10_000);
    s.say("m1", "c1", &text).await;
    let sent = s.fake.wait_for(1).await.remove(0);
    assert_eq!(sent.status, 200);
    assert!(size(&sent) <= 4096, "{}", size(&sent));
    let body = sent.message["android"]["notification"]["body"]
        .as_str()
        .unwrap();
    assert!(body.ends_with('…'));
    assert!(text.starts_with(body.trim_end_matches('…')));

    // A proactive notification at the API's limits: 1 kB title, 4 kB body, 5 kB of data.
    let title = "T".repeat(1000);
    let body = "é".repeat(2000);
    let data: serde_json::Map<String, Value> = (1..=5)
        .map(|i| (format!("k{i}"), json!("v".repeat(1000))))
        .collect();
    let (status, answer) = s
        .hub
        .post(
            "/v1/notifications",
            &s.hub.key,
            json!({"app_id": "chat", "user_ids": ["visitor-1"], "title": title, "body": body, "data": data}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let sent = s.fake.wait_for(2).await.remove(1);
    assert_eq!(sent.status, 200);
    let size = size(&sent);
    assert!((3900..=4096).contains(&size), "cut to fit, no more: {size}");
    let notification = &sent.message["android"]["notification"];
    assert_eq!(notification["title"], title.as_str(), "the title is kept");
    let cut = notification["body"].as_str().unwrap();
    assert!(cut.ends_with('…') && body.starts_with(cut.trim_end_matches('…')));
    assert!(cut.len() > 100, "the text keeps room: {cut}");
    assert_eq!(
        sent.data("k1"),
        Some("v".repeat(1000).as_str()),
        "what fits stays"
    );
    assert_eq!(sent.data("kind"), Some("proactive"));
    assert!(s.fake.rejections().is_empty());
}
