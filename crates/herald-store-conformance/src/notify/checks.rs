//! Web Push health checks: which subscriptions are due one (`devices_to_check`), a check sent
//! in a commit, unanswered past its deadline (`expire_checks`), answered
//! (`acknowledge_check`), and the devices that failed one (`unhealthy_devices`).

use herald_engine::device::DeviceChannel;
use herald_engine::ids::{AppId, DeviceId, UserId};
use herald_engine::notify::store::{HealthCheck, NotifyCommit};

use crate::NotifyFixture;
use crate::support::{app_id, at, device_id, registration, tenant};

use super::*;

fn check(t: &TenantId, owner: &str, device: &str, id: &str, deadline: i64) -> HealthCheck {
    HealthCheck {
        tenant: t.clone(),
        app: app_id("chat"),
        user: user(owner),
        device: device_id(device),
        check_id: id.into(),
        deadline: at(deadline),
    }
}

/// Sends `checks` at `now`.
async fn send(fx: &dyn NotifyFixture, checks: Vec<HealthCheck>, now: i64) {
    let step = NotifyCommit {
        checks,
        ..NotifyCommit::default()
    };
    commit(&fx.notify(), step, now).await;
}

async fn to_check(fx: &dyn NotifyFixture, t: &TenantId, before: i64, limit: usize) -> Vec<String> {
    fx.notify()
        .devices_to_check(t, &app_id("chat"), at(before), limit)
        .await
        .expect("the devices read")
        .into_iter()
        .map(|d| d.id.as_str().to_string())
        .collect()
}

async fn acknowledge(fx: &dyn NotifyFixture, owner: &str, device: &str, id: &str) -> bool {
    fx.notify()
        .acknowledge_check(
            &tenant("acme"),
            &user(owner),
            &device_id(device),
            id,
            at(500),
        )
        .await
        .expect("the acknowledgement runs")
}

async fn unhealthy(fx: &dyn NotifyFixture, owner: &str) -> Vec<(DeviceId, AppId)> {
    fx.notify()
        .unhealthy_devices(&tenant("acme"), &user(owner))
        .await
        .expect("the devices read")
}

fn expired(owner: &str, device: &str) -> (TenantId, UserId, DeviceId) {
    (tenant("acme"), user(owner), device_id(device))
}

pub async fn health_checks_expire_into_unhealthy_devices_until_acknowledged(
    fx: &dyn NotifyFixture,
) {
    let (t, notify) = (tenant("acme"), fx.notify());
    device_of(fx, &t, "w1", "ann", "chat", DeviceChannel::Webpush).await;
    assert_eq!(to_check(fx, &t, 10, 10).await, ["w1"], "never checked");
    send(fx, vec![check(&t, "ann", "w1", "chk-1", 100)], 10).await;
    assert!(
        to_check(fx, &t, 50, 10).await.is_empty(),
        "a check is outstanding"
    );
    assert!(
        notify.expire_checks(at(99)).await.unwrap().is_empty(),
        "not yet"
    );
    assert_eq!(
        notify.expire_checks(at(100)).await.unwrap(),
        [expired("ann", "w1")]
    );
    assert!(
        notify.expire_checks(at(200)).await.unwrap().is_empty(),
        "once"
    );
    assert_eq!(
        unhealthy(fx, "ann").await,
        [(device_id("w1"), app_id("chat"))]
    );
    assert!(
        !acknowledge(fx, "bob", "w1", "chk-1").await,
        "not bob's check"
    );
    // An answer after the deadline still shows the subscription works.
    assert!(acknowledge(fx, "ann", "w1", "chk-1").await);
    assert!(unhealthy(fx, "ann").await.is_empty());
    assert!(
        !acknowledge(fx, "ann", "w1", "chk-1").await,
        "no longer outstanding"
    );
}

/// Only the app's Web Push subscriptions, never checked or last checked before the cutoff
/// with nothing outstanding; by device id, up to the limit.
pub async fn devices_to_check_are_an_apps_web_push_devices_not_checked_since_the_cutoff(
    fx: &dyn NotifyFixture,
) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    for id in ["w3", "w1", "w2"] {
        device_of(fx, &acme, id, "ann", "chat", DeviceChannel::Webpush).await;
    }
    device_of(fx, &acme, "f1", "ann", "chat", DeviceChannel::Fcm).await;
    device_of(fx, &acme, "w0", "ann", "web", DeviceChannel::Webpush).await;
    device_of(fx, &beta, "w9", "ann", "chat", DeviceChannel::Webpush).await;
    assert_eq!(to_check(fx, &acme, 10, 10).await, ["w1", "w2", "w3"]);
    assert_eq!(to_check(fx, &acme, 10, 2).await, ["w1", "w2"]);
    assert_eq!(to_check(fx, &beta, 10, 10).await, ["w9"]);

    send(
        fx,
        vec![
            check(&acme, "ann", "w1", "chk-1", 30),
            check(&acme, "ann", "w2", "chk-2", 30),
        ],
        10,
    )
    .await;
    assert_eq!(to_check(fx, &acme, 50, 10).await, ["w3"], "two outstanding");
    assert!(acknowledge(fx, "ann", "w1", "chk-1").await);
    notify.expire_checks(at(30)).await.unwrap();
    // Answered or expired, both sent at 10: due again for a cutoff after that, not at it.
    assert_eq!(to_check(fx, &acme, 11, 10).await, ["w1", "w2", "w3"]);
    assert_eq!(to_check(fx, &acme, 10, 10).await, ["w3"]);
}

