//! The GMS push half of the background story: a CometD client in the background gets one
//! GMS-shaped push at a fake FCM once the app's timer runs out, later agent events push at
//! once, coming back before the timer cancels the push, and a client that silently vanishes
//! (`maxInterval`) is pushed to as well. The engine's timers run on a manual clock so the
//! timer expires when the test says, never by racing it; CometD's own timing is real.

use std::sync::Arc;

use herald_engine::clock::{Clock, ManualClock};
use herald_testkit::fake_fcm::{FakeFcm, FcmMessage};
use herald_testkit::peers::cometd::Transport;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{client, raw_handshake, wait_until_away};

/// The GMS timer of the app.
const GRACE_MS: i64 = 30_000;

struct Story {
    hub: TestHub,
    clock: Arc<ManualClock>,
    fake: FakeFcm,
}

/// A hub on a manual clock with the app `chat`: GMS-shaped pushes through a fake FCM, the GMS
/// timer, later pushes at once, the "customer is not online" notice; visitor-1 (with an
/// Android phone) and agent-7 in c1.
async fn story(configure: impl FnOnce(&mut herald_server::config::Config)) -> Story {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let fake = FakeFcm::builder().clock(clock.clone()).start().await;
    let hub = TestHub::builder()
        .clock(clock.clone())
        .configure(configure)
        .start()
        .await;
    let app = json!({
        "rules": {"grace_delay_ms": GRACE_MS, "coalesce_window_ms": 0,
                  "left_notice": {"enabled": true}},
        "content": {"shape": "gms"},
        "fcm": {"service_account": fake.service_account(), "base_url": fake.url()},
    });
    let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 201, "{body}");
    hub.join("c1", "visitor-1", "visitor").await;
    hub.join("c1", "agent-7", "agent").await;
    let user = hub.token("visitor-1").await;
    let device =
        json!({"app_id": "chat", "channel": "fcm", "token": "phone-1", "platform": "android"});
    let (status, body) = hub.post("/v1/me/devices", &user, device).await;
    assert_eq!(status, 201, "{body}");
    Story { hub, clock, fake }
}

impl Story {
    async fn agent(&self, event: Value) -> u64 {
        let mut event = event;
        event["conversation_id"] = json!("c1");
        event["occurred_at"] = json!("2026-11-23T10:00:00Z");
        let position = self.hub.events(event).await["position"].as_u64().unwrap();
        self.settle().await;
        position
    }

