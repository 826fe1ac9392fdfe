//! Custom templates: hostile text kept as exact JSON, render failures, unknown variables.

use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn a_custom_template_keeps_hostile_text_and_names_as_exact_json_values() {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 0},
        "connector": {"preset": "custom", "template": {
            "to": "{{ device_token }}",
            "text": "{{ body }}",
            "from": "{{ sender_name }}",
            "line": "{{ sender_name }} wrote: {{ body }}",
            "title": "{{ title }}",
            "count": "{{ badge }}",
            "meta": {"conversation": "{{ conversation_id }}", "tags": ["chat", "{{ kind }}"]},
        }},
    }))
    .await;
    s.device(SESSION).await;
    let name = r#"Ann "The Hammer" O'Neil \ "}, "admin": true, "x": {""#;
    let text = "He said \"hi\" \\ C:\\temp\\new\n</script><script>alert(1)</script>\n\"}, \"count\": 999, \"to\": \"attacker\r\n\t😀 \u{2028} {{ badge }}";
    s.say_as(name, text).await;
    let call = &s.exactly(1).await[0];
    let parsed: Value = serde_json::from_slice(&call.body).expect("valid JSON");
    assert_eq!(
        parsed,
        json!({
            "to": SESSION,
            "text": text,
            "from": name,
            "line": format!("{name} wrote: {text}"),
            "title": format!("New message from {name}"),
            "count": 1,
            "meta": {"conversation": "c1", "tags": ["chat", "new_message"]},
        })
    );
}

#[tokio::test]
async fn a_template_that_fails_to_render_fails_the_delivery_permanently_with_the_reason() {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 0},
        "connector": {"preset": "custom", "template": {"order": "{{ data.order_id }}", "text": "{{ body }}"}},
    }))
    .await;
    s.device(SESSION).await;
    let (_, position) = s.say("where is my order?").await;
    let id = s.notification_at(position).await;
    let delivery = s.settled_delivery(&id).await;
    assert_eq!(delivery["status"], "failed", "{delivery:#}");
    assert_eq!(delivery["channel"], "connector");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivery:#}");
    assert_eq!(attempts[0]["outcome"], "permanent");
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("template") && reason.contains("order") && reason.contains("undefined"),
        "{reason}"
    );
    assert!(
        !reason.contains(SESSION),
        "the token is not in the reason: {reason}"
    );
    s.advance(600_000);
    s.exactly(0).await;

    // The same template renders for a push that has the data.
    let (status, body) = s
        .hub
        .post(
            "/v1/notifications",
            &s.hub.key,
            json!({"app_id": "chat", "user_ids": ["visitor-1"], "title": "Order", "body": "Shipped",
                "data": {"order_id": "A-1001"}}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let call = &s.exactly(1).await[0];
    assert_eq!(call.json(), json!({"order": "A-1001", "text": "Shipped"}));
}

#[tokio::test]
async fn a_custom_template_with_an_unknown_variable_is_refused_when_the_app_is_stored() {
    let hub = herald_testkit::TestHub::start().await;
    let app = serde_json::json!({"connector": {"callback_url": "https://push.example.com/cb", "preset": "custom",
        "template": {"payload": {"title": "{{ tittle }}"}}}});
    let (status, problem) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["path"],
        "connector.template.payload.title"
    );
    assert!(problem["detail"].as_str().unwrap().contains("tittle"));
    assert_eq!(
        hub.get("/v1/apps/chat", &hub.key).await.0,
        404,
        "nothing stored"
    );
}
