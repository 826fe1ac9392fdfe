//! Ordering per collapse key, through the delivery core's own path for one claimed delivery
//! (`DeliveryCore::deliver`) with a scripted channel that can hang its calls: the order is read
//! at the channel, never from timings (the only waits are for things that must not happen and
//! would show in the channel's record if they did).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use herald_engine::app::{AppConfig, DeliveryPolicy};
use herald_engine::clock::ManualClock;
use herald_engine::delivery::{Channel, Settlement};
use herald_engine::push::{Delivery, DeliveryOutcome};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::super::DeliveryCore;
use super::super::settle::tests::{delivery, t};
use super::*;
use crate::config::DeliveryConfig;

/// Records the order of its calls, answers what is scripted per delivery id (else
/// delivered), and holds every call while hanging.
struct Gate {
    state: Mutex<GateState>,
    hanging: watch::Sender<bool>,
    called: watch::Sender<usize>,
}

#[derive(Default)]
struct GateState {
    calls: Vec<String>,
    in_flight: usize,
    max_in_flight: usize,
    answers: HashMap<String, VecDeque<DeliveryOutcome>>,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::default(),
            hanging: watch::channel(false).0,
            called: watch::channel(0).0,
        })
    }

    fn hang(&self) {
        self.hanging.send_replace(true);
    }

    fn release(&self) {
        self.hanging.send_replace(false);
    }

    fn answer(&self, id: &str, outcome: DeliveryOutcome) {
        let mut state = self.state.lock().unwrap();
        state
            .answers
            .entry(id.to_string())
            .or_default()
            .push_back(outcome);
    }

    fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// Waits until `n` calls were made.
    async fn wait_for(&self, n: usize) {
        let mut called = self.called.subscribe();
        tokio::time::timeout(StdDuration::from_secs(10), called.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("expected {n} calls, saw {:?}", self.calls()))
            .unwrap();
    }
}

#[async_trait::async_trait]
impl Channel for Gate {
    async fn deliver(&self, d: &Delivery, _: &AppConfig) -> DeliveryOutcome {
        let answer = {
            let mut state = self.state.lock().unwrap();
            state.calls.push(d.id.clone());
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            state
                .answers
                .get_mut(&d.id)
                .and_then(VecDeque::pop_front)
                .unwrap_or(DeliveryOutcome::Delivered { provider_id: None })
        };
        self.called.send_modify(|c| *c += 1);
        let mut hanging = self.hanging.subscribe();
        let _ = hanging.wait_for(|h| !h).await;
        self.state.lock().unwrap().in_flight -= 1;
        answer
    }

    fn endpoint_key(&self, _: &Delivery, _: &AppConfig) -> String {
        "hook:1".into()
    }
}

/// The delivery core of one node, as its worker uses it.
struct Node {
    core: Arc<DeliveryCore>,
    clock: Arc<ManualClock>,
    channel: Arc<Gate>,
    app: Arc<AppConfig>,
}

fn node() -> Node {
    node_with(DeliveryConfig::default())
}

fn node_with(settings: DeliveryConfig) -> Node {
    let clock = Arc::new(ManualClock::new(t(0)));
    Node {
        core: Arc::new(DeliveryCore::new(settings, clock.clone(), Arc::default())),
        clock,
        channel: Gate::new(),
        // Room for every attempt at once: only the lanes order them.
        app: Arc::new(AppConfig {
            delivery: DeliveryPolicy {
                max_concurrency: 16,
                ..DeliveryPolicy::default()
            },
            ..AppConfig::default()
        }),
    }
}

/// `N` delivery ids as the engine makes them, in creation order.
fn ids<const N: usize>() -> [String; N] {
    std::array::from_fn(|_| format!("dlv_{}", uuid::Uuid::now_v7().simple()))
}

/// A webhook delivery `id` with collapse key `key`.
fn push(id: &str, key: &str) -> Delivery {
    let mut d = delivery(1, 3_600);
    d.id = id.to_string();
    d.push.collapse_key = key.to_string();
    d
}

impl Node {
    /// Enters the deliveries in their lanes in this order, as a claim does.
    fn claim(&self, deliveries: Vec<Delivery>) -> Vec<(Delivery, Place)> {
        deliveries
            .into_iter()
            .map(|d| {
                let place = self.core.lanes.enter(&d);
                (d, place)
            })
            .collect()
    }

