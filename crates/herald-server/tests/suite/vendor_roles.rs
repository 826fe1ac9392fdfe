//! Vendor roles end to end (issue 18): group calls where one callee declines, pushes triggered
//! by notices, per-role secondary rules, and agents invited into or forwarded a conversation.
//! Told through the real HTTP surface with a manual clock, like `notify.rs`.

use std::sync::Arc;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::{RecordingChannel, TestHub};
use serde_json::{Value, json};

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    /// Every FCM delivery (the phones are Android).
    phones: Arc<RecordingChannel>,
}

impl Story {
    /// App `chat` with `rules` (beside grace 0 unless given), agent `agent-7` and visitor
    /// `visitor-1` in `c1`, the visitor with an Android phone.
    async fn new(rules: Value) -> Story {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let phones = RecordingChannel::new();
        let hub = TestHub::builder()
            .clock(clock.clone())
            .channel("fcm", phones.clone())
            .start()
            .await;
        let mut app = json!({"rules": {"grace_delay_ms": 0, "coalesce_window_ms": 0}});
        if let (Value::Object(r), Value::Object(extra)) = (&mut app["rules"], rules) {
            r.extend(extra);
        }
        let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
        assert_eq!(status, 201, "{body}");
        for (user, role) in [("visitor-1", "visitor"), ("agent-7", "agent")] {
            hub.join("c1", user, role).await;
        }
        let story = Story { hub, clock, phones };
        story.phone("visitor-1").await;
        story
    }

    /// Registers an Android phone of `user` in the app.
    async fn phone(&self, user: &str) {
        let device = json!({"app_id": "chat", "channel": "fcm", "token": format!("fcm:{user}"), "platform": "android"});
        let token = self.hub.token(user).await;
        let (status, body) = self.hub.post("/v1/me/devices", &token, device).await;
        assert!(status.is_success(), "{body}");
    }

    async fn post(&self, event: Value) {
        self.hub.events(event).await;
        self.hub.settle_engine(self.clock.now()).await;
    }

    /// Decisions about `user`, oldest first.
    async fn decisions(&self, user: &str) -> Vec<Value> {
        self.hub.settle_engine(self.clock.now()).await;
        let path = format!("/v1/users/{user}/notifications?limit=500");
        let (_, body) = self.hub.get(&path, &self.hub.key).await;
        let mut list = body["notifications"].as_array().unwrap().clone();
        list.reverse();
        list
    }

