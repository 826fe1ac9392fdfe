//! Several nodes on one database: each "node" is a store of its own (its own pool) on the same
//! schema. Positions stay gap-free, claims never overlap, and nodes that start together
//! migrate once.

use std::collections::BTreeSet;
use std::sync::Arc;

use herald_engine::delivery::DeliveryQueue;
use herald_engine::notify::store::NotifyStore;
use herald_engine::push::{Delivery, Push, Target};
use herald_engine::store::{Store, StoreError};
use herald_store_conformance::support::{app_id, at, conversation, message, tenant};
use herald_store_postgres::PostgresStore;
use time::Duration;

use crate::fixture::{Schema, url};

fn webhook_delivery(id: &str, notification: &str) -> Delivery {
    let push: Push = serde_json::from_value(serde_json::json!({
        "kind": "new_message", "tenant_id": "acme", "app_id": "chat", "user_id": "ann",
        "message_count": 1, "unread": 1, "badge": 1, "missed_calls": 0,
        "collapse_key": "c1", "high_priority": true,
        "created_at": "1970-01-01T00:00:00Z", "expires_at": "1970-01-01T01:00:00Z",
    }))
    .expect("a push");
    Delivery {
        id: id.into(),
        notification_id: notification.into(),
        tenant_id: tenant("acme"),
        app_id: app_id("chat"),
        channel: "webhook".into(),
        target: Target::Webhook {
            endpoint_id: "hook".into(),
            devices: vec![],
        },
        push,
        attempt: 1,
    }
}

/// Two stores on one new schema, connected (and migrating) at the same time.
pub async fn two_nodes() -> (Arc<PostgresStore>, Arc<PostgresStore>, Schema) {
    let schema = Schema {
        name: format!("herald_test_{}", uuid::Uuid::new_v4().simple()),
    };
    let url = url();
    let (a, b) = tokio::join!(
        PostgresStore::connect(&url, Some(&schema.name)),
        PostgresStore::connect(&url, Some(&schema.name)),
    );
    let node = |r: Result<PostgresStore, _>| {
        Arc::new(r.unwrap_or_else(|e| panic!("these tests need PostgreSQL at {url}: {e}")))
    };
    (node(a), node(b), schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_from_two_nodes_take_gap_free_positions() {
    let (a, b, _schema) = two_nodes().await;
    let t = tenant("acme");
    let mut tasks = Vec::new();
    for (n, node) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                let event = message(&format!("n{n}-{i}"), "c1", "bob", "agent", "hi");
                node.append_events(&t, vec![event], at(1))
                    .await
                    .expect("appended");
            }
        }));
    }
    for task in tasks {
        task.await.expect("the task ran");
    }
    let events = a
        .events_after(&t, &conversation("c1"), 0, 100)
        .await
        .unwrap();
    let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=60).collect::<Vec<u64>>());
    let ids: BTreeSet<_> = events.iter().map(|e| e.event.event_id.clone()).collect();
    assert_eq!(ids.len(), 60, "every event once");
    let outbox = b.outbox(100).await.unwrap();
    let queued: Vec<u64> = outbox.iter().map(|o| o.position).collect();
    assert_eq!(queued, positions, "queued for the engine in position order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_locking_conversations_in_opposite_orders_all_commit() {
    let (a, b, _schema) = two_nodes().await;
    let t = tenant("acme");
    let run = |node: Arc<PostgresStore>, first: &'static str, second: &'static str| {
        let t = t.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                let batch = vec![
                    message(
                        &format!("{first}{second}-{i}-1"),
                        first,
                        "bob",
                        "agent",
                        "x",
                    ),
                    message(
                        &format!("{first}{second}-{i}-2"),
                        second,
                        "bob",
                        "agent",
                        "y",
                    ),
                ];
                node.append_events(&t, batch, at(1))
                    .await
                    .expect("committed");
            }
        })
    };
    let (x, y) = tokio::join!(run(a.clone(), "c1", "c2"), run(b.clone(), "c2", "c1"));
    x.unwrap();
    y.unwrap();
    for c in ["c1", "c2"] {
        let conv = a
            .get_conversation(&t, &conversation(c))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conv.last_position, 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_on_two_nodes_never_get_the_same_delivery() {
    let (a, b, _schema) = two_nodes().await;
    let deliveries = (0..40)
        .map(|i| webhook_delivery(&format!("d{i}"), "n1"))
        .collect();
    a.enqueue_deliveries(deliveries, at(1)).await.unwrap();
    let claim = |node: Arc<PostgresStore>| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = node
                    .claim_deliveries(at(2), Duration::minutes(5), 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|d| d.id));
            }
        })
    };
    let (x, y) = tokio::join!(claim(a.clone()), claim(b.clone()));
    let mut all = x.unwrap();
    all.extend(y.unwrap());
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 40, "each claimed once");
    assert_eq!(unique.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_event_id_raced_into_two_conversations_is_stored_once_and_conflicts_once() {
    let (a, b, _schema) = two_nodes().await;
    let t = tenant("acme");
    for i in 0..10 {
        let id = format!("raced-{i}");
        let one = message(&id, "c1", "bob", "agent", "x");
        let two = message(&id, "c2", "bob", "agent", "x");
        let (x, y) = tokio::join!(
            a.append_events(&t, vec![one], at(1)),
            b.append_events(&t, vec![two], at(1)),
        );
        let conflicts = [&x, &y]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::EventConflict { index: 0 })))
            .count();
        assert!(x.is_ok() || y.is_ok(), "one is stored: {x:?} {y:?}");
        assert_eq!(conflicts, 1, "the other conflicts: {x:?} {y:?}");
    }
}
