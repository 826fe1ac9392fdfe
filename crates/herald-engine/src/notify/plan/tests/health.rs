//! Web Push health checks.

use crate::app::{AppConfig, WebPushSection};
use crate::notify::plan::health::{DueCheck, check_window};
use crate::notify::record::Status;
use crate::push::{PushKind, Target};

use super::*;

fn checking(interval_s: u64) -> AppConfig {
    AppConfig {
        webpush: Some(WebPushSection {
            vapid_public_key: None,
            vapid_private_key: None,
            subject: "mailto:ops@example".into(),
            health_check_interval_s: interval_s,
            health_check_timeout_s: 60,
        }),
        ..AppConfig::default()
    }
}

#[test]
fn an_app_checks_its_subscriptions_only_with_an_interval() {
    assert_eq!(check_window(&AppConfig::default(), T0), None);
    assert_eq!(check_window(&checking(0), T0), None);
    let window = check_window(&checking(3_600), T0).unwrap();
    assert_eq!(window.checked_before, T0 - Duration::hours(1));
    assert_eq!(window.deadline, T0 + Duration::minutes(1));
}

#[test]
fn a_health_check_goes_to_its_subscription_alone_and_must_be_acknowledged() {
    let world = World::with_app(checking(3_600));
    let due = DueCheck {
        tenant: tenant(),
        app: app(),
        device: device("v1"),
        deadline: at(60_000),
    };
    let planned =
        super::super::health_checks(world.inputs.clone(), &[due], T0, &mut Counting::default());
    let r = planned.record("v1", PushKind::HealthCheck);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(
        r.reason,
        "health check of subscription dev-v1: it must be acknowledged by 2026-11-23T10:01:00Z"
    );
    let push = r.push.as_ref().unwrap();
    assert_eq!(push.collapse_key, "health:dev-v1");
    assert_eq!(push.data.get("check_id"), Some(&r.id));
    let check = &planned.commit.checks[0];
    assert_eq!(
        (check.check_id.as_str(), check.deadline),
        (r.id.as_str(), at(60_000))
    );
    let [delivery] = planned.commit.deliveries.as_slice() else {
        panic!("one delivery");
    };
    let subscription = device("v1");
    assert!(matches!(&delivery.target, Target::Device { device } if *device == subscription));
}
