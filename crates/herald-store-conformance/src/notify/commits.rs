//! One engine step's commit (`commit_notify`): decisions, engine state, deliveries and the
//! outbox items it evaluated, all or nothing. A crash before the commit means the events are
//! evaluated again; after it, never again: so what a step decided and the removal of what it
//! evaluated must never be seen apart.

use herald_engine::notify::calls::CallState;
use herald_engine::notify::record::Status;
use herald_engine::notify::store::{HealthCheck, NotifyCommit, UserContext};
use herald_engine::notify::timing::{Thread, UserState};
use herald_engine::store::StoreError;
use time::Duration;

use crate::NotifyFixture;
use crate::deliveries::webhook;
use crate::support::{app_id, append, at, device_id, message, tenant, user};

use super::*;

fn call(caller: &str, over: bool) -> CallState {
    CallState {
        conversation_id: conversation("c1"),
        caller: user(caller),
        callees: vec![user("ann")],
        rang: vec![(user("ann"), app_id("chat"))],
        over,
        ring_until: at(30),
        caller_name: Some("Bob".into()),
        declined: vec![],
    }
}

fn state(missed_calls: u64) -> UserState {
    UserState {
        last_push_at: Some(at(3)),
        missed_calls,
    }
}

async fn context(fx: &dyn NotifyFixture, owner: &str) -> UserContext {
    fx.notify()
        .user_context(&tenant("acme"), &user(owner), None)
        .await
        .expect("the context reads")
}

pub async fn a_commit_takes_its_evaluated_items_off_the_outbox(fx: &dyn NotifyFixture) {
    let (t, store, notify) = (tenant("acme"), fx.store(), fx.notify());
    let messages = ["m1", "m2", "m3"]
        .iter()
        .map(|id| message(id, "c1", "bob", "agent", "hi"))
        .collect();
    append(&store, &t, messages).await;
    let items = outbox(&notify).await;
    let evaluated = |seqs: Vec<i64>| NotifyCommit {
        evaluated: seqs,
        ..NotifyCommit::default()
    };
    commit(&notify, evaluated(vec![items[0].seq, items[2].seq]), 5).await;
    assert_eq!(outbox(&notify).await, [items[1].clone()]);
    // What another step already took off is gone: naming it again changes nothing more, and
    // the rest of that commit still applies.
    let again = NotifyCommit {
        evaluated: vec![items[0].seq],
        user_states: vec![(t.clone(), user("ann"), app_id("chat"), state(1))],
        ..NotifyCommit::default()
    };
    commit(&notify, again, 6).await;
    assert_eq!(outbox(&notify).await, [items[1].clone()]);
    assert_eq!(context(fx, "ann").await.states[&app_id("chat")], state(1));
}

