//! Claims under a lease: once, earliest first, again after the lease, never twice at once; and
//! deliveries whose device was removed, moved or re-registered.

use std::collections::BTreeSet;
use std::sync::Arc;

use herald_engine::delivery::{DeliveryQueue, DeliveryStatus, DeliveryView, Settlement};
use herald_engine::device::DeviceChannel;
use herald_engine::push::{Delivery, Target};
use time::Duration;

use crate::DeliveryFixture;
use crate::support::{at, device_id, registration, tenant};

use super::*;

pub async fn an_enqueued_delivery_is_claimed_once_with_its_first_attempt(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    let original = webhook(&t, "d1", "n1");
    enqueue(fx, vec![original.clone()], at(0)).await;
    let pending = view(&q, &t, "n1").await;
    assert_eq!(
        pending,
        DeliveryView {
            id: "d1".into(),
            channel: "webhook".into(),
            device_id: None,
            endpoint_id: Some("hook-1".into()),
            status: DeliveryStatus::Pending,
            attempts: vec![],
            note: None,
            next_attempt_at: Some(at(0)),
        }
    );
    let claimed = claim(&q, at(0), 10).await;
    assert_eq!(claimed, [original], "read back as enqueued, attempt 1");
    assert!(
        claim(&q, at(1), 10).await.is_empty(),
        "a leased delivery is not claimed again"
    );
}

pub async fn enqueuing_an_existing_delivery_id_fails_with_already_exists(fx: &dyn DeliveryFixture) {
    let t = tenant("acme");
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    let again = fx
        .enqueue_deliveries(
            vec![webhook(&t, "d2", "n1"), webhook(&t, "d1", "n1")],
            at(1),
        )
        .await;
    assert!(
        matches!(again, Err(herald_engine::store::StoreError::AlreadyExists)),
        "{again:?}"
    );
    assert_eq!(
        views(&fx.queue(), &t, "n1").await.len(),
        1,
        "a failed enqueue adds nothing"
    );
}

pub async fn claims_take_due_deliveries_earliest_first_up_to_the_limit(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "late", "n1")], at(3)).await;
    enqueue(fx, vec![webhook(&t, "early", "n1")], at(1)).await;
    enqueue(fx, vec![webhook(&t, "middle", "n1")], at(2)).await;
    enqueue(fx, vec![webhook(&t, "future", "n1")], at(100)).await;
    let claim = async |now: i64, limit: usize| {
        let long = Duration::seconds(1_000);
        let got = q.claim_deliveries(at(now), long, limit).await.unwrap();
        got.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    assert!(claim(0, 10).await.is_empty(), "nothing is due yet");
    assert_eq!(claim(10, 2).await, ["early", "middle"]);
    assert_eq!(claim(10, 2).await, ["late"]);
    assert!(claim(99, 2).await.is_empty());
    assert_eq!(claim(100, 2).await, ["future"]);
}

pub async fn a_delivery_whose_lease_ran_out_is_claimed_again(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    let first = q
        .claim_deliveries(at(0), Duration::seconds(5), 10)
        .await
        .unwrap();
    assert_eq!(ids(&first), ["d1"]);
    assert!(
        q.claim_deliveries(at(4), Duration::seconds(5), 10)
            .await
            .unwrap()
            .is_empty(),
        "still leased"
    );
    // The first worker died without settling: the delivery is handed out again, and its
    // attempt number is unchanged (nothing was recorded).
    let again = q
        .claim_deliveries(at(5), Duration::seconds(5), 10)
        .await
        .unwrap();
    assert_eq!(ids(&again), ["d1"]);
    assert_eq!(again[0].attempt, 1);
    // The late worker's settlement still counts: the delivery is leased and pending.
    settle(&q, &t, "d1", Settlement::Delivered(delivered(6)), 6).await;
    assert_eq!(view(&q, &t, "n1").await.status, DeliveryStatus::Delivered);
}

