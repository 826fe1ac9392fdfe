//! Failing open (SPEC §5.1, issue 18.1): a message suppressed because a live session seemed to
//! be looking is pushed after all when that session turns out gone — dropped and not back
//! within the reconnect grace, or silent until its heartbeats ran out. Manual clock: the
//! reconnect grace and the grace delay run only when a test moves time.

use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::recording::RecordingChannel;
use herald_testkit::{LiveClient, PATIENCE, TestHub};
use serde_json::{Value, json};

struct Chat {
    hub: TestHub,
    clock: Arc<ManualClock>,
    phone: Arc<RecordingChannel>,
}

impl Chat {
    /// App `chat` (grace delay 5 s), visitor `visitor-1` with an iPhone and agent `agent-7` in
    /// `c1`; the reconnect grace is the default 10 s.
    async fn new(heartbeats: Option<(u64, u64)>) -> Chat {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let phone = RecordingChannel::new();
        let hub = TestHub::builder()
            .clock(clock.clone())
            .channel("apns", phone.clone())
            .configure(|c| {
                if let Some((heartbeat_ms, dead_after_ms)) = heartbeats {
                    c.live.heartbeat_ms = heartbeat_ms;
                    c.live.dead_after_ms = dead_after_ms;
                }
            })
            .start()
            .await;
        let app = json!({"rules": {"grace_delay_ms": 5000}});
        let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
        assert_eq!(status, 201, "{body}");
        hub.join("c1", "visitor-1", "visitor").await;
        hub.join("c1", "agent-7", "agent").await;
        let token = hub.token("visitor-1").await;
        let device =
            json!({"app_id": "chat", "channel": "apns", "token": "aaaa0001", "platform": "ios"});
        let (status, body) = hub.post("/v1/me/devices", &token, device).await;
        assert!(status.is_success(), "{body}");
        Chat { hub, clock, phone }
    }

    async fn looking_visitor(&self) -> LiveClient {
        let mut visitor = self.hub.live("visitor-1").await;
        visitor.resume(json!({})).await;
        eventually(async || self.presence().await["state"] == "foreground").await;
        visitor
    }

    async fn presence(&self) -> Value {
        self.hub
            .get("/v1/users/visitor-1/presence", &self.hub.key)
            .await
            .1
    }

    async fn agent_says(&self, id: &str, text: &str) {
        self.hub
            .events(json!({"event_id": id, "conversation_id": "c1", "type": "message.created",
                "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text}))
            .await;
        self.settle().await;
    }

    async fn settle(&self) {
        self.hub.settle_engine(self.clock.now()).await;
    }

    fn advance(&self, ms: i64) {
        self.clock.advance(time::Duration::milliseconds(ms));
        self.hub.state.engine.wake();
    }

    /// The visitor's decisions, oldest first.
    async fn decisions(&self) -> Vec<Value> {
        let path = "/v1/users/visitor-1/notifications?limit=50";
        let (_, body) = self.hub.get(path, &self.hub.key).await;
        let mut list = body["notifications"].as_array().unwrap().clone();
        list.reverse();
        list
    }

    async fn statuses(&self) -> Vec<String> {
        let decisions = self.decisions().await;
        decisions
            .iter()
            .map(|d| d["status"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Polls until `check` holds (a liveness bound, not a speed assertion).
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn visitors_socket_drops_agent_writes_during_the_grace_the_visitor_never_returns_one_push_after_the_grace()
 {
    let chat = Chat::new(None).await;
    let visitor = chat.looking_visitor().await;
    visitor.drop_connection();
    eventually(async || chat.presence().await["sessions"] == 0).await;
    assert_eq!(
        chat.presence().await["state"],
        "foreground",
        "inside the grace"
    );

    chat.agent_says("m1", "Are you still there?").await;
    assert_eq!(chat.statuses().await, ["suppressed"]);
    chat.advance(9_000);
    chat.settle().await;
    assert_eq!(
        chat.statuses().await,
        ["suppressed"],
        "nothing is decided again while the visitor may still come back"
    );

    chat.advance(2_000);
    eventually(async || chat.statuses().await == ["sent"]).await;
    let pushed = chat.phone.wait_for(1).await;
    assert_eq!(pushed.len(), 1);
    let decision = &chat.decisions().await[0];
    assert_eq!(decision["push"]["body"], "Are you still there?");
    let steps: Vec<&str> = decision["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["suppressed", "pending", "sent"], "{decision:#}");
    assert!(
        decision["log"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("did not come back"),
        "{decision:#}"
    );

    // Decided again once: nothing more goes out later.
    chat.advance(60_000);
    chat.settle().await;
    assert_eq!(chat.phone.deliveries().len(), 1);
    assert_eq!(chat.statuses().await, ["sent"]);
}

#[tokio::test]
async fn a_visitor_back_within_the_grace_gets_no_push_for_what_was_written_meanwhile() {
    let chat = Chat::new(None).await;
    let visitor = chat.looking_visitor().await;
    visitor.drop_connection();
    eventually(async || chat.presence().await["sessions"] == 0).await;
    chat.agent_says("m1", "Are you still there?").await;
    chat.advance(4_000);
    let _back = chat.looking_visitor().await;

    chat.advance(20_000);
    chat.settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    chat.settle().await;
    assert_eq!(chat.statuses().await, ["suppressed"]);
    assert!(chat.phone.deliveries().is_empty());
}

#[tokio::test]
async fn a_visitor_whose_session_falls_silent_is_pushed_what_was_written_before_it_was_declared_dead()
 {
    // Heartbeats every 200 ms, dead after 2 s of silence (wall-clock time).
    let chat = Chat::new(Some((200, 2_000))).await;
    // From here on the client reads nothing, so it answers no pings: silent.
    let _silent = chat.looking_visitor().await;
    chat.agent_says("m1", "Are you still there?").await;
    assert_eq!(
        chat.statuses().await,
        ["suppressed"],
        "written while the session still seemed to be looking"
    );

    eventually(async || chat.presence().await["state"] == "away").await;
    // The grace delay runs from when the session was last heard from (on this clock, about
    // 2 s ago): 5 s more covers it.
    chat.advance(5_000);
    eventually(async || chat.statuses().await == ["sent"]).await;
    assert_eq!(chat.phone.wait_for(1).await.len(), 1);
}
