//! The notification engine end to end (SPEC §3), through the real HTTP and WebSocket surface,
//! with a manual clock: time moves only when a test says so, so every rule is exact.

use std::sync::Arc;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::TestHub;
use serde_json::{Value, json};

const VISITOR_TOKEN: &str = "aaaa0001";

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    seq: u32,
}

impl Story {
    /// A support chat: app `chat` (grace 5 s, coalesce 3 s), agent `agent-7` and visitor
    /// `visitor-1` in conversation `c1`, the visitor with one iOS device.
    async fn new(rules: Value) -> Story {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let hub = TestHub::builder().clock(clock.clone()).start().await;
        let mut app = json!({"rules": {"grace_delay_ms": 5000, "coalesce_window_ms": 3000}});
        if let (Value::Object(r), Value::Object(extra)) = (&mut app["rules"], rules) {
            r.extend(extra);
        }
        let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
        assert_eq!(status, 201, "{body}");
        for (user, role) in [("visitor-1", "visitor"), ("agent-7", "agent")] {
            hub.join("c1", user, role).await;
        }
        let story = Story { hub, clock, seq: 0 };
        story.register("visitor-1", json!({"app_id": "chat", "channel": "apns", "token": VISITOR_TOKEN, "platform": "ios", "locale": "en"})).await;
        story
    }

    async fn register(&self, user: &str, device: Value) -> Value {
        let token = self.hub.token(user).await;
        let (status, body) = self.hub.post("/v1/me/devices", &token, device).await;
        assert!(status.is_success(), "{body}");
        body
    }

    async fn say(&mut self, from: &str, role: &str, text: &str) -> u64 {
        self.seq += 1;
        let event = json!({"event_id": format!("m{}", self.seq), "conversation_id": "c1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": from, "role": role, "name": "Ann"}, "text": text});
        let position = self.hub.events(event).await["position"].as_u64().unwrap();
        self.settle().await;
        position
    }

    /// Posts an event and lets the engine decide about it before the story goes on.
    async fn post(&mut self, event: Value) {
        self.hub.events(event).await;
        self.settle().await;
    }

    fn advance(&self, ms: i64) {
        self.clock.advance(time::Duration::milliseconds(ms));
        self.hub.state.engine.wake();
    }

    /// Decisions about `user`, oldest first, once the engine has caught up with everything
    /// posted (the outbox is empty and nothing due is left unfired).
    async fn decisions(&self, user: &str) -> Vec<Value> {
        self.settle().await;
        let (_, body) = self
            .hub
            .get(
                &format!("/v1/users/{user}/notifications?limit=500"),
                &self.hub.key,
            )
            .await;
        let mut list = body["notifications"].as_array().unwrap().clone();
        list.reverse();
        list
    }

    async fn settle(&self) {
        self.hub.settle_engine(self.clock.now()).await;
    }

    async fn deliveries(&self, notification: &Value) -> Vec<Value> {
        let id = notification["id"].as_str().unwrap();
        let (_, view) = self
            .hub
            .get(&format!("/v1/notifications/{id}"), &self.hub.key)
            .await;
        view["deliveries"].as_array().cloned().unwrap_or_default()
    }
}

fn with_status<'a>(decisions: &'a [Value], status: &str) -> Vec<&'a Value> {
    decisions.iter().filter(|d| d["status"] == status).collect()
}