pub async fn concurrent_claimers_never_get_the_same_delivery(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    let all: Vec<Delivery> = (0..120)
        .map(|i| webhook(&t, &format!("d{i:03}"), "n1"))
        .collect();
    enqueue(fx, all, at(0)).await;
    let claimer = |q: Arc<dyn DeliveryQueue>| {
        tokio::spawn(async move {
            let mut got = vec![];
            loop {
                let batch = q
                    .claim_deliveries(at(1), Duration::seconds(60), 7)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|d| d.id));
                tokio::task::yield_now().await;
            }
        })
    };
    let (a, b) = (claimer(q.clone()), claimer(q.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut every: Vec<String> = a.iter().chain(&b).cloned().collect();
    let distinct: BTreeSet<String> = every.iter().cloned().collect();
    assert_eq!(every.len(), distinct.len(), "a delivery was claimed twice");
    every.sort();
    let expected: Vec<String> = (0..120).map(|i| format!("d{i:03}")).collect();
    assert_eq!(every, expected, "every delivery was claimed exactly once");
}

pub async fn a_delivery_to_a_removed_device_is_cancelled_instead_of_claimed(
    fx: &dyn DeliveryFixture,
) {
    let (t, q, store) = (tenant("acme"), fx.queue(), fx.store());
    let phone = device(fx, &t, "dev-1", "tok-1").await;
    let kept = device(fx, &t, "dev-2", "tok-2").await;
    enqueue(
        fx,
        vec![
            to_device(&t, "d1", "n1", &phone),
            to_device(&t, "d2", "n2", &kept),
        ],
        at(0),
    )
    .await;
    // The user signed out of that phone before the push went.
    assert!(store.delete_device(&t, &phone.id).await.unwrap());
    assert_eq!(ids(&claim(&q, at(0), 10).await), ["d2"]);
    let cancelled = view(&q, &t, "n1").await;
    assert_eq!(cancelled.status, DeliveryStatus::Cancelled);
    assert!(cancelled.attempts.is_empty(), "never sent");
    assert_eq!(cancelled.note.as_deref(), Some("the device was removed"));
    assert_eq!(
        ids(&claim(&q, at(1_000), 10).await),
        ["d2"],
        "the cancelled one never again"
    );
}

pub async fn a_delivery_to_a_device_moved_to_another_user_is_cancelled(fx: &dyn DeliveryFixture) {
    let (t, q, store) = (tenant("acme"), fx.queue(), fx.store());
    let phone = device(fx, &t, "dev-1", "tok-1").await;
    enqueue(fx, vec![to_device(&t, "d1", "n1", &phone)], at(0)).await;
    // Another user signs in on that phone: the token moves to them.
    let (moved, _) = store
        .register_device(
            &t,
            &registration("mobile", "u2", DeviceChannel::Fcm, "tok-1"),
            device_id("dev-new"),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!((moved.id.as_str(), moved.user_id.as_str()), ("dev-1", "u2"));
    assert!(
        claim(&q, at(1), 10).await.is_empty(),
        "u1's push never reaches u2"
    );
    let cancelled = view(&q, &t, "n1").await;
    assert_eq!(cancelled.status, DeliveryStatus::Cancelled);
    assert_eq!(
        cancelled.note.as_deref(),
        Some("the device was moved to another user")
    );
}

pub async fn a_delivery_to_a_device_with_a_rotated_token_goes_to_the_new_token(
    fx: &dyn DeliveryFixture,
) {
    let (t, q, store) = (tenant("acme"), fx.queue(), fx.store());
    let old = device(fx, &t, "dev-1", "tok-old").await;
    enqueue(fx, vec![to_device(&t, "d1", "n1", &old)], at(0)).await;
    let fresh = device(fx, &t, "dev-1", "tok-new").await;
    let claimed = claim(&q, at(0), 10).await;
    assert_eq!(ids(&claimed), ["d1"]);
    assert_eq!(
        claimed[0].target,
        Target::Device {
            device: fresh.clone()
        },
        "the device as it is now"
    );
    // What was tried is what an invalid-target report refers to: the new token.
    settle(&q, &t, "d1", Settlement::InvalidTarget(gone(1)), 1).await;
    assert_eq!(store.get_device(&t, &fresh.id).await.unwrap(), None);
}