pub async fn a_commit_writes_its_decisions_state_and_deliveries_together(fx: &dyn NotifyFixture) {
    let (t, store, notify, queue) = (tenant("acme"), fx.store(), fx.notify(), fx.queue());
    append(&store, &t, vec![message("m1", "c1", "bob", "agent", "hi")]).await;
    let items = outbox(&notify).await;
    let sent = record(&t, "n1", "ann", Status::Sent, 1);
    let check = HealthCheck {
        tenant: t.clone(),
        app: app_id("chat"),
        user: user("ann"),
        device: device_id("w1"),
        check_id: "chk-1".into(),
        deadline: at(100),
    };
    let deliveries = vec![webhook(&t, "d1", "n1"), webhook(&t, "d2", "n1")];
    let step = NotifyCommit {
        evaluated: vec![items[0].seq],
        threads: vec![(key(&t, "ann", "chat", "c1"), pending("n2", 30))],
        user_states: vec![(t.clone(), user("ann"), app_id("chat"), state(2))],
        calls: vec![(t.clone(), "call-1".into(), call("bob", false))],
        records: vec![sent.clone()],
        deliveries: deliveries.clone(),
        checks: vec![check],
        fence: None,
    };
    // Deliveries are due at the commit's `now`, not before.
    assert!(
        queue
            .claim_deliveries(at(5), Duration::seconds(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    commit(&notify, step, 5).await;

    assert!(outbox(&notify).await.is_empty());
    let ann = context(fx, "ann").await;
    assert_eq!(
        ann.threads[&(app_id("chat"), conversation("c1"))],
        pending("n2", 30)
    );
    assert_eq!(ann.states[&app_id("chat")], state(2));
    assert_eq!(
        notify.call(&t, "call-1").await.unwrap(),
        Some(call("bob", false))
    );
    assert_eq!(notify.notification(&t, "n1").await.unwrap(), Some(sent));
    assert_eq!(notify.next_due().await.unwrap(), Some(at(30)));
    // The check is outstanding: acknowledging it works (once).
    assert!(
        notify
            .acknowledge_check(&t, &user("ann"), &device_id("w1"), "chk-1", at(6))
            .await
            .unwrap()
    );
    assert!(
        queue
            .claim_deliveries(at(4), Duration::seconds(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = queue
        .claim_deliveries(at(5), Duration::seconds(60), 10)
        .await
        .expect("the claim runs");
    let mut ids: Vec<_> = claimed.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["d1", "d2"]);
    assert_eq!(claimed[0].push, deliveries[0].push, "the push as committed");
    assert_eq!(queue.deliveries_of(&t, "n1").await.unwrap().len(), 2);
}

/// Exactly once: a step that decided again what an earlier one committed (the same delivery
/// ids) is refused whole, so none of its other writes, nor the outbox items it names, are
/// taken for done.
pub async fn committing_the_same_decision_twice_fails_with_already_exists_and_writes_nothing(
    fx: &dyn NotifyFixture,
) {
    let (t, store, notify, queue) = (tenant("acme"), fx.store(), fx.notify(), fx.queue());
    let messages = ["m1", "m2"]
        .iter()
        .map(|id| message(id, "c1", "bob", "agent", "hi"))
        .collect();
    append(&store, &t, messages).await;
    let items = outbox(&notify).await;
    let first = NotifyCommit {
        evaluated: vec![items[0].seq],
        records: vec![record(&t, "n1", "ann", Status::Sent, 1)],
        deliveries: vec![webhook(&t, "d1", "n1")],
        ..NotifyCommit::default()
    };
    commit(&notify, first.clone(), 5).await;

    let mut changed = record(&t, "n1", "ann", Status::Sent, 1);
    changed.note(Status::Cancelled, "decided again", at(6));
    let again = NotifyCommit {
        evaluated: vec![items[0].seq, items[1].seq],
        threads: vec![(key(&t, "ann", "chat", "c1"), pending("n2", 30))],
        user_states: vec![(t.clone(), user("ann"), app_id("chat"), state(1))],
        calls: vec![(t.clone(), "call-1".into(), call("bob", false))],
        records: vec![changed, record(&t, "n2", "ann", Status::Pending, 6)],
        deliveries: vec![webhook(&t, "d2", "n2"), webhook(&t, "d1", "n1")],
        checks: vec![],
        fence: None,
    };
    let refused = notify.commit_notify(again, at(6)).await;
    assert!(
        matches!(refused, Err(StoreError::AlreadyExists)),
        "{refused:?}"
    );
    assert_eq!(
        outbox(&notify).await,
        [items[1].clone()],
        "still to evaluate"
    );
    assert_eq!(
        notify.notification(&t, "n1").await.unwrap(),
        first.records.first().cloned()
    );
    assert_eq!(notify.notification(&t, "n2").await.unwrap(), None);
    assert!(queue.deliveries_of(&t, "n2").await.unwrap().is_empty());
    assert_eq!(queue.deliveries_of(&t, "n1").await.unwrap().len(), 1);
    assert_eq!(context(fx, "ann").await, UserContext::default());
    assert_eq!(notify.call(&t, "call-1").await.unwrap(), None);
    assert_eq!(notify.next_due().await.unwrap(), None);
}

/// Engine state is keyed: a later step's thread, user state, call or record replaces the
/// earlier one with the same key and leaves the others.
pub async fn a_commit_replaces_threads_user_states_calls_and_records_by_key(
    fx: &dyn NotifyFixture,
) {
    let (t, notify) = (tenant("acme"), fx.notify());
    let first = NotifyCommit {
        threads: vec![
            (key(&t, "ann", "chat", "c1"), pending("n1", 30)),
            (key(&t, "ann", "chat", "c2"), pending("n2", 40)),
        ],
        user_states: vec![
            (t.clone(), user("ann"), app_id("chat"), state(1)),
            (t.clone(), user("ann"), app_id("web"), state(5)),
        ],
        calls: vec![(t.clone(), "call-1".into(), call("bob", false))],
        records: vec![record(&t, "n1", "ann", Status::Pending, 1)],
        ..NotifyCommit::default()
    };
    commit(&notify, first, 1).await;
    let mut sent = record(&t, "n1", "ann", Status::Pending, 1);
    sent.note(Status::Sent, "due", at(30));
    let second = NotifyCommit {
        threads: vec![(key(&t, "ann", "chat", "c1"), shown())],
        user_states: vec![(t.clone(), user("ann"), app_id("chat"), state(2))],
        calls: vec![(t.clone(), "call-1".into(), call("bob", true))],
        records: vec![sent.clone()],
        ..NotifyCommit::default()
    };
    commit(&notify, second, 30).await;

    let ann = context(fx, "ann").await;
    assert_eq!(
        ann.threads.into_iter().collect::<Vec<_>>(),
        [
            ((app_id("chat"), conversation("c1")), shown()),
            ((app_id("chat"), conversation("c2")), pending("n2", 40)),
        ]
    );
    assert_eq!(
        ann.states.into_iter().collect::<Vec<_>>(),
        [(app_id("chat"), state(2)), (app_id("web"), state(5))]
    );
    assert_eq!(
        notify.call(&t, "call-1").await.unwrap(),
        Some(call("bob", true))
    );
    assert_eq!(notify.notification(&t, "n1").await.unwrap(), Some(sent));
    let log = notify
        .user_notifications(&t, &user("ann"), 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 1, "replaced, not added");
    assert_eq!(
        notify.next_due().await.unwrap(),
        Some(at(40)),
        "c1's timer went"
    );
}

pub async fn a_thread_with_nothing_pending_and_nothing_shown_is_deleted(fx: &dyn NotifyFixture) {
    let (t, notify) = (tenant("acme"), fx.notify());
    let threads = vec![
        (key(&t, "ann", "chat", "c1"), pending("n1", 30)),
        (key(&t, "ann", "chat", "c2"), shown()),
    ];
    commit(
        &notify,
        NotifyCommit {
            threads,
            ..NotifyCommit::default()
        },
        1,
    )
    .await;
    let ended = vec![
        (key(&t, "ann", "chat", "c1"), Thread::default()),
        (key(&t, "ann", "chat", "c3"), Thread::default()),
    ];
    commit(
        &notify,
        NotifyCommit {
            threads: ended,
            ..NotifyCommit::default()
        },
        2,
    )
    .await;
    let ann = context(fx, "ann").await;
    assert_eq!(
        ann.threads.keys().cloned().collect::<Vec<_>>(),
        [(app_id("chat"), conversation("c2"))],
        "a default thread is not kept, nor created"
    );
    assert!(notify.due_threads(at(100), 10).await.unwrap().is_empty());
    assert_eq!(notify.next_due().await.unwrap(), None);
}