#[tokio::test]
async fn agent_writes_while_the_visitor_is_away_one_push_after_the_grace_delay_carrying_the_latest_message_badge_3()
 {
    let mut s = Story::new(json!({})).await;
    s.say("agent-7", "agent", "Hello").await;
    s.say("agent-7", "agent", "Are you there?").await;
    s.say("agent-7", "agent", "Your order shipped").await;
    let before = s.decisions("visitor-1").await;
    assert_eq!(with_status(&before, "pending").len(), 1, "{before:#?}");
    assert_eq!(with_status(&before, "coalesced").len(), 2);
    assert!(
        with_status(&before, "sent").is_empty(),
        "nothing before the grace delay"
    );

    s.advance(5_000);
    let after = s.decisions("visitor-1").await;
    let sent = with_status(&after, "sent");
    assert_eq!(sent.len(), 1, "{after:#?}");
    let push = &sent[0]["push"];
    assert_eq!(push["kind"], "new_message");
    assert_eq!(push["message_count"], 3);
    assert_eq!(push["body"], "Your order shipped");
    assert_eq!(push["title"], "3 new messages from Ann");
    assert_eq!(push["badge"], 3);
    assert_eq!(push["unread"], 3);
    assert_eq!(push["collapse_key"], "conv:c1");
    let deliveries = s.deliveries(sent[0]).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["channel"], "apns");
}

#[tokio::test]
async fn a_visitor_who_is_looking_gets_the_message_live_and_no_push() {
    let mut s = Story::new(json!({})).await;
    let mut live = s.hub.live("visitor-1").await;
    live.resume(json!({})).await;
    s.say("agent-7", "agent", "Hi").await;
    assert_eq!(live.next_of("event").await["event"]["text"], "Hi");
    s.advance(60_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["status"], "suppressed");
    assert!(
        decisions[0]["reason"].as_str().unwrap().contains("looking"),
        "{}",
        decisions[0]
    );
    assert_eq!(decisions[0]["looking"]["state"], "foreground");
}

#[tokio::test]
async fn a_visitor_back_before_the_grace_delay_gets_nothing() {
    let mut s = Story::new(json!({})).await;
    s.say("agent-7", "agent", "Hi").await;
    s.advance(2_000);
    let mut live = s.hub.live("visitor-1").await;
    live.resume(json!({})).await;
    s.advance(10_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(decisions[0]["status"], "cancelled");
    assert!(
        decisions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("came back")
    );
}

#[tokio::test]
async fn a_grace_delay_of_zero_pushes_at_once() {
    let mut s = Story::new(json!({"grace_delay_ms": 0})).await;
    s.say("agent-7", "agent", "Now").await;
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(with_status(&decisions, "sent").len(), 1, "{decisions:#?}");
}

#[tokio::test]
async fn after_the_first_push_later_messages_go_at_once_but_at_most_one_per_coalesce_window() {
    let mut s = Story::new(json!({})).await;
    s.say("agent-7", "agent", "one").await;
    s.advance(5_000);
    assert_eq!(
        with_status(&s.decisions("visitor-1").await, "sent").len(),
        1
    );
    s.advance(1_000);
    s.say("agent-7", "agent", "two").await;
    s.say("agent-7", "agent", "three").await;
    assert_eq!(
        with_status(&s.decisions("visitor-1").await, "sent").len(),
        1,
        "inside the window: waits"
    );
    s.advance(2_000);
    let decisions = s.decisions("visitor-1").await;
    let sent = with_status(&decisions, "sent");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["push"]["message_count"], 2);
    assert_eq!(sent[1]["push"]["body"], "three");
    s.advance(10_000);
    s.say("agent-7", "agent", "four").await;
    assert_eq!(
        with_status(&s.decisions("visitor-1").await, "sent").len(),
        3,
        "after the window: at once, no grace"
    );
}

#[tokio::test]
async fn reading_on_another_device_sends_a_silent_read_push_with_the_same_collapse_key_and_badge_0()
{
    let mut s = Story::new(json!({})).await;
    let position = s.say("agent-7", "agent", "Hi").await;
    s.advance(5_000);
    s.decisions("visitor-1").await;
    let token = s.hub.token("visitor-1").await;
    let (status, read) = s
        .hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    assert_eq!(status, 200, "{read}");
    let decisions = s.decisions("visitor-1").await;
    let sent = with_status(&decisions, "sent");
    assert_eq!(sent.len(), 2, "{decisions:#?}");
    let read_push = &sent[1]["push"];
    assert_eq!(read_push["kind"], "read");
    assert_eq!(read_push["collapse_key"], sent[0]["push"]["collapse_key"]);
    assert_eq!(read_push["badge"], 0);
    assert!(
        read_push.get("title").is_none() && read_push.get("body").is_none(),
        "silent"
    );
    assert_eq!(read_push["high_priority"], false);
}

