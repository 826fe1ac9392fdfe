//! The engine's durable timers: threads' (`due_threads`), scheduled notifications'
//! (`due_notifications`) and the earliest of either (`next_due`), which the engine sleeps
//! until. A timer missed here is a push never sent; one reported early makes the engine spin.

use herald_engine::notify::record::Status;
use herald_engine::notify::store::NotifyCommit;
use herald_engine::notify::timing::{Digest, Thread};

use crate::NotifyFixture;
use crate::support::{at, tenant};

use super::*;

fn threads(threads: Vec<(ThreadKey, Thread)>) -> NotifyCommit {
    NotifyCommit {
        threads,
        ..NotifyCommit::default()
    }
}

fn records(records: Vec<NotificationRecord>) -> NotifyCommit {
    NotifyCommit {
        records,
        ..NotifyCommit::default()
    }
}

/// A thread whose only timer is an email digest due at `due`.
fn digest(due: i64) -> Thread {
    Thread {
        digest: Some(Digest {
            notification_id: "n-digest".into(),
            due_at: at(due),
            first_position: 1,
        }),
        ..Thread::default()
    }
}

pub async fn due_threads_are_those_due_at_or_before_now_earliest_first_up_to_the_limit(
    fx: &dyn NotifyFixture,
) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    let all = vec![
        (key(&acme, "ann", "chat", "c1"), pending("n1", 30)),
        (key(&beta, "ann", "chat", "c1"), pending("n2", 10)),
        (key(&acme, "bob", "web", "c2"), digest(20)),
        (key(&acme, "ann", "chat", "c3"), pending("n3", 90)),
        (key(&acme, "cy", "chat", "c1"), shown()),
    ];
    commit(&notify, threads(all), 1).await;
    let due = |now, limit| {
        let notify = notify.clone();
        async move { notify.due_threads(at(now), limit).await.expect("reads") }
    };
    assert!(due(9, 10).await.is_empty(), "nothing due yet");
    assert_eq!(
        due(30, 10).await,
        [
            key(&beta, "ann", "chat", "c1"),
            key(&acme, "bob", "web", "c2"),
            key(&acme, "ann", "chat", "c1"),
        ],
        "due at 30 includes 30; a digest is a timer; a shown thread has none"
    );
    assert_eq!(
        due(1_000, 2).await,
        [
            key(&beta, "ann", "chat", "c1"),
            key(&acme, "bob", "web", "c2")
        ]
    );
    // Reading fires nothing: the timers stay until a commit moves them.
    assert_eq!(due(1_000, 10).await.len(), 4);
}

pub async fn a_thread_committed_again_moves_or_drops_its_timer(fx: &dyn NotifyFixture) {
    let (t, notify) = (tenant("acme"), fx.notify());
    let (c1, c2) = (key(&t, "ann", "chat", "c1"), key(&t, "ann", "chat", "c2"));
    commit(
        &notify,
        threads(vec![
            (c1.clone(), pending("n1", 30)),
            (c2.clone(), pending("n2", 40)),
        ]),
        1,
    )
    .await;
    commit(
        &notify,
        threads(vec![(c1.clone(), pending("n1", 60)), (c2.clone(), shown())]),
        2,
    )
    .await;
    assert!(notify.due_threads(at(59), 10).await.unwrap().is_empty());
    assert_eq!(notify.due_threads(at(60), 10).await.unwrap(), [c1]);
    assert_eq!(notify.next_due().await.unwrap(), Some(at(60)));
}

pub async fn due_notifications_are_scheduled_records_due_at_or_before_now_earliest_first(
    fx: &dyn NotifyFixture,
) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    let all = vec![
        scheduled(&acme, "n-50", "ann", 50),
        scheduled(&beta, "n-40", "ann", 40),
        scheduled(&acme, "n-70", "bob", 70),
    ];
    commit(&notify, records(all), 1).await;
    let due = |now, limit| {
        let notify = notify.clone();
        async move {
            notify
                .due_notifications(at(now), limit)
                .await
                .expect("reads")
        }
    };
    assert!(due(39, 10).await.is_empty());
    assert_eq!(
        due(50, 10).await,
        [
            (beta.clone(), "n-40".to_string()),
            (acme.clone(), "n-50".to_string())
        ]
    );
    assert_eq!(due(1_000, 1).await, [(beta, "n-40".to_string())]);
    assert_eq!(due(1_000, 10).await.len(), 3, "reading fires nothing");
}

/// A pending push's record carries the time it is due, but it waits on its thread's timer: a
/// timer of its own would fire it twice.
pub async fn only_a_scheduled_record_has_a_timer_of_its_own(fx: &dyn NotifyFixture) {
    let (t, notify) = (tenant("acme"), fx.notify());
    let mut waiting = record(&t, "n-pending", "ann", Status::Pending, 1);
    waiting.due_at = Some(at(20));
    commit(
        &notify,
        records(vec![waiting, scheduled(&t, "n-later", "ann", 50)]),
        1,
    )
    .await;
    assert_eq!(notify.next_due().await.unwrap(), Some(at(50)));
    assert_eq!(
        notify.due_notifications(at(100), 10).await.unwrap(),
        [(t.clone(), "n-later".to_string())]
    );
    // Sent: replaced by id, its timer gone with the status (even were `due_at` kept).
    let mut sent = scheduled(&t, "n-later", "ann", 50);
    sent.note(Status::Sent, "its time came", at(50));
    sent.due_at = Some(at(50));
    commit(&notify, records(vec![sent]), 50).await;
    assert!(
        notify
            .due_notifications(at(100), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(notify.next_due().await.unwrap(), None);
}

/// The engine sleeps until this: it must name a timer already past, and the earlier of a
/// thread's and a scheduled notification's.
pub async fn next_due_is_the_earliest_timer_of_either_kind(fx: &dyn NotifyFixture) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    assert_eq!(notify.next_due().await.unwrap(), None, "no timer at all");
    let c1 = key(&acme, "ann", "chat", "c1");
    commit(&notify, threads(vec![(c1.clone(), pending("n1", 30))]), 1).await;
    assert_eq!(notify.next_due().await.unwrap(), Some(at(30)));
    commit(
        &notify,
        records(vec![scheduled(&beta, "n2", "bob", 20)]),
        100,
    )
    .await;
    assert_eq!(
        notify.next_due().await.unwrap(),
        Some(at(20)),
        "a scheduled notification of another tenant, already past"
    );
    let mut sent = scheduled(&beta, "n2", "bob", 20);
    sent.note(Status::Sent, "its time came", at(100));
    commit(&notify, records(vec![sent]), 100).await;
    assert_eq!(notify.next_due().await.unwrap(), Some(at(30)));
    commit(&notify, threads(vec![(c1, Thread::default())]), 100).await;
    assert_eq!(notify.next_due().await.unwrap(), None);
}