/// A check that was answered is over: it never expires.
pub async fn an_acknowledged_check_never_expires(fx: &dyn NotifyFixture) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    device_of(fx, &acme, "w1", "ann", "chat", DeviceChannel::Webpush).await;
    device_of(fx, &acme, "w2", "bob", "chat", DeviceChannel::Webpush).await;
    device_of(fx, &beta, "w1", "ann", "chat", DeviceChannel::Webpush).await;
    send(
        fx,
        vec![
            check(&acme, "ann", "w1", "chk-1", 100),
            check(&acme, "bob", "w2", "chk-2", 150),
            check(&beta, "ann", "w1", "chk-1", 100),
        ],
        10,
    )
    .await;
    assert!(acknowledge(fx, "ann", "w1", "chk-1").await);
    let mut gone = notify.expire_checks(at(200)).await.unwrap();
    gone.sort();
    assert_eq!(
        gone,
        [
            expired("bob", "w2"),
            (beta.clone(), user("ann"), device_id("w1"))
        ]
    );
    assert!(unhealthy(fx, "ann").await.is_empty(), "acme's w1 answered");
    assert_eq!(
        unhealthy(fx, "bob").await,
        [(device_id("w2"), app_id("chat"))]
    );
}

pub async fn a_check_is_acknowledged_only_by_its_owner_with_its_id_and_device(
    fx: &dyn NotifyFixture,
) {
    let t = tenant("acme");
    device_of(fx, &t, "w1", "ann", "chat", DeviceChannel::Webpush).await;
    device_of(fx, &t, "w2", "ann", "chat", DeviceChannel::Webpush).await;
    send(fx, vec![check(&t, "ann", "w1", "chk-1", 100)], 10).await;
    assert!(
        !acknowledge(fx, "ann", "w1", "chk-0").await,
        "another check id"
    );
    assert!(
        !acknowledge(fx, "ann", "w2", "chk-1").await,
        "another device"
    );
    assert!(!acknowledge(fx, "bob", "w1", "chk-1").await, "another user");
    let beta = fx
        .notify()
        .acknowledge_check(
            &tenant("beta"),
            &user("ann"),
            &device_id("w1"),
            "chk-1",
            at(20),
        )
        .await
        .unwrap();
    assert!(!beta, "another tenant");
    assert!(acknowledge(fx, "ann", "w1", "chk-1").await);
    assert!(!acknowledge(fx, "ann", "w1", "chk-1").await, "once");
}

/// A device that failed a check stays unhealthy until one is answered: sending the next
/// check does not clear it, and the answer to the replaced check no longer counts.
pub async fn a_new_check_replaces_the_devices_last_and_unhealthy_lasts_until_an_answer(
    fx: &dyn NotifyFixture,
) {
    let (t, notify) = (tenant("acme"), fx.notify());
    device_of(fx, &t, "w1", "ann", "chat", DeviceChannel::Webpush).await;
    send(fx, vec![check(&t, "ann", "w1", "chk-1", 100)], 10).await;
    notify.expire_checks(at(100)).await.unwrap();
    send(fx, vec![check(&t, "ann", "w1", "chk-2", 300)], 200).await;
    assert_eq!(
        unhealthy(fx, "ann").await,
        [(device_id("w1"), app_id("chat"))]
    );
    assert!(!acknowledge(fx, "ann", "w1", "chk-1").await, "replaced");
    assert!(
        to_check(fx, &t, 250, 10).await.is_empty(),
        "chk-2 is outstanding"
    );
    assert!(acknowledge(fx, "ann", "w1", "chk-2").await);
    assert!(unhealthy(fx, "ann").await.is_empty());
}

/// A subscription removed, or moved to another user, is not theirs to resubscribe.
pub async fn unhealthy_devices_are_only_those_still_registered_to_the_user(fx: &dyn NotifyFixture) {
    let (t, store, notify) = (tenant("acme"), fx.store(), fx.notify());
    for id in ["w3", "w1", "w2"] {
        device_of(fx, &t, id, "ann", "chat", DeviceChannel::Webpush).await;
    }
    let checks = ["w1", "w2", "w3"]
        .iter()
        .map(|id| check(&t, "ann", id, &format!("chk-{id}"), 100))
        .collect();
    send(fx, checks, 10).await;
    assert_eq!(notify.expire_checks(at(100)).await.unwrap().len(), 3);
    let ids = |found: Vec<(DeviceId, AppId)>| {
        found
            .into_iter()
            .map(|(d, _)| d.as_str().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(unhealthy(fx, "ann").await),
        ["w1", "w2", "w3"],
        "by device id"
    );
    store.delete_device(&t, &device_id("w2")).await.unwrap();
    // bob registers w3's subscription: it is his device now.
    let moved = registration(
        "chat",
        "bob",
        DeviceChannel::Webpush,
        "https://push.example/w3",
    );
    store
        .register_device(&t, &moved, device_id("w4"), at(300))
        .await
        .unwrap();
    assert_eq!(ids(unhealthy(fx, "ann").await), ["w1"]);
    assert!(
        unhealthy(fx, "bob").await.is_empty(),
        "bob's check is yet to come"
    );
}
