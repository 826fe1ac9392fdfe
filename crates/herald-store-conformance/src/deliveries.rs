//! The delivery queue (`DeliveryQueue`): claims under a lease, settlements, the attempt history,
//! invalid targets, and the queue's view per notification. Each case takes a
//! [`DeliveryFixture`]: the store, its queue, and the backend's way to enqueue.

use std::collections::BTreeSet;
use std::sync::Arc;

use herald_engine::delivery::{Attempt, DeliveryQueue, DeliveryStatus, DeliveryView, Settlement};
use herald_engine::device::{Channel, Device};
use herald_engine::ids::TenantId;
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use time::{Duration, OffsetDateTime};

use crate::DeliveryFixture;
use crate::support::{app_id, at, device_id, from_installation, registration, tenant, user};

fn push(t: &TenantId) -> Push {
    Push {
        kind: PushKind::NewMessage,
        tenant_id: t.clone(),
        app_id: app_id("mobile"),
        user_id: user("u1"),
        conversation_id: Some(crate::support::conversation("c1")),
        position: Some(3),
        event_id: None,
        event_at: None,
        title: Some("Ann".into()),
        body: Some("hello".into()),
        lines: vec![],
        sender: None,
        message_count: 1,
        unread: 1,
        badge: 4,
        call_id: None,
        missed_calls: 0,
        collapse_key: "c1".into(),
        high_priority: true,
        data: Default::default(),
        created_at: at(0),
        expires_at: at(3_600),
    }
}

fn delivery(t: &TenantId, id: &str, notification: &str, target: Target) -> Delivery {
    let channel = match &target {
        Target::Device { device } => device.channel.as_str().to_string(),
        Target::Webhook { .. } => "webhook".to_string(),
        Target::Email { .. } => "email".to_string(),
    };
    Delivery {
        id: id.into(),
        notification_id: notification.into(),
        tenant_id: t.clone(),
        app_id: app_id("mobile"),
        channel,
        target,
        push: push(t),
        attempt: 1,
    }
}

fn webhook(t: &TenantId, id: &str, notification: &str) -> Delivery {
    delivery(
        t,
        id,
        notification,
        Target::Webhook {
            endpoint_id: "hook-1".into(),
            devices: vec![],
        },
    )
}

fn to_device(t: &TenantId, id: &str, notification: &str, device: &Device) -> Delivery {
    delivery(
        t,
        id,
        notification,
        Target::Device {
            device: device.clone(),
        },
    )
}

async fn device(fx: &dyn DeliveryFixture, t: &TenantId, id: &str, token: &str) -> Device {
    let r = from_installation(
        registration("mobile", "u1", Channel::Fcm, token),
        &format!("inst-{id}"),
    );
    fx.store()
        .register_device(t, &r, device_id(id), at(0))
        .await
        .expect("the device registers")
        .0
}

async fn enqueue(fx: &dyn DeliveryFixture, deliveries: Vec<Delivery>, now: OffsetDateTime) {
    fx.enqueue_deliveries(deliveries, now)
        .await
        .expect("the deliveries are enqueued");
}

async fn claim(q: &Arc<dyn DeliveryQueue>, now: OffsetDateTime, limit: usize) -> Vec<Delivery> {
    q.claim_deliveries(now, Duration::seconds(60), limit)
        .await
        .expect("the claim runs")
}

fn ids(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.id.as_str()).collect()
}

async fn settle(q: &Arc<dyn DeliveryQueue>, t: &TenantId, id: &str, s: Settlement, now: i64) {
    q.settle_delivery(t, id, s, at(now))
        .await
        .expect("the settlement runs");
}

async fn views(q: &Arc<dyn DeliveryQueue>, t: &TenantId, notification: &str) -> Vec<DeliveryView> {
    q.deliveries_of(t, notification)
        .await
        .expect("deliveries read")
}

async fn view(q: &Arc<dyn DeliveryQueue>, t: &TenantId, notification: &str) -> DeliveryView {
    let mut all = views(q, t, notification).await;
    assert_eq!(all.len(), 1, "one delivery: {all:?}");
    all.remove(0)
}

fn attempt(at_s: i64, outcome: DeliveryOutcome) -> Attempt {
    Attempt {
        at: at(at_s),
        duration_ms: 12,
        outcome,
    }
}

fn delivered(at_s: i64) -> Attempt {
    attempt(
        at_s,
        DeliveryOutcome::Delivered {
            provider_id: Some("p-1".into()),
        },
    )
}

fn unavailable(at_s: i64) -> Attempt {
    attempt(
        at_s,
        DeliveryOutcome::Retryable {
            after_ms: Some(2_000),
            reason: "503 from the provider".into(),
            status: Some(503),
        },
    )
}

fn gone(at_s: i64) -> Attempt {
    attempt(
        at_s,
        DeliveryOutcome::InvalidTarget {
            reason: "the token is unregistered".into(),
        },
    )
}

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

