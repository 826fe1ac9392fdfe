//! The app's rules, a user's pause and language, bad requests, and another tenant.

use std::sync::Arc;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::TestHub;
use serde_json::json;

use super::*;

#[tokio::test]
async fn bot_messages_and_secondary_participants_follow_the_apps_rules() {
    let mut s = Story::new(
        json!({"grace_delay_ms": 0, "bot_message_roles": ["agent"], "secondary_rule": "never"}),
    )
    .await;
    s.hub
        .put(
            "/v1/conversations/c1/participants/agent-2",
            &s.hub.key,
            json!({"role": "agent", "secondary": true}),
        )
        .await;
    s.register(
        "agent-2",
        json!({"app_id": "chat", "channel": "fcm", "token": "fcm:agent-2", "platform": "android"}),
    )
    .await;
    s.say("bot-1", "bot", "I am a bot").await;
    let visitor = s.decisions("visitor-1").await;
    assert_eq!(visitor.len(), 1);
    assert!(
        visitor[0]["reason"]
            .as_str()
            .unwrap()
            .contains("bot messages"),
        "{}",
        visitor[0]
    );
    s.say("visitor-1", "visitor", "hello agents").await;
    let secondary = s.decisions("agent-2").await;
    assert!(secondary.iter().all(|d| d["status"] == "suppressed"));
    assert!(
        secondary
            .iter()
            .any(|d| d["reason"].as_str().unwrap().contains("secondary")),
        "{secondary:#?}"
    );
}

#[tokio::test]
async fn a_paused_user_gets_the_push_when_the_pause_ends_in_their_language() {
    let mut s = Story::new(json!({"grace_delay_ms": 0})).await;
    let until = herald_engine::event::rfc3339(s.clock.now() + time::Duration::minutes(30));
    let (status, _) = s
        .hub
        .put(
            "/v1/users/visitor-1/preferences",
            &s.hub.key,
            json!({"pause_until": until, "locale": "de"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, prefs) = s
        .hub
        .get("/v1/users/visitor-1/preferences", &s.hub.key)
        .await;
    assert_eq!(prefs["locale"], "de");
    s.say("agent-7", "agent", "Hallo").await;
    let held = s.decisions("visitor-1").await;
    assert_eq!(held[0]["status"], "pending");
    assert!(
        held[0]["reason"].as_str().unwrap().contains("paused"),
        "{}",
        held[0]
    );
    s.advance(30 * 60_000);
    let decisions = s.decisions("visitor-1").await;
    let sent = with_status(&decisions, "sent");
    assert_eq!(sent.len(), 1, "{decisions:#?}");
    assert_eq!(sent[0]["push"]["title"], "Neue Nachricht von Ann");
}

#[tokio::test]
async fn bad_preferences_and_notification_requests_are_refused_with_the_field_named() {
    let s = Story::new(json!({})).await;
    let cases = [
        (
            "/v1/users/visitor-1/preferences",
            json!({"quiet_hours": {"start": "22:00", "end": "7", "time_zone": "UTC"}}),
            "quiet_hours.end",
        ),
        (
            "/v1/users/visitor-1/preferences",
            json!({"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Nowhere/City"}}),
            "quiet_hours.time_zone",
        ),
        (
            "/v1/users/visitor-1/preferences",
            json!({"snooze": true}),
            "snooze",
        ),
    ];
    for (path, body, field) in cases {
        let (status, problem) = s.hub.put(path, &s.hub.key, body).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["path"], field);
    }
    let base = json!({"app_id": "chat", "user_ids": ["visitor-1"], "title": "t", "body": "b"});
    let mut bad = vec![];
    for (field, value) in [
        ("user_ids", json!([])),
        ("app_id", json!("nope")),
        ("channels", json!(["pigeon"])),
        ("ttl", json!(0)),
        ("data", json!({"google.x": "y"})),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let (status, problem) = s.hub.post("/v1/notifications", &s.hub.key, body).await;
        assert_eq!(status, 422, "{field}: {problem}");
        bad.push(problem["errors"][0]["path"].as_str().unwrap().to_string());
    }
    assert_eq!(
        bad,
        ["user_ids", "app_id", "channels[0]", "ttl", "data.google.x"]
    );
    let (_, list) = s
        .hub
        .get("/v1/users/visitor-1/notifications", &s.hub.key)
        .await;
    assert_eq!(list["notifications"], json!([]), "nothing was scheduled");
}

#[tokio::test]
async fn another_tenant_never_sees_a_users_decisions_or_preferences() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = TestHub::builder()
        .clock(clock.clone())
        .configure(|c| c.auth.operator_key = Some("operator-key-0123456789".into()))
        .start()
        .await;
    hub.put(
        "/v1/apps/chat",
        &hub.key,
        json!({"rules": {"grace_delay_ms": 0}}),
    )
    .await;
    hub.put(
        "/v1/conversations/c1/participants/visitor-1",
        &hub.key,
        json!({"role": "visitor"}),
    )
    .await;
    hub.put(
        "/v1/users/visitor-1/preferences",
        &hub.key,
        json!({"locale": "fr"}),
    )
    .await;
    hub.events(json!({"event_id": "m1", "conversation_id": "c1", "type": "message.created", "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "agent-7", "role": "agent"}, "text": "tenant A secret"})).await;
    let story = Story { hub, clock, seq: 0 };
    let mine = story.decisions("visitor-1").await;
    assert_eq!(mine.len(), 1);
    let hub = &story.hub;
    let (_, created) = hub
        .post(
            "/v1/admin/tenants",
            "operator-key-0123456789",
            json!({"id": "other"}),
        )
        .await;
    let other = created["secret"].as_str().unwrap();
    let id = mine[0]["id"].as_str().unwrap();
    assert_eq!(
        hub.get(&format!("/v1/notifications/{id}"), other).await.0,
        404
    );
    assert_eq!(
        hub.delete(&format!("/v1/notifications/{id}"), other)
            .await
            .0,
        404
    );
    let (_, list) = hub.get("/v1/users/visitor-1/notifications", other).await;
    assert_eq!(list["notifications"], json!([]));
    let (_, prefs) = hub.get("/v1/users/visitor-1/preferences", other).await;
    assert_eq!(prefs, json!({}));
}
