//! Settlements and the attempt history: delivered, retried, postponed, failed, expired, and
//! settling what is not claimed.

use herald_engine::delivery::{DeliveryStatus, Settlement};
use herald_engine::push::DeliveryOutcome;

use crate::DeliveryFixture;
use crate::support::{at, tenant};

use super::*;

pub async fn a_delivered_delivery_keeps_its_attempt_and_is_done(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    claim(&q, at(0), 10).await;
    settle(&q, &t, "d1", Settlement::Delivered(delivered(1)), 1).await;
    let done = view(&q, &t, "n1").await;
    assert_eq!(done.status, DeliveryStatus::Delivered);
    assert_eq!(done.attempts, [delivered(1)]);
    assert_eq!(done.next_attempt_at, None, "only pending deliveries wait");
    assert!(claim(&q, at(1_000), 10).await.is_empty());
    assert_eq!(q.next_delivery_at().await.unwrap(), None);
}

pub async fn a_retry_counts_the_attempt_and_waits_until_its_time(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    claim(&q, at(0), 10).await;
    settle(
        &q,
        &t,
        "d1",
        Settlement::Retry {
            attempt: unavailable(1),
            next_at: at(30),
        },
        1,
    )
    .await;
    let waiting = view(&q, &t, "n1").await;
    assert_eq!(waiting.status, DeliveryStatus::Pending);
    assert_eq!(waiting.attempts, [unavailable(1)]);
    assert_eq!(waiting.next_attempt_at, Some(at(30)));
    assert_eq!(waiting.note.as_deref(), Some("503 from the provider"));
    assert!(
        claim(&q, at(29), 10).await.is_empty(),
        "not before its time"
    );
    let again = claim(&q, at(30), 10).await;
    assert_eq!(ids(&again), ["d1"]);
    assert_eq!(again[0].attempt, 2, "the second attempt");
    settle(&q, &t, "d1", Settlement::Delivered(delivered(31)), 31).await;
    let done = view(&q, &t, "n1").await;
    assert_eq!(done.attempts, [unavailable(1), delivered(31)]);
    assert_eq!(
        done.note, None,
        "a delivered delivery has nothing to explain"
    );
}

pub async fn a_postponed_delivery_waits_without_counting_an_attempt(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    claim(&q, at(0), 10).await;
    settle(
        &q,
        &t,
        "d1",
        Settlement::Postpone {
            next_at: at(20),
            reason: "circuit open".into(),
        },
        1,
    )
    .await;
    let waiting = view(&q, &t, "n1").await;
    assert_eq!(
        (
            waiting.status,
            waiting.attempts.len(),
            waiting.note.as_deref()
        ),
        (DeliveryStatus::Pending, 0, Some("circuit open"))
    );
    assert_eq!(waiting.next_attempt_at, Some(at(20)));
    assert!(claim(&q, at(19), 10).await.is_empty());
    let again = claim(&q, at(20), 10).await;
    assert_eq!(again[0].attempt, 1, "still the first attempt");
}

pub async fn failed_and_given_up_deliveries_fail_with_their_reason(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(
        fx,
        vec![webhook(&t, "d1", "n1"), webhook(&t, "d2", "n2")],
        at(0),
    )
    .await;
    claim(&q, at(0), 10).await;
    let rejected = attempt(
        1,
        DeliveryOutcome::Permanent {
            reason: "400: bad request".into(),
            status: Some(400),
        },
    );
    settle(&q, &t, "d1", Settlement::Failed(rejected.clone()), 1).await;
    settle(&q, &t, "d2", Settlement::GaveUp(unavailable(1)), 1).await;
    let failed = view(&q, &t, "n1").await;
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.attempts, [rejected]);
    assert_eq!(failed.note.as_deref(), Some("400: bad request"));
    let gave_up = view(&q, &t, "n2").await;
    assert_eq!(gave_up.status, DeliveryStatus::Failed);
    assert_eq!(gave_up.attempts, [unavailable(1)]);
    let note = gave_up.note.unwrap_or_default();
    assert!(note.contains("503 from the provider"), "{note}");
    assert!(claim(&q, at(1_000), 10).await.is_empty());
}

pub async fn an_expired_delivery_is_recorded_with_its_reason(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    claim(&q, at(0), 10).await;
    settle(
        &q,
        &t,
        "d1",
        Settlement::Expired {
            reason: "the push's TTL ran out before delivery".into(),
        },
        1,
    )
    .await;
    let expired = view(&q, &t, "n1").await;
    assert_eq!(expired.status, DeliveryStatus::Expired);
    assert!(expired.attempts.is_empty(), "never sent");
    assert_eq!(
        expired.note.as_deref(),
        Some("the push's TTL ran out before delivery")
    );
    assert!(claim(&q, at(1_000), 10).await.is_empty());
}

pub async fn settling_an_unclaimed_or_settled_delivery_changes_nothing(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    // Never claimed: not leased, so not settled.
    settle(&q, &t, "d1", Settlement::Delivered(delivered(0)), 0).await;
    let untouched = view(&q, &t, "n1").await;
    assert_eq!(
        (untouched.status, untouched.attempts.len()),
        (DeliveryStatus::Pending, 0)
    );
    // A retry settled twice counts once: the first released the lease.
    claim(&q, at(0), 10).await;
    let retry = || Settlement::Retry {
        attempt: unavailable(1),
        next_at: at(10),
    };
    settle(&q, &t, "d1", retry(), 1).await;
    settle(&q, &t, "d1", retry(), 1).await;
    assert_eq!(view(&q, &t, "n1").await.attempts, [unavailable(1)]);
    // A delivered delivery stays delivered.
    claim(&q, at(10), 10).await;
    settle(&q, &t, "d1", Settlement::Delivered(delivered(11)), 11).await;
    settle(&q, &t, "d1", Settlement::Failed(unavailable(12)), 12).await;
    settle(
        &q,
        &t,
        "d1",
        Settlement::Expired {
            reason: "late".into(),
        },
        12,
    )
    .await;
    let done = view(&q, &t, "n1").await;
    assert_eq!(done.status, DeliveryStatus::Delivered);
    assert_eq!(done.attempts, [unavailable(1), delivered(11)]);
    // Unknown ids are no-ops too.
    settle(&q, &t, "nope", Settlement::Delivered(delivered(13)), 13).await;
}
