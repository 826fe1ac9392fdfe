//! Telling the other side that the customer left (issue 18.6, GMS's "customer is not online"):
//! with the app's `rules.left_notice` on, a visitor whose last live session goes away — closed,
//! to the background, or dropped and not back within the reconnect grace — leaves a
//! `notice.custom` in each of their conversations, which the agent's live session receives.

use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::ManualClock;
use herald_testkit::{LiveClient, PATIENCE, TestHub};
use serde_json::{Value, json};

/// App `chat` with `left_notice` as given; visitor `visitor-1` and agent `agent-7` in `c1`; the
/// agent is looking at a live session.
async fn chat(left_notice: Value, hub: TestHub) -> (TestHub, LiveClient) {
    let app = json!({"rules": {"left_notice": left_notice}});
    let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 201, "{body}");
    hub.join("c1", "visitor-1", "visitor").await;
    hub.join("c1", "agent-7", "agent").await;
    let mut agent = hub.live("agent-7").await;
    agent.resume(json!({"c1": 2})).await;
    assert_eq!(agent.catch_up("c1").await, Vec::<u64>::new());
    (hub, agent)
}

async fn looking_visitor(hub: &TestHub) -> LiveClient {
    let mut visitor = hub.live("visitor-1").await;
    visitor.resume(json!({})).await;
    eventually(async || presence(hub).await["state"] == "foreground").await;
    visitor
}

async fn presence(hub: &TestHub) -> Value {
    hub.get("/v1/users/visitor-1/presence", &hub.key).await.1
}

/// Polls until `check` holds (a liveness bound, not a speed assertion).
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next event frame the agent receives, if one comes within `wait`.
async fn next_event(agent: &mut LiveClient, wait: Duration) -> Option<Value> {
    while let Some(frame) = agent.try_next(wait).await {
        if frame["type"] == "event" {
            return Some(frame);
        }
    }
    None
}

fn assert_left(frame: &Value) {
    assert_eq!(frame["conversation_id"], "c1");
    let event = &frame["event"];
    assert_eq!(event["type"], "notice.custom", "{frame}");
    assert_eq!(event["text"], "customer is not online");
    assert_eq!(event["data"], json!({"herald": "user_left"}));
    assert_eq!(event["actor"]["id"], "visitor-1");
    assert_eq!(event["actor"]["role"], "visitor");
}

#[tokio::test]
async fn visitors_last_session_closes_the_agents_live_session_receives_customer_is_not_online() {
    let (hub, mut agent) = chat(json!({"enabled": true}), TestHub::start().await).await;
    let visitor = looking_visitor(&hub).await;
    visitor.close().await;

    let frame = next_event(&mut agent, PATIENCE).await.expect("a notice");
    assert_left(&frame);
    // An ordinary event: in the transcript too.
    let (_, events) = hub
        .get("/v1/conversations/c1/events?after=2", &hub.key)
        .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["text"], "customer is not online");
}

#[tokio::test]
async fn a_visitor_going_to_the_background_leaves_the_configured_text() {
    let rules = json!({"enabled": true, "text": "the customer stepped away"});
    let (hub, mut agent) = chat(rules, TestHub::start().await).await;
    let mut visitor = looking_visitor(&hub).await;
    visitor
        .send(json!({"type": "state", "state": "background"}))
        .await;

    let frame = next_event(&mut agent, PATIENCE).await.expect("a notice");
    assert_eq!(frame["event"]["text"], "the customer stepped away");
}

#[tokio::test]
async fn a_dropped_visitor_is_announced_only_once_the_reconnect_grace_ends_without_a_return() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = TestHub::builder().clock(clock.clone()).start().await;
    let (hub, mut agent) = chat(json!({"enabled": true}), hub).await;
    let visitor = looking_visitor(&hub).await;
    visitor.drop_connection();
    eventually(async || presence(&hub).await["sessions"] == 0).await;
    assert_eq!(
        next_event(&mut agent, Duration::from_millis(300)).await,
        None,
        "the visitor may still come back"
    );

    clock.advance(time::Duration::seconds(11));
    let frame = next_event(&mut agent, PATIENCE).await.expect("a notice");
    assert_left(&frame);
}

#[tokio::test]
async fn with_the_option_off_nothing_is_posted() {
    let (hub, mut agent) = chat(json!({"enabled": false}), TestHub::start().await).await;
    let visitor = looking_visitor(&hub).await;
    visitor.close().await;
    eventually(async || presence(&hub).await["state"] == "away").await;

    assert_eq!(
        next_event(&mut agent, Duration::from_millis(500)).await,
        None
    );
    let (_, events) = hub
        .get("/v1/conversations/c1/events?after=2", &hub.key)
        .await;
    assert_eq!(events["events"], json!([]));
}

#[tokio::test]
async fn a_left_notice_without_text_is_refused_with_its_path() {
    let hub = TestHub::start().await;
    let app = json!({"rules": {"left_notice": {"enabled": true, "text": ""}}});
    let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["path"], "rules.left_notice.text");
    let app = json!({"rules": {"left_notice": {"roles": ["customer"]}}});
    let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("rules.left_notice.roles"),
        "{body}"
    );
}

#[tokio::test]
async fn the_openapi_document_names_the_option() {
    let hub = TestHub::start().await;
    let document: Value = reqwest::get(hub.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = &document["paths"]["/v1/apps/{app_id}"]["put"]["requestBody"]["description"];
    assert!(body.as_str().unwrap().contains("left_notice"), "{body}");
}