pub async fn an_invalid_device_is_removed_and_its_other_pending_deliveries_fail(
    fx: &dyn DeliveryFixture,
) {
    let (t, q, store) = (tenant("acme"), fx.queue(), fx.store());
    let dead = device(fx, &t, "dev-1", "tok-dead").await;
    let alive = device(fx, &t, "dev-2", "tok-alive").await;
    enqueue(fx, vec![to_device(&t, "d1", "n1", &dead)], at(0)).await;
    enqueue(
        fx,
        vec![
            to_device(&t, "d2", "n2", &dead),
            to_device(&t, "d3", "n2", &alive),
        ],
        at(100),
    )
    .await;
    assert_eq!(ids(&claim(&q, at(0), 10).await), ["d1"]);
    settle(&q, &t, "d1", Settlement::InvalidTarget(gone(1)), 1).await;

    let first = view(&q, &t, "n1").await;
    assert_eq!(first.status, DeliveryStatus::InvalidTarget);
    assert_eq!(first.device_id.as_deref(), Some("dev-1"));
    assert_eq!(first.attempts, [gone(1)], "the reason is in the history");
    assert_eq!(first.note.as_deref(), Some("the token is unregistered"));
    assert_eq!(store.get_device(&t, &dead.id).await.unwrap(), None);
    assert_eq!(
        store.list_devices(&t, &user("u1")).await.unwrap(),
        [alive],
        "other devices stay"
    );

    let second = views(&q, &t, "n2").await;
    assert_eq!(
        second
            .iter()
            .map(|v| (v.id.as_str(), v.status))
            .collect::<Vec<_>>(),
        [
            ("d2", DeliveryStatus::InvalidTarget),
            ("d3", DeliveryStatus::Pending)
        ]
    );
    assert!(second[0].attempts.is_empty(), "never tried");
    assert_eq!(
        ids(&claim(&q, at(100), 10).await),
        ["d3"],
        "the removed device is never tried again"
    );
}

pub async fn an_invalid_target_keeps_a_device_that_registered_a_fresh_token(
    fx: &dyn DeliveryFixture,
) {
    let (t, q, store) = (tenant("acme"), fx.queue(), fx.store());
    let old = device(fx, &t, "dev-1", "tok-old").await;
    enqueue(fx, vec![to_device(&t, "d1", "n1", &old)], at(0)).await;
    assert_eq!(ids(&claim(&q, at(0), 10).await), ["d1"]);
    // While d1 was out, the app got a new token for the same installation: the device is
    // updated in place.
    let fresh = device(fx, &t, "dev-1", "tok-new").await;
    assert_eq!(
        (fresh.id.as_str(), fresh.token.as_str()),
        ("dev-1", "tok-new")
    );
    enqueue(fx, vec![to_device(&t, "d2", "n2", &fresh)], at(50)).await;

    // The old token is reported invalid.
    settle(&q, &t, "d1", Settlement::InvalidTarget(gone(1)), 1).await;
    assert_eq!(
        view(&q, &t, "n1").await.status,
        DeliveryStatus::InvalidTarget
    );
    assert_eq!(
        store.get_device(&t, &fresh.id).await.unwrap(),
        Some(fresh.clone()),
        "the device with its fresh token is kept"
    );
    assert_eq!(
        view(&q, &t, "n2").await.status,
        DeliveryStatus::Pending,
        "a delivery made for the fresh token still goes"
    );
}

