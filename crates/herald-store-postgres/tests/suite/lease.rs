//! The engine lease between two nodes on one database: one holder at a time, renewals keep the
//! epoch, a lease that runs out or is released changes hands, and a commit fenced with a lost
//! lease writes nothing.

use std::time::Duration;

use herald_engine::lease::EngineLease;
use herald_engine::notify::store::{NotifyCommit, NotifyStore};
use herald_engine::store::{Store, StoreError};
use herald_store_conformance::support::{at, message, tenant};

use crate::nodes::two_nodes;

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn one_node_holds_the_lease_and_renewing_keeps_its_epoch() {
    let (a, b, _schema) = two_nodes().await;
    let first = a
        .acquire("node-a", LONG)
        .await
        .unwrap()
        .expect("a free lease");
    assert_eq!(b.acquire("node-b", LONG).await.unwrap(), None, "held by a");
    let renewed = a.acquire("node-a", LONG).await.unwrap().expect("a renews");
    assert_eq!(renewed, first, "a renewal in time keeps the fence");
}

#[tokio::test]
async fn a_lease_that_runs_out_changes_hands_and_fences_the_old_holder() {
    let (a, b, _schema) = two_nodes().await;
    a.append_events(
        &tenant("acme"),
        vec![message("e1", "c1", "bob", "agent", "hi")],
        at(1),
    )
    .await
    .unwrap();
    let outbox = a.outbox(10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    let stale = a
        .acquire("node-a", Duration::from_millis(100))
        .await
        .unwrap()
        .expect("a free lease");
    // Node a stalls past its lease (a pause, SIGSTOP); b takes over.
    let taken = loop {
        if let Some(fence) = b.acquire("node-b", LONG).await.unwrap() {
            break fence;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(taken.epoch > stale.epoch, "{taken:?} after {stale:?}");

    let evaluated = NotifyCommit {
        evaluated: vec![outbox[0].seq],
        ..NotifyCommit::default()
    };
    let woke_up = a
        .commit_notify(
            NotifyCommit {
                fence: Some(stale.clone()),
                ..evaluated.clone()
            },
            at(2),
        )
        .await;
    assert!(matches!(woke_up, Err(StoreError::Fenced)), "{woke_up:?}");
    assert_eq!(a.outbox(10).await.unwrap(), outbox, "nothing was written");
    assert_eq!(
        a.acquire("node-a", LONG).await.unwrap(),
        None,
        "a cannot take it back"
    );

    b.commit_notify(
        NotifyCommit {
            fence: Some(taken),
            ..evaluated
        },
        at(2),
    )
    .await
    .expect("the holder commits");
    assert!(b.outbox(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_a_holder_that_lost_it_gets_a_new_epoch() {
    let (a, b, _schema) = two_nodes().await;
    let first = a.acquire("node-a", LONG).await.unwrap().expect("free");
    a.release(&first).await.unwrap();
    let second = b.acquire("node-b", LONG).await.unwrap().expect("released");
    assert!(second.epoch > first.epoch);
    b.release(&second).await.unwrap();
    let again = a.acquire("node-a", LONG).await.unwrap().expect("released");
    assert!(
        again.epoch > second.epoch,
        "a's old fence must never match again"
    );
    a.release(&first).await.unwrap();
    assert_eq!(
        b.acquire("node-b", LONG).await.unwrap(),
        None,
        "releasing with an old fence does nothing"
    );
}