    /// The kinds of the pushes sent to `user`, oldest first.
    async fn sent(&self, user: &str) -> Vec<String> {
        let decisions = self.decisions(user).await;
        decisions
            .iter()
            .filter(|d| was_sent(d))
            .map(|d| d["push"]["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Whether a decision went out (it may have been delivered since).
fn was_sent(decision: &Value) -> bool {
    let log = decision["log"].as_array().unwrap();
    log.iter().any(|step| step["status"] == "sent")
}

fn call_event(id: &str, kind: &str, by: Option<&str>) -> Value {
    let mut e = json!({"event_id": id, "conversation_id": "c1", "type": kind,
        "occurred_at": "2026-11-23T10:00:00Z", "call_id": "call-1"});
    if let Some(by) = by {
        e["by"] = json!(by);
    }
    e
}

#[tokio::test]
async fn one_callee_declining_a_group_call_ends_it_for_that_callee_only() {
    let s = Story::new(json!({})).await;
    s.hub.join("c1", "visitor-2", "visitor").await;
    s.phone("visitor-2").await;
    s.post(json!({"event_id": "k1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1", "visitor-2"]}))
        .await;
    s.post(call_event("k2", "call.declined", Some("visitor-1")))
        .await;
    assert_eq!(s.sent("visitor-1").await, ["incoming_call", "revoked_call"]);
    assert_eq!(
        s.sent("visitor-2").await,
        ["incoming_call"],
        "visitor-2 is still ringing"
    );

    s.post(call_event("k3", "call.timeout", None)).await;
    assert_eq!(
        s.sent("visitor-1").await,
        ["incoming_call", "revoked_call"],
        "the decliner misses nothing"
    );
    assert_eq!(
        s.sent("visitor-2").await,
        ["incoming_call", "revoked_call", "missed_call"],
        "who never answered missed it"
    );
    assert!(
        s.sent("agent-7").await.is_empty(),
        "the caller is told nothing"
    );
    let delivered = s.phones.wait_for(5).await;
    let to = |user: &str, kind: &str| {
        delivered
            .iter()
            .filter(|d| d.push.user_id.as_str() == user && d.push.kind.as_str() == kind)
            .count()
    };
    assert_eq!(
        (
            to("visitor-1", "revoked_call"),
            to("visitor-1", "missed_call")
        ),
        (1, 0)
    );
    assert_eq!(
        (
            to("visitor-2", "revoked_call"),
            to("visitor-2", "missed_call")
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn secondary_agents_and_secondary_visitors_can_have_different_rules() {
    let rules = json!({"secondary_rule": {"agent": "never", "visitor": "always"}});
    let s = Story::new(rules.clone()).await;
    let (_, app) = s.hub.get("/v1/apps/chat", &s.hub.key).await;
    assert_eq!(
        app["rules"]["secondary_rule"], rules["secondary_rule"],
        "GET shows what was stored"
    );
    for (user, role) in [("agent-2", "agent"), ("visitor-2", "visitor")] {
        let path = format!("/v1/conversations/c1/participants/{user}");
        let (status, _) = s
            .hub
            .put(&path, &s.hub.key, json!({"role": role, "secondary": true}))
            .await;
        assert_eq!(status, 200);
        s.phone(user).await;
    }
    s.post(json!({"event_id": "m1", "conversation_id": "c1", "type": "message.created", "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "visitor-1", "role": "visitor", "name": "Vera"}, "text": "hello"}))
        .await;
    let agent = s.decisions("agent-2").await;
    assert_eq!(agent.len(), 1, "{agent:#?}");
    assert_eq!(agent[0]["status"], "suppressed");
    assert_eq!(
        agent[0]["reason"],
        "the app never notifies secondary participants with role agent"
    );
    assert_eq!(s.sent("visitor-2").await, ["new_message"]);

    let (status, body) = s
        .hub
        .put(
            "/v1/apps/chat",
            &s.hub.key,
            json!({"rules": {"secondary_rule": {"robot": "never"}}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["path"], "rules.secondary_rule");
    let (status, body) = s
        .hub
        .put(
            "/v1/apps/chat",
            &s.hub.key,
            json!({"rules": {"secondary_rule": "never"}}),
        )
        .await;
    assert!(status.is_success(), "the single value still works: {body}");
}

/// Unblu's invitation and forwarding notifications: an agent the conversation is forwarded to
/// (or who is invited into it) is told if away; one who joins on their own, or who is looking
/// at a live session, is not pushed.
#[tokio::test]
async fn an_agent_forwarded_a_conversation_while_away_gets_an_invitation_push() {
    let s = Story::new(json!({})).await;
    let add = async |user: &str, by: Option<&str>| {
        let mut body = json!({"role": "agent", "name": user});
        if let Some(by) = by {
            body["by"] = json!(by);
        }
        let path = format!("/v1/conversations/c1/participants/{user}");
        let (status, answer) = s.hub.put(&path, &s.hub.key, body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["changed"], true);
        s.hub.settle_engine(s.clock.now()).await;
    };

    // agent-7 forwards the conversation to agent-9, whose phone is in their pocket.
    s.phone("agent-9").await;
    add("agent-9", Some("agent-7")).await;
    assert_eq!(s.sent("agent-9").await, ["invitation"]);
    let delivered = s.phones.wait_for(1).await;
    let push = &delivered[0].push;
    assert_eq!(push.user_id.as_str(), "agent-9");
    assert_eq!(push.kind.as_str(), "invitation");
    assert_eq!(push.title.as_deref(), Some("New conversation"));
    assert_eq!(
        push.body.as_deref(),
        Some("agent-7 added you to a conversation")
    );
    let (_, page) = s
        .hub
        .get("/v1/conversations/c1/events?after=0", &s.hub.key)
        .await;
    let joined = page["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (joined["type"].as_str(), joined["by"].as_str()),
        (Some("participant.joined"), Some("agent-7")),
        "the transcript says who added them"
    );
    assert!(
        s.sent("agent-7").await.is_empty(),
        "the forwarder is told nothing"
    );

    // Joining on one's own is no invitation.
    s.phone("agent-3").await;
    add("agent-3", None).await;
    assert!(s.decisions("agent-3").await.is_empty());

    // An agent at their desk sees the conversation arrive there.
    s.phone("agent-5").await;
    let mut desk = s.hub.live("agent-5").await;
    desk.resume(json!({})).await;
    add("agent-5", Some("agent-7")).await;
    let decisions = s.decisions("agent-5").await;
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(decisions[0]["status"], "suppressed");
    assert_eq!(
        decisions[0]["reason"],
        "the user is looking at a live session, which carries the event"
    );
    assert_eq!(s.phones.deliveries().len(), 1, "nothing more was pushed");
}