    /// Runs one claimed delivery as its worker task does: decides it, then lets go of its
    /// place (ended unless it goes again).
    fn run(&self, (d, mut place): (Delivery, Place)) -> JoinHandle<Settlement> {
        let (core, channel, app) = (self.core.clone(), self.channel.clone(), self.app.clone());
        tokio::spawn(async move {
            let settlement = core.deliver(&d, &app, channel.as_ref(), &mut place).await;
            if !matches!(
                settlement,
                Settlement::Retry { .. } | Settlement::Postpone { .. }
            ) {
                place.ended();
            }
            drop(place);
            settlement
        })
    }

    /// Claims and runs one delivery to its settlement.
    async fn deliver(&self, d: Delivery) -> Settlement {
        let claimed = self.claim(vec![d]).pop().unwrap();
        self.run(claimed).await.unwrap()
    }
}

fn delivered(s: &Settlement) -> bool {
    matches!(s, Settlement::Delivered(_))
}

/// Lets every runnable task run for a moment (for what must not happen).
async fn a_moment() {
    tokio::time::sleep(StdDuration::from_millis(50)).await;
}

#[tokio::test]
async fn two_pushes_with_one_collapse_key_are_sent_in_order() {
    let node = node();
    let [a, b] = ids();
    node.channel.hang();
    let mut claimed = node.claim(vec![push(&a, "conv:c1"), push(&b, "conv:c1")]);
    // The newer one's task happens to run first.
    let newer = node.run(claimed.pop().unwrap());
    let older = node.run(claimed.pop().unwrap());
    node.channel.wait_for(1).await;
    a_moment().await;
    assert_eq!(
        node.channel.calls(),
        std::slice::from_ref(&a),
        "the newer one waits"
    );

    node.channel.release();
    assert!(delivered(&older.await.unwrap()));
    assert!(delivered(&newer.await.unwrap()));
    assert_eq!(node.channel.calls(), [a, b]);
    assert_eq!(node.channel.max_in_flight(), 1, "one at a time");
    assert_eq!(node.core.lanes.len(), 0, "nothing kept");
}

#[tokio::test]
async fn an_older_push_claimed_while_a_newer_one_is_in_flight_is_dropped() {
    let node = node();
    let [a, b] = ids();
    node.channel.hang();
    let newer = node.run(node.claim(vec![push(&b, "conv:c1")]).pop().unwrap());
    node.channel.wait_for(1).await;
    let older = node.run(node.claim(vec![push(&a, "conv:c1")]).pop().unwrap());
    a_moment().await;
    assert_eq!(
        node.channel.calls(),
        std::slice::from_ref(&b),
        "the older one waits"
    );

    node.channel.release();
    assert!(delivered(&newer.await.unwrap()));
    assert_eq!(
        older.await.unwrap(),
        Settlement::Cancelled {
            reason: SUPERSEDED.to_string()
        }
    );
    assert_eq!(node.channel.calls(), [b], "never sent");
    assert_eq!(node.core.lanes.len(), 0);
}

#[tokio::test]
async fn an_older_push_retried_after_a_newer_one_was_delivered_is_dropped() {
    let node = node();
    let [a, b] = ids();
    node.channel.answer(
        &a,
        DeliveryOutcome::Retryable {
            after_ms: None,
            reason: "503".into(),
            status: Some(503),
        },
    );
    let first = node.deliver(push(&a, "conv:c1")).await;
    assert!(matches!(first, Settlement::Retry { .. }), "{first:?}");
    assert_eq!(node.core.lanes.len(), 1, "its lane waits for the retry");

    assert!(delivered(&node.deliver(push(&b, "conv:c1")).await));

    let mut retried = push(&a, "conv:c1");
    retried.attempt = 2;
    let again = node.deliver(retried).await;
    assert_eq!(
        again,
        Settlement::Cancelled {
            reason: SUPERSEDED.to_string()
        }
    );
    assert_eq!(node.channel.calls(), [a, b]);
    assert_eq!(node.core.lanes.len(), 0, "removed once nothing is expected");
}

#[tokio::test]
async fn a_newer_push_refused_for_good_does_not_supersede_an_older_one() {
    let node = node();
    let [a, b] = ids();
    node.channel.answer(
        &a,
        DeliveryOutcome::Retryable {
            after_ms: None,
            reason: "503".into(),
            status: Some(503),
        },
    );
    node.channel.answer(
        &b,
        DeliveryOutcome::Permanent {
            reason: "400: payload too large".into(),
            status: Some(400),
        },
    );
    node.deliver(push(&a, "conv:c1")).await;
    let refused = node.deliver(push(&b, "conv:c1")).await;
    assert!(matches!(refused, Settlement::Failed(_)), "{refused:?}");
    let mut retried = push(&a, "conv:c1");
    retried.attempt = 2;
    assert!(delivered(&node.deliver(retried).await));
    assert_eq!(node.channel.calls(), [a.clone(), b, a]);
}

