//! Email digests decided by the engine.

use serde_json::json;

use super::*;

/// An app with SMTP settings and a visitor with an email address.
async fn with_email(s: &Story) {
    let (_, mut app) = s.hub.get("/v1/apps/chat", &s.hub.key).await;
    app["smtp"] =
        json!({"host": "127.0.0.1", "port": 2525, "security": "none", "from": "chat@example.com"});
    let (status, body) = s.hub.put("/v1/apps/chat", &s.hub.key, app).await;
    assert_eq!(status, 200, "{body}");
    s.hub
        .put(
            "/v1/users/visitor-1/preferences",
            &s.hub.key,
            json!({"email": "vic@example.com"}),
        )
        .await;
}

#[tokio::test]
async fn unread_messages_are_emailed_as_one_digest_after_the_email_delay() {
    let mut s = Story::new(json!({"email_delay_ms": 600000})).await;
    with_email(&s).await;
    s.say("agent-7", "agent", "first").await;
    s.say("agent-7", "agent", "second <b>bold</b>").await;
    let before = s.decisions("visitor-1").await;
    let digests: Vec<_> = before.iter().filter(|d| d["kind"] == "digest").collect();
    assert_eq!(digests.len(), 1, "one digest per conversation: {before:#?}");
    assert_eq!(digests[0]["status"], "pending");
    s.advance(600_000);
    let after = s.decisions("visitor-1").await;
    let digest = after.iter().find(|d| d["kind"] == "digest").unwrap();
    assert_eq!(digest["status"], "sent", "{digest}");
    let lines: Vec<&str> = digest["push"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["first", "second <b>bold</b>"]);
    let deliveries = s.deliveries(digest).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["channel"], "email");
    assert!(
        after
            .iter()
            .filter(|d| d["status"] == "sent")
            .all(|d| d["kind"] != "read"),
        "reads are never emailed"
    );
}

#[tokio::test]
async fn a_read_before_the_email_delay_means_no_email() {
    let mut s = Story::new(json!({"email_delay_ms": 600000})).await;
    with_email(&s).await;
    let position = s.say("agent-7", "agent", "hello").await;
    let token = s.hub.token("visitor-1").await;
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    s.advance(600_000);
    let decisions = s.decisions("visitor-1").await;
    let digest = decisions.iter().find(|d| d["kind"] == "digest").unwrap();
    assert_eq!(digest["status"], "cancelled", "{digest}");
}

#[tokio::test]
async fn deleting_the_app_cancels_the_push_and_the_email_digest_that_waited_for_it() {
    let mut s = Story::new(json!({"email_delay_ms": 600000})).await;
    with_email(&s).await;
    s.say("agent-7", "agent", "hello").await;
    let (status, body) = s.hub.delete("/v1/apps/chat", &s.hub.key).await;
    assert!(status.is_success(), "{body}");
    s.advance(600_000);
    let decisions = s.decisions("visitor-1").await;
    for kind in ["new_message", "digest"] {
        let waited = decisions.iter().find(|d| d["kind"] == kind).unwrap();
        assert_eq!(waited["status"], "cancelled", "{waited}");
        assert!(
            waited.to_string().contains("the app was deleted"),
            "{waited}"
        );
    }
}

#[tokio::test]
async fn incoming_and_missed_calls_are_emailed_but_revocations_are_not() {
    let mut s = Story::new(json!({})).await;
    with_email(&s).await;
    s.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"]})).await;
    s.post(json!({"event_id": "r2", "conversation_id": "c1", "type": "call.timeout", "occurred_at": "2026-11-23T10:00:45Z", "call_id": "call-1"})).await;
    let decisions = s.decisions("visitor-1").await;
    for d in decisions.iter().filter(|d| d["status"] == "sent") {
        let emailed = s
            .deliveries(d)
            .await
            .iter()
            .any(|x| x["channel"] == "email");
        let kind = d["kind"].as_str().unwrap();
        assert_eq!(emailed, kind != "revoked_call", "{kind}");
    }
}

#[tokio::test]
async fn without_a_preference_the_digest_goes_to_the_participant_records_address_which_stays_private()
 {
    let mut s = Story::new(json!({"email_delay_ms": 60000})).await;
    let (_, mut app) = s.hub.get("/v1/apps/chat", &s.hub.key).await;
    app["smtp"] =
        json!({"host": "127.0.0.1", "port": 2525, "security": "none", "from": "chat@example.com"});
    s.hub.put("/v1/apps/chat", &s.hub.key, app).await;
    let path = "/v1/conversations/c1/participants/visitor-1";
    let (_, change) = s
        .hub
        .put(
            path,
            &s.hub.key,
            json!({"role": "visitor", "name": "visitor-1", "email": "vic@records.example"}),
        )
        .await;
    assert_eq!(
        change["changed"], false,
        "an address alone is no visible change: no transcript event"
    );
    s.say("agent-7", "agent", "hello").await;
    s.advance(60_000);
    let decisions = s.decisions("visitor-1").await;
    let digest = decisions.iter().find(|d| d["kind"] == "digest").unwrap();
    assert_eq!(digest["status"], "sent", "{digest}");
    let deliveries = s.deliveries(digest).await;
    assert_eq!(deliveries[0]["channel"], "email");
    let (_, transcript) = s
        .hub
        .get("/v1/conversations/c1/events?after=0", &s.hub.key)
        .await;
    assert!(
        !transcript.to_string().contains("records.example"),
        "the address never reaches the transcript"
    );
    let token = s.hub.token("agent-7").await;
    let (_, seen) = s
        .hub
        .get("/v1/me/conversations/c1/events?after=0", &token)
        .await;
    assert!(!seen.to_string().contains("records.example"));
}
