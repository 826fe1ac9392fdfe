//! The decision log: one record by id (`notification`), a user's latest (`user_notifications`),
//! and how a sent record concludes once its deliveries have ended.

use herald_engine::delivery::{Attempt, DeliveryQueue, Settlement};
use herald_engine::notify::record::Status;
use herald_engine::notify::store::NotifyCommit;
use herald_engine::push::DeliveryOutcome;
use time::Duration;

use crate::NotifyFixture;
use crate::deliveries::webhook;
use crate::support::{at, tenant};

use super::*;

fn records(records: Vec<NotificationRecord>) -> NotifyCommit {
    NotifyCommit {
        records,
        ..NotifyCommit::default()
    }
}

async fn status(notify: &Arc<dyn NotifyStore>, t: &TenantId, id: &str) -> Status {
    notify
        .notification(t, id)
        .await
        .expect("the record reads")
        .expect("the record exists")
        .status
}

pub async fn a_committed_record_reads_back_whole_by_tenant_and_id(fx: &dyn NotifyFixture) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    let mut full = scheduled(&acme, "n1", "ann", 50);
    full.push = Some(webhook(&acme, "d1", "n1").push);
    full.note(Status::Scheduled, "moved by quiet hours", at(2));
    let bare = record(&acme, "n2", "ann", Status::Suppressed, 1);
    commit(&notify, records(vec![full.clone(), bare.clone()]), 2).await;
    assert_eq!(notify.notification(&acme, "n1").await.unwrap(), Some(full));
    assert_eq!(notify.notification(&acme, "n2").await.unwrap(), Some(bare));
    assert_eq!(notify.notification(&acme, "n3").await.unwrap(), None);
    assert_eq!(notify.notification(&beta, "n1").await.unwrap(), None);
}

/// The log a user is shown: newest first; decisions made in the same instant come greater id
/// first, so a page is stable.
pub async fn user_notifications_are_a_users_newest_first_up_to_the_limit(fx: &dyn NotifyFixture) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    let log = vec![
        record(&acme, "n-1", "ann", Status::Sent, 1),
        record(&acme, "n-3b", "ann", Status::Suppressed, 3),
        record(&acme, "n-2", "ann", Status::Pending, 2),
        record(&acme, "n-3a", "ann", Status::Sent, 3),
        record(&acme, "n-9", "bob", Status::Sent, 9),
        record(&beta, "n-8", "ann", Status::Sent, 8),
    ];
    commit(&notify, records(log), 9).await;
    let ids = |limit| {
        let notify = notify.clone();
        let acme = acme.clone();
        async move {
            notify
                .user_notifications(&acme, &user("ann"), limit)
                .await
                .expect("the log reads")
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(10).await, ["n-3b", "n-3a", "n-2", "n-1"]);
    assert_eq!(ids(2).await, ["n-3b", "n-3a"]);
    assert!(ids(0).await.is_empty());
    assert!(
        notify
            .user_notifications(&acme, &user("nobody"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn attempt(outcome: DeliveryOutcome) -> Attempt {
    Attempt {
        at: at(3),
        duration_ms: 5,
        outcome,
    }
}

fn failed() -> Settlement {
    Settlement::Failed(attempt(DeliveryOutcome::InvalidTarget {
        reason: "gone".into(),
    }))
}

fn delivered() -> Settlement {
    Settlement::Delivered(attempt(DeliveryOutcome::Delivered { provider_id: None }))
}

async fn settle_all(queue: &Arc<dyn DeliveryQueue>, outcomes: &[(&str, Settlement)]) {
    let claimed = queue
        .claim_deliveries(at(2), Duration::seconds(30), 100)
        .await
        .expect("the claim runs");
    assert_eq!(claimed.len(), outcomes.len(), "every delivery is claimed");
    for (id, settlement) in outcomes {
        let d = claimed.iter().find(|d| d.id == *id).expect("claimed");
        queue
            .settle_delivery(&d.tenant_id, &d.id, settlement.clone(), at(3))
            .await
            .expect("the settlement runs");
    }
}

/// A sent record follows its deliveries once none is pending (`NotificationRecord::conclude`):
/// `failed` when none arrived, `partial` when some did, still `sent` when all did; and not
/// while any is pending.
pub async fn a_sent_record_concludes_from_its_deliveries_once_none_is_pending(
    fx: &dyn NotifyFixture,
) {
    let (t, notify, queue) = (tenant("acme"), fx.notify(), fx.queue());
    let step = NotifyCommit {
        records: ["n-failed", "n-partial", "n-sent"]
            .iter()
            .map(|id| record(&t, id, "ann", Status::Sent, 1))
            .collect(),
        deliveries: vec![
            webhook(&t, "f1", "n-failed"),
            webhook(&t, "f2", "n-failed"),
            webhook(&t, "p1", "n-partial"),
            webhook(&t, "p2", "n-partial"),
            webhook(&t, "s1", "n-sent"),
        ],
        ..NotifyCommit::default()
    };
    commit(&notify, step, 1).await;
    let claimed = queue
        .claim_deliveries(at(2), Duration::seconds(30), 100)
        .await
        .expect("the claim runs");
    assert_eq!(claimed.len(), 5);
    // One of each two settled: the other is pending, so nothing concludes yet.
    for id in ["f1", "p1"] {
        queue
            .settle_delivery(&t, id, failed(), at(3))
            .await
            .unwrap();
    }
    for id in ["n-failed", "n-partial"] {
        assert_eq!(status(&notify, &t, id).await, Status::Sent, "{id} waits");
    }
    queue
        .settle_delivery(&t, "f2", failed(), at(3))
        .await
        .unwrap();
    queue
        .settle_delivery(&t, "p2", delivered(), at(3))
        .await
        .unwrap();
    queue
        .settle_delivery(&t, "s1", delivered(), at(3))
        .await
        .unwrap();
    assert_eq!(status(&notify, &t, "n-failed").await, Status::Failed);
    assert_eq!(status(&notify, &t, "n-partial").await, Status::Partial);
    assert_eq!(status(&notify, &t, "n-sent").await, Status::Sent);
    let concluded = notify.notification(&t, "n-failed").await.unwrap().unwrap();
    assert_eq!(concluded.log.len(), 2, "the conclusion is logged");
    assert_eq!(concluded.updated_at, at(3));
}

/// A record that is not `sent` (here: already cancelled) is not concluded by its deliveries.
pub async fn only_a_sent_record_is_concluded_by_its_deliveries(fx: &dyn NotifyFixture) {
    let (t, notify, queue) = (tenant("acme"), fx.notify(), fx.queue());
    let step = NotifyCommit {
        records: vec![record(&t, "n1", "ann", Status::Cancelled, 1)],
        deliveries: vec![webhook(&t, "d1", "n1")],
        ..NotifyCommit::default()
    };
    commit(&notify, step, 1).await;
    settle_all(&queue, &[("d1", failed())]).await;
    assert_eq!(status(&notify, &t, "n1").await, Status::Cancelled);
}
