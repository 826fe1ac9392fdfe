//! When the next delivery is due, a notification's deliveries in creation order, and tenants.

use herald_engine::delivery::{DeliveryStatus, Settlement};
use time::Duration;

use crate::DeliveryFixture;
use crate::support::{at, tenant};

use super::*;

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