pub async fn an_invalid_webhook_target_only_fails_the_delivery(fx: &dyn DeliveryFixture) {
    let (t, q, store) = (tenant("acme"), fx.queue(), fx.store());
    let phone = device(fx, &t, "dev-1", "tok-1").await;
    enqueue(
        fx,
        vec![webhook(&t, "d1", "n1"), to_device(&t, "d2", "n2", &phone)],
        at(0),
    )
    .await;
    claim(&q, at(0), 10).await;
    settle(&q, &t, "d1", Settlement::InvalidTarget(gone(1)), 1).await;
    assert_eq!(
        view(&q, &t, "n1").await.status,
        DeliveryStatus::InvalidTarget
    );
    assert_eq!(
        store.get_device(&t, &phone.id).await.unwrap(),
        Some(phone),
        "no device is touched"
    );
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

pub async fn a_cancelled_delivery_is_recorded_with_its_reason(fx: &dyn DeliveryFixture) {
    let (t, q) = (tenant("acme"), fx.queue());
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(0)).await;
    claim(&q, at(0), 10).await;
    let reason = "superseded by a newer push with the same collapse key";
    settle(
        &q,
        &t,
        "d1",
        Settlement::Cancelled {
            reason: reason.into(),
        },
        1,
    )
    .await;
    let cancelled = view(&q, &t, "n1").await;
    assert_eq!(cancelled.status, DeliveryStatus::Cancelled);
    assert!(cancelled.attempts.is_empty(), "never sent");
    assert_eq!(cancelled.note.as_deref(), Some(reason));
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

pub async fn next_delivery_at_is_when_the_earliest_delivery_becomes_claimable(
    fx: &dyn DeliveryFixture,
) {
    let (t, q) = (tenant("acme"), fx.queue());
    assert_eq!(q.next_delivery_at().await.unwrap(), None, "an empty queue");
    enqueue(fx, vec![webhook(&t, "d1", "n1")], at(5)).await;
    enqueue(fx, vec![webhook(&t, "d2", "n1")], at(8)).await;
    assert_eq!(q.next_delivery_at().await.unwrap(), Some(at(5)));
    // d1 is leased until 15: d2 (due at 8) is next.
    q.claim_deliveries(at(5), Duration::seconds(10), 1)
        .await
        .unwrap();
    assert_eq!(q.next_delivery_at().await.unwrap(), Some(at(8)));
    // d2 leased until 9: its lease ends first.
    q.claim_deliveries(at(8), Duration::seconds(1), 1)
        .await
        .unwrap();
    assert_eq!(q.next_delivery_at().await.unwrap(), Some(at(9)));
    settle(&q, &t, "d2", Settlement::Delivered(delivered(8)), 8).await;
    assert_eq!(q.next_delivery_at().await.unwrap(), Some(at(15)));
    settle(&q, &t, "d1", Settlement::Delivered(delivered(9)), 9).await;
    assert_eq!(q.next_delivery_at().await.unwrap(), None, "nothing pending");
}

pub async fn deliveries_of_lists_a_notifications_deliveries_in_creation_order(
    fx: &dyn DeliveryFixture,
) {
    let (t, q) = (tenant("acme"), fx.queue());
    let phone = device(fx, &t, "dev-1", "tok-1").await;
    enqueue(fx, vec![to_device(&t, "zz", "n1", &phone)], at(1)).await;
    enqueue(fx, vec![webhook(&t, "aa", "n1")], at(2)).await;
    enqueue(fx, vec![webhook(&t, "other", "n2")], at(2)).await;
    let listed = views(&q, &t, "n1").await;
    assert_eq!(
        listed
            .iter()
            .map(|v| (
                v.id.as_str(),
                v.channel.as_str(),
                v.device_id.as_deref(),
                v.endpoint_id.as_deref()
            ))
            .collect::<Vec<_>>(),
        [
            ("zz", "fcm", Some("dev-1"), None),
            ("aa", "webhook", None, Some("hook-1"))
        ]
    );
    assert!(
        views(&q, &t, "n3").await.is_empty(),
        "an unknown notification"
    );
}

pub async fn deliveries_are_isolated_by_tenant(fx: &dyn DeliveryFixture) {
    let (acme, beta, q, store) = (tenant("acme"), tenant("beta"), fx.queue(), fx.store());
    let acme_phone = device(fx, &acme, "dev-1", "tok-1").await;
    let beta_phone = device(fx, &beta, "dev-1", "tok-1").await;
    enqueue(
        fx,
        vec![
            to_device(&acme, "d1", "n1", &acme_phone),
            to_device(&acme, "d2", "n1", &acme_phone),
        ],
        at(0),
    )
    .await;
    enqueue(
        fx,
        vec![
            to_device(&beta, "d1", "n1", &beta_phone),
            to_device(&beta, "d2", "n1", &beta_phone),
        ],
        at(100),
    )
    .await;
    assert_eq!(views(&q, &acme, "n1").await.len(), 2);
    assert_eq!(views(&q, &beta, "n1").await.len(), 2);

    let claimed = claim(&q, at(0), 1).await;
    assert_eq!(
        claimed
            .iter()
            .map(|d| (d.tenant_id.as_str(), d.id.as_str()))
            .collect::<Vec<_>>(),
        [("acme", "d1")]
    );
    // Beta's d1 is not leased: a settlement naming beta changes nothing of either.
    settle(&q, &beta, "d1", Settlement::Delivered(delivered(1)), 1).await;
    assert!(
        views(&q, &beta, "n1")
            .await
            .iter()
            .all(|v| v.status == DeliveryStatus::Pending)
    );
    assert_eq!(views(&q, &acme, "n1").await[0].attempts.len(), 0);

    // Acme's device is invalid: beta's device with the same id and token stays, and so do
    // beta's deliveries to it.
    settle(&q, &acme, "d1", Settlement::InvalidTarget(gone(1)), 1).await;
    assert_eq!(store.get_device(&acme, &acme_phone.id).await.unwrap(), None);
    assert_eq!(
        store.get_device(&beta, &beta_phone.id).await.unwrap(),
        Some(beta_phone)
    );
    assert_eq!(
        views(&q, &acme, "n1")
            .await
            .iter()
            .map(|v| v.status)
            .collect::<Vec<_>>(),
        [DeliveryStatus::InvalidTarget, DeliveryStatus::InvalidTarget]
    );
    assert!(
        views(&q, &beta, "n1")
            .await
            .iter()
            .all(|v| v.status == DeliveryStatus::Pending)
    );
    assert_eq!(
        claim(&q, at(100), 10)
            .await
            .iter()
            .map(|d| (d.tenant_id.as_str(), d.id.as_str()))
            .collect::<Vec<_>>(),
        [("beta", "d1"), ("beta", "d2")]
    );
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
            &registration("mobile", "u2", Channel::Fcm, "tok-1"),
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
