//! The presence storm (issue: notification engine, item 7): 1,000 users flip between
//! foreground, background and disconnected at random while 10,000 messages flow. With a manual
//! clock every decision has an exact moment, so the test keeps its own timeline of who was
//! looking and checks the engine against it:
//! - no push to a user who was looking when it was decided;
//! - no away user left without a push once grace delay + coalesce window have passed;
//! - every message decided exactly once, every decision explained.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::{Clock, ManualClock};
use herald_engine::device::{DeviceChannel, DeviceRegistration, Platform};
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::participant::{Participant, Role};
use herald_runtime::live::presence::PresenceState;
use herald_testkit::{LiveClient, PATIENCE, TestHub};
use serde_json::json;

const USERS: usize = 1000;
const ROUNDS: usize = 100;
const EVENTS_PER_ROUND: usize = 100;
const FLIPS_PER_ROUND: usize = 30;

/// A tiny deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

enum Presence {
    Disconnected,
    Connected {
        client: Box<LiveClient>,
        foreground: bool,
    },
}

struct User {
    presence: Presence,
    /// (time, looking) in clock order.
    timeline: Vec<(time::OffsetDateTime, bool)>,
    /// The latest message that arrived while the user was away and that no return to the
    /// foreground has covered since.
    owed: Option<u64>,
}

impl User {
    fn looking(&self) -> bool {
        matches!(
            self.presence,
            Presence::Connected {
                foreground: true,
                ..
            }
        )
    }

    fn looking_at(&self, at: time::OffsetDateTime) -> bool {
        self.timeline
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .is_some_and(|(_, looking)| *looking)
    }
}