#[tokio::test]
async fn different_collapse_keys_still_go_in_parallel() {
    let node = node();
    let [a, b, c] = ids();
    node.channel.hang();
    let mut other_target = push(&c, "conv:c1");
    other_target.target = herald_engine::push::Target::Webhook {
        endpoint_id: "w2".into(),
        devices: vec![],
    };
    let claimed = node.claim(vec![push(&a, "conv:c1"), push(&b, "conv:c2"), other_target]);
    let tasks: Vec<_> = claimed.into_iter().map(|c| node.run(c)).collect();
    node.channel.wait_for(3).await;
    assert_eq!(node.channel.max_in_flight(), 3, "all at once");
    node.channel.release();
    for task in tasks {
        assert!(delivered(&task.await.unwrap()));
    }
    assert_eq!(node.core.lanes.len(), 0);
}

#[tokio::test]
async fn a_push_still_behind_an_older_one_when_its_patience_runs_out_is_postponed() {
    // Patience: half of what the lease leaves beside the attempt timeout (50 ms).
    let node = node_with(DeliveryConfig {
        lease_ms: 10_100,
        attempt_timeout_ms: 10_000,
        ..DeliveryConfig::default()
    });
    let [a, b] = ids();
    node.channel.hang();
    let mut claimed = node.claim(vec![push(&a, "conv:c1"), push(&b, "conv:c1")]);
    let newer = node.run(claimed.pop().unwrap());
    let older = node.run(claimed.pop().unwrap());
    let postponed = newer.await.unwrap();
    assert_eq!(
        postponed,
        Settlement::Postpone {
            next_at: t(1),
            reason: BEHIND.to_string()
        }
    );
    assert_eq!(node.channel.calls(), [a]);
    node.channel.release();
    assert!(delivered(&older.await.unwrap()));
    // Expected back: its lane is kept until it comes back (or its push expires).
    assert_eq!(node.core.lanes.len(), 1);
    assert!(delivered(&node.deliver(push(&b, "conv:c1")).await));
    assert_eq!(node.core.lanes.len(), 0);
}

#[tokio::test]
async fn lanes_are_removed_when_nothing_of_them_is_held_or_expected_back() {
    let node = node();
    for (i, id) in ids::<40>().iter().enumerate() {
        let key = format!("conv:c{}", i % 7);
        assert!(delivered(&node.deliver(push(id, &key)).await));
    }
    assert_eq!(node.core.lanes.len(), 0, "churn leaves nothing behind");

    // Expected back (left leased: its task gave up without settling), until its push expires.
    let [left, later] = ids();
    let mut short = push(&left, "conv:x");
    short.push.expires_at = t(60);
    drop(node.claim(vec![short]));
    assert_eq!(node.core.lanes.len(), 1);
    node.clock.advance(time::Duration::seconds(60));
    assert!(delivered(&node.deliver(push(&later, "conv:y")).await));
    assert_eq!(node.core.lanes.len(), 0, "swept once its push expired");
}

#[tokio::test]
async fn a_delivery_claimed_again_before_its_last_task_let_go_keeps_its_place() {
    let node = node();
    let [a] = ids();
    let d = push(&a, "conv:c1");
    let first = node.claim(vec![d.clone()]).pop().unwrap();
    let second = node.claim(vec![d]).pop().unwrap();
    drop(first);
    assert!(delivered(&node.run(second).await.unwrap()));
    assert_eq!(node.core.lanes.len(), 0);
}

#[tokio::test]
async fn emails_are_not_ordered() {
    let node = node();
    let [a] = ids();
    let mut email = push(&a, "conv:c1");
    email.target = herald_engine::push::Target::Email {
        address: "ann@example.com".into(),
    };
    let place = node.core.lanes.enter(&email);
    assert_eq!(node.core.lanes.len(), 0);
    drop(place);
}

#[test]
fn only_ids_that_carry_their_creation_order_have_a_lane() {
    let [a] = ids();
    assert!(carries_creation_order(&a));
    let v4 = format!("dlv_{}", uuid::Uuid::new_v4().simple());
    let upper = format!("dlv_{}", a["dlv_".len()..].to_uppercase());
    for id in ["d-1", "dlv_1", "dlv_test_0193", v4.as_str(), upper.as_str()] {
        assert!(!carries_creation_order(id), "{id}");
    }
}