    async fn says(&self, id: &str, text: &str) -> u64 {
        self.agent(json!({"event_id": id, "type": "message.created",
            "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text}))
            .await
    }

    async fn settle(&self) {
        self.hub.settle_engine(self.clock.now()).await;
    }

    /// The GMS timer runs out.
    async fn timer_expires(&self) {
        self.clock
            .advance(time::Duration::milliseconds(GRACE_MS + 1_000));
        self.hub.state.engine.wake();
        self.settle().await;
    }

    /// The user's decisions, newest first.
    async fn decisions(&self) -> Vec<Value> {
        self.settle().await;
        let path = "/v1/users/visitor-1/notifications";
        let (_, body) = self.hub.get(path, &self.hub.key).await;
        body["notifications"].as_array().unwrap().clone()
    }

    async fn presence_becomes(&self, state: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let path = "/v1/users/visitor-1/presence";
            let (_, presence) = self.hub.get(path, &self.hub.key).await;
            if presence["state"] == state {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {presence}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// The GMS content of an FCM message, with `lastTranscript` read back from its JSON text.
fn gms(message: &FcmMessage) -> Value {
    let data = &message.message["data"];
    let items: Value = serde_json::from_str(data["lastTranscript"].as_str().unwrap()).unwrap();
    json!({"message": data["message"], "serviceId": data["serviceId"],
        "lastTranscript": items, "tag": data["tag"]})
}

async fn a_background_client_gets_one_gms_push_after_the_timer_then_one_per_agent_event(
    transport: Transport,
) {
    let story = story(|_| {}).await;
    let mut visitor = client(&story.hub, transport).await;
    assert_eq!(
        visitor.subscribe("/conversations/c1").await["successful"],
        true
    );
    story.says("m1", "Hello").await;
    let seen = visitor.next_message("/conversations/c1").await["data"]["position"].clone();
    // The visitor reads for a moment before going: on a clock that stood still, a message
    // seen at the very instant of leaving would count as missed (the engine fails open).
    story.clock.advance(time::Duration::seconds(1));

    let reply = visitor
        .disconnect(json!({"transcriptPosition": seen.to_string()}))
        .await;
    assert_eq!(reply["successful"], true, "{reply}");
    story.presence_becomes("away").await;
    story
        .agent(json!({"event_id": "t1", "type": "notice.typing_started",
            "actor": {"id": "agent-7", "role": "agent"}}))
        .await;
    story.says("m2", "Are you there?").await;
    story
        .agent(
            json!({"event_id": "n1", "type": "notice.custom", "text": "Transferring you",
            "actor": {"id": "agent-7", "role": "agent"}}),
        )
        .await;
    assert!(
        story.fake.messages().is_empty(),
        "nothing before the app's timer: {:?}",
        story.fake.messages()
    );

    story.timer_expires().await;
    let first = story.fake.wait_for(1).await;
    assert_eq!(first.len(), 1, "one push for the whole wait: {first:?}");
    assert_eq!(first[0].token, "phone-1");
    // Typing is filtered out by default.
    assert_eq!(
        gms(&first[0]),
        json!({
            "message": "New message from Agent",
            "serviceId": "c1",
            "lastTranscript": [{"Message.Text": "Are you there?"}, {"Notice.Custom": "Transferring you"}],
            "tag": "chat.newagentmessage",
        })
    );
    assert!(
        first[0].message["android"].get("notification").is_none(),
        "data-only, as GMS"
    );

    // Still in the background: the next agent message pushes without waiting for any timer.
    story.says("m3", "Your order shipped").await;
    let both = story.fake.wait_for(2).await;
    assert_eq!(
        gms(&both[1])["lastTranscript"],
        json!([{"Message.Text": "Your order shipped"}])
    );
    story.settle().await;
    assert_eq!(story.fake.messages().len(), 2);
}

#[tokio::test]
async fn a_background_gms_client_is_pushed_once_after_the_timer_then_at_once_long_polling() {
    a_background_client_gets_one_gms_push_after_the_timer_then_one_per_agent_event(
        Transport::LongPolling,
    )
    .await;
}

#[tokio::test]
async fn a_background_gms_client_is_pushed_once_after_the_timer_then_at_once_websocket() {
    a_background_client_gets_one_gms_push_after_the_timer_then_one_per_agent_event(
        Transport::WebSocket,
    )
    .await;
}

#[tokio::test]
async fn a_gms_client_back_before_the_timer_gets_no_push() {
    let story = story(|_| {}).await;
    let mut visitor = client(&story.hub, Transport::LongPolling).await;
    assert_eq!(
        visitor.subscribe("/conversations/c1").await["successful"],
        true
    );
    let reply = visitor.disconnect(json!({"transcriptPosition": "0"})).await;
    assert_eq!(reply["successful"], true, "{reply}");
    story.presence_becomes("away").await;
    story.says("m1", "Are you there?").await;
    let waiting = story.decisions().await;
    assert_eq!(waiting[0]["status"], "pending", "{waiting:#?}");

    // Back to the foreground: a new handshake and connect.
    let mut back = client(&story.hub, Transport::LongPolling).await;
    assert_eq!(back.subscribe("/_genesys").await["successful"], true);
    let catch_up = back.next_message("/_genesys").await;
    assert_eq!(catch_up["data"]["message"]["chatIxnState"], "TRANSCRIPT");
    story.presence_becomes("foreground").await;

    story.timer_expires().await;
    let decided = story.decisions().await;
    assert_eq!(decided[0]["status"], "cancelled", "{decided:#?}");
    assert!(
        story.fake.messages().is_empty(),
        "{:?}",
        story.fake.messages()
    );
}

#[tokio::test]
async fn a_client_gone_after_max_interval_is_away_and_gets_the_gms_push() {
    let story = story(|c| c.cometd.max_interval_ms = 1_000).await;
    // A handshake and no connect ever after: the app was killed without a word.
    raw_handshake(&story.hub).await;
    wait_until_away(&story.hub).await;
    story.says("m1", "Hello?").await;
    story.timer_expires().await;
    let pushed = story.fake.wait_for(1).await;
    assert_eq!(
        gms(&pushed[0])["lastTranscript"],
        json!([{"Message.Text": "Hello?"}])
    );
}
