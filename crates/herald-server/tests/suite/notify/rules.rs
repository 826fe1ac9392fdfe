//! Every rule explained, quiet hours, a restart, metadata-only apps.

use herald_engine::clock::Clock;
use serde_json::json;

use super::*;

#[tokio::test]
async fn why_was_i_not_notified_every_rule_is_explained() {
    let mut s = Story::new(json!({"notify_roles": ["visitor"]})).await;
    s.hub
        .put(
            "/v1/conversations/c1/participants/agent-2",
            &s.hub.key,
            json!({"role": "agent"}),
        )
        .await;
    s.register(
        "agent-2",
        json!({"app_id": "chat", "channel": "fcm", "token": "fcm:agent-2", "platform": "android"}),
    )
    .await;
    s.say(
        "visitor-1",
        "visitor",
        "agents are not notified by this app",
    )
    .await;
    s.say("sys", "system", "Conversation assigned").await;
    s.post(json!({"event_id": "t1", "conversation_id": "c1", "type": "notice.typing_started", "occurred_at": "2026-11-23T10:00:00Z",
        "actor": {"id": "agent-7", "role": "agent"}})).await;
    let agent = s.decisions("agent-2").await;
    let reasons: Vec<&str> = agent
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("role agent")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("system messages")),
        "{reasons:?}"
    );
    let visitor = s.decisions("visitor-1").await;
    let reasons: Vec<&str> = visitor
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("filters out notice.typing_started")),
        "{reasons:?}"
    );
    assert!(visitor.iter().all(|d| d["status"] != "sent"));
    let no_device = s.decisions("agent-7").await;
    assert!(
        no_device
            .iter()
            .all(|d| d["reason"].as_str().unwrap().contains("no device")),
        "{no_device:#?}"
    );
}

#[tokio::test]
async fn quiet_hours_defer_the_push_to_their_end_instead_of_dropping_it() {
    let mut s = Story::new(json!({})).await;
    let now = s.clock.now();
    let start = now - time::Duration::hours(1);
    let end = now + time::Duration::hours(2);
    let hhmm = |t: time::OffsetDateTime| format!("{:02}:{:02}", t.hour(), t.minute());
    let prefs =
        json!({"quiet_hours": {"start": hhmm(start), "end": hhmm(end), "time_zone": "UTC"}});
    let (status, body) = s
        .hub
        .put("/v1/users/visitor-1/preferences", &s.hub.key, prefs)
        .await;
    assert_eq!(status, 200, "{body}");
    s.say("agent-7", "agent", "late message").await;
    s.advance(5_000);
    let held = s.decisions("visitor-1").await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["status"], "pending");
    assert!(
        held[0]["reason"].as_str().unwrap().contains("quiet hours"),
        "{}",
        held[0]
    );
    s.advance(2 * 3_600_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(
        with_status(&decisions, "sent").len(),
        1,
        "sent when quiet hours end: {decisions:#?}"
    );
}

#[tokio::test]
async fn a_pending_push_survives_a_restart_and_fires_once() {
    let mut s = Story::new(json!({})).await;
    s.say("agent-7", "agent", "before the restart").await;
    let Story { hub, clock, seq } = s;
    let hub = hub.restart().await;
    let s = Story { hub, clock, seq };
    s.advance(5_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(with_status(&decisions, "sent").len(), 1, "{decisions:#?}");
    s.advance(60_000);
    assert_eq!(
        with_status(&s.decisions("visitor-1").await, "sent").len(),
        1,
        "not doubled"
    );
}

#[tokio::test]
async fn metadata_only_apps_push_ids_and_counts_but_no_text() {
    let mut s = Story::new(json!({"grace_delay_ms": 0})).await;
    let (_, mut app) = s.hub.get("/v1/apps/chat", &s.hub.key).await;
    app["content"]["mode"] = json!("metadata_only");
    s.hub.put("/v1/apps/chat", &s.hub.key, app).await;
    s.say("agent-7", "agent", "secret order details").await;
    let decisions = s.decisions("visitor-1").await;
    let push = &with_status(&decisions, "sent")[0]["push"];
    assert!(!push.to_string().contains("secret order details"), "{push}");
    assert!(push.get("title").is_none() && push.get("body").is_none());
    assert_eq!(push["conversation_id"], "c1");
    assert_eq!(push["unread"], 1);
}