async fn settle(hub: &TestHub, clock: &ManualClock) {
    hub.settle_engine(clock.now()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_storm_no_push_to_a_looking_user_none_missed_every_decision_explained() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let hub = TestHub::builder().clock(clock.clone()).start().await;
    let tenant = TenantId::parse("default").unwrap();
    let app = AppId::parse("chat").unwrap();
    let (status, _) = hub
        .put(
            "/v1/apps/chat",
            &hub.key,
            json!({"rules": {"grace_delay_ms": 5000, "coalesce_window_ms": 3000}}),
        )
        .await;
    assert_eq!(status, 201);
    let store = hub.state.store.clone();
    for u in 0..USERS {
        let user = UserId::parse(format!("v{u}")).unwrap();
        let conversation = ConversationId::parse(format!("c{u}")).unwrap();
        let visitor = Participant {
            user_id: user.clone(),
            role: Role::Visitor,
            secondary: false,
            name: None,
            email: None,
        };
        let joined = herald_engine::ids::EventId::parse(format!("join-{u}")).unwrap();
        store
            .put_participant(&tenant, &conversation, &visitor, None, joined, clock.now())
            .await
            .unwrap();
        let device = DeviceRegistration {
            app_id: app.clone(),
            user_id: user,
            channel: DeviceChannel::Apns,
            token: format!("{u:08x}"),
            subscription: None,
            platform: Platform::Ios,
            locale: None,
            installation_id: None,
        };
        store
            .register_device(
                &tenant,
                &device,
                DeviceId::parse(format!("d{u}")).unwrap(),
                clock.now(),
            )
            .await
            .unwrap();
    }
    let start = clock.now();
    let mut users: Vec<User> = (0..USERS)
        .map(|_| User {
            presence: Presence::Disconnected,
            timeline: vec![(start, false)],
            owed: None,
        })
        .collect();
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut posted: HashMap<usize, Vec<u64>> = HashMap::new();
    let mut next_event = 0;

    for _ in 0..ROUNDS {
        // Flips happen strictly after the previous round's decisions.
        clock.advance(time::Duration::milliseconds(1));
        // Flip some users, and wait until the server sees each flip.
        for _ in 0..FLIPS_PER_ROUND {
            let u = rng.below(USERS);
            let user = format!("v{u}");
            let want = rng.below(3); // 0 disconnected, 1 foreground, 2 background
            let presence = std::mem::replace(&mut users[u].presence, Presence::Disconnected);
            users[u].presence = match (presence, want) {
                (Presence::Connected { client, .. }, 0) => {
                    (*client).close().await;
                    Presence::Disconnected
                }
                (Presence::Disconnected, 0) => Presence::Disconnected,
                (Presence::Connected { mut client, .. }, w) => {
                    let state = if w == 1 { "foreground" } else { "background" };
                    client.send(json!({"type": "state", "state": state})).await;
                    Presence::Connected {
                        client,
                        foreground: w == 1,
                    }
                }
                (Presence::Disconnected, w) => {
                    let mut client = hub
                        .live_with(
                            &user,
                            if w == 1 {
                                "state=foreground"
                            } else {
                                "state=background"
                            },
                        )
                        .await;
                    client.resume(json!({})).await;
                    Presence::Connected {
                        client: Box::new(client),
                        foreground: w == 1,
                    }
                }
            };
            let looking = users[u].looking();
            let deadline = tokio::time::Instant::now() + PATIENCE;
            let id = UserId::parse(user).unwrap();
            while (hub.state.hub.presence(&tenant, &id).state == PresenceState::Foreground)
                != looking
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "presence of v{u} never changed"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let now = clock.now();
            users[u].timeline.push((now, looking));
            if looking {
                users[u].owed = None;
            }
        }
        // Let the engine act on the returns before time moves on.
        settle(&hub, &clock).await;
        clock.advance(time::Duration::milliseconds(1));

        let mut batch = vec![];
        let mut targets = vec![];
        for _ in 0..EVENTS_PER_ROUND {
            let u = rng.below(USERS);
            next_event += 1;
            batch.push(json!({"event_id": format!("e{next_event}"), "conversation_id": format!("c{u}"), "type": "message.created",
                "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent", "role": "agent", "name": "Ann"}, "text": "hello"}));
            targets.push(u);
        }
        let response = hub.events(json!(batch)).await;
        for (u, result) in targets
            .into_iter()
            .zip(response["results"].as_array().unwrap())
        {
            let position = result["position"].as_u64().unwrap();
            posted.entry(u).or_default().push(position);
            if !users[u].looking() {
                users[u].owed = Some(position);
            }
        }
        settle(&hub, &clock).await;
        clock.advance(time::Duration::milliseconds(rng.below(4_000) as i64 + 1));
        settle(&hub, &clock).await;
    }
    // Past grace delay + coalesce window: everything owed must have gone out.
    clock.advance(time::Duration::milliseconds(8_001));
    settle(&hub, &clock).await;

    let mut sent_total = 0;
    for (u, user) in users.iter().enumerate() {
        let id = UserId::parse(format!("v{u}")).unwrap();
        let records = hub
            .state
            .notify
            .user_notifications(&tenant, &id, 10_000)
            .await
            .unwrap();
        let mut decided: HashMap<u64, usize> = HashMap::new();
        let mut latest_sent = 0;
        for r in &records {
            let value = serde_json::to_value(r).unwrap();
            assert!(
                r.log.iter().all(|e| !e.reason.is_empty()),
                "an unexplained step: {value}"
            );
            if let Some(p) = r.position {
                *decided.entry(p).or_default() += 1;
            }
            for entry in r
                .log
                .iter()
                .filter(|e| e.status == herald_engine::notify::record::Status::Sent)
            {
                assert!(
                    !user.looking_at(entry.at),
                    "v{u} was pushed while looking: {value}"
                );
                sent_total += 1;
                latest_sent =
                    latest_sent.max(r.push.as_ref().and_then(|p| p.position).unwrap_or(0));
            }
            assert!(
                !r.status.is_open(),
                "still waiting after grace + coalesce: {value}"
            );
        }
        for p in posted.get(&u).into_iter().flatten() {
            assert_eq!(
                decided.get(p),
                Some(&1),
                "message {p} of v{u} must be decided exactly once"
            );
        }
        if let Some(owed) = user.owed {
            assert!(
                latest_sent >= owed,
                "v{u} is away and owed a push for {owed}, last push covered {latest_sent}"
            );
        }
    }
    assert!(sent_total > 100, "the storm did push ({sent_total})");
}