#[tokio::test]
async fn a_read_before_the_grace_delay_cancels_the_push() {
    let mut s = Story::new(json!({})).await;
    let position = s.say("agent-7", "agent", "Hi").await;
    let token = s.hub.token("visitor-1").await;
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    s.advance(10_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(decisions[0]["status"], "cancelled");
    assert!(decisions[0]["reason"].as_str().unwrap().contains("read"));
}

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

#[tokio::test]
async fn a_ringing_call_pushes_at_once_through_voip_and_a_cancel_revokes_it_and_leaves_a_missed_call()
 {
    let mut s = Story::new(json!({})).await;
    s.register("visitor-1", json!({"app_id": "chat", "channel": "apns", "token": "bbbb0002", "platform": "ios", "installation_id": "iphone"})).await;
    s.register("visitor-1", json!({"app_id": "chat", "channel": "apns_voip", "token": "cccc0003", "platform": "ios", "installation_id": "iphone"})).await;
    s.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"], "ring_timeout_s": 30})).await;
    let ringing = s.decisions("visitor-1").await;
    let incoming = with_status(&ringing, "sent");
    assert_eq!(incoming.len(), 1, "no grace delay for calls: {ringing:#?}");
    assert_eq!(incoming[0]["push"]["kind"], "incoming_call");
    assert_eq!(incoming[0]["push"]["high_priority"], true);
    let channels: Vec<(String, String)> = s
        .deliveries(incoming[0])
        .await
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap().to_string(),
                d["device_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        channels.iter().any(|(c, _)| c == "apns_voip"),
        "{channels:?}"
    );
    assert_eq!(
        channels.iter().filter(|(c, _)| c == "apns").count(),
        1,
        "the iPhone with a VoIP token rings through VoIP only: {channels:?}"
    );

    s.post(json!({"event_id": "r2", "conversation_id": "c1", "type": "call.cancelled", "occurred_at": "2026-11-23T10:00:05Z", "call_id": "call-1", "by": "agent-7"})).await;
    let after = s.decisions("visitor-1").await;
    let kinds: Vec<&str> = with_status(&after, "sent")
        .iter()
        .map(|d| d["push"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["incoming_call", "revoked_call", "missed_call"]);
    let missed = with_status(&after, "sent")[2];
    assert_eq!(missed["push"]["missed_calls"], 1);
    assert_eq!(missed["push"]["title"], "Missed call");
}

#[tokio::test]
async fn a_declined_call_is_revoked_without_a_missed_call_and_auto_join_apps_do_not_ring() {
    let mut s = Story::new(json!({})).await;
    s.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent"}, "callees": ["visitor-1"]})).await;
    s.post(json!({"event_id": "r2", "conversation_id": "c1", "type": "call.declined", "occurred_at": "2026-11-23T10:00:03Z", "call_id": "call-1", "by": "visitor-1"})).await;
    let kinds: Vec<String> = with_status(&s.decisions("visitor-1").await, "sent")
        .iter()
        .map(|d| d["push"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["incoming_call", "revoked_call"]);

    let mut auto = Story::new(json!({"auto_join_calls": true})).await;
    auto.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-9", "caller": {"id": "agent-7", "role": "agent"}, "callees": ["visitor-1"]})).await;
    let decisions = auto.decisions("visitor-1").await;
    assert_eq!(decisions[0]["status"], "suppressed");
    assert!(
        decisions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("automatically")
    );
}

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
