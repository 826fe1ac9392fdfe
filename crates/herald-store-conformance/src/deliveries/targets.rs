//! Invalid targets: the device is removed unless it registered a fresh token; webhooks only fail.

use herald_engine::delivery::{DeliveryStatus, Settlement};

use crate::DeliveryFixture;
use crate::support::{at, tenant, user};

use super::*;

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
