//! Settlement of one attempt's outcome: retries after the backoff until max attempts or the
//! TTL, the log line of a delivery that ended without arriving (no secrets in it). Other tests
//! of the delivery core build their deliveries with `delivery` and `t`.

use herald_engine::ids::{AppId, TenantId, UserId};
use herald_engine::push::{Push, PushKind, Target};

use super::*;

pub(crate) fn t(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
}

/// A webhook delivery of tenant `acme`, app `mobile`, expiring `expires` s after `t(0)`.
pub(crate) fn delivery(attempt: u32, expires: i64) -> Delivery {
    let tenant = TenantId::parse("acme").unwrap();
    let app = AppId::parse("mobile").unwrap();
    Delivery {
        id: "d1".into(),
        notification_id: "n1".into(),
        tenant_id: tenant.clone(),
        app_id: app.clone(),
        channel: "webhook".into(),
        target: Target::Webhook {
            endpoint_id: "w".into(),
            devices: vec![],
        },
        push: Push {
            kind: PushKind::NewMessage,
            tenant_id: tenant,
            app_id: app,
            user_id: UserId::parse("u").unwrap(),
            conversation_id: None,
            position: None,
            event_id: None,
            event_at: None,
            title: None,
            body: None,
            lines: vec![],
            sender: None,
            message_count: 1,
            unread: 1,
            badge: 1,
            call_id: None,
            missed_calls: 0,
            collapse_key: "c".into(),
            high_priority: false,
            data: Default::default(),
            created_at: t(0),
            expires_at: t(expires),
            gateway: None,
            gms: None,
        },
        attempt,
    }
}

fn attempt(outcome: DeliveryOutcome) -> Attempt {
    Attempt {
        at: t(0),
        duration_ms: 1,
        outcome,
    }
}

fn unavailable(after_ms: Option<u64>) -> Attempt {
    attempt(DeliveryOutcome::Retryable {
        after_ms,
        reason: "503".into(),
        status: Some(503),
    })
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        retry_base_delay_ms: 1_000,
        retry_max_delay_ms: 60_000,
        max_attempts: 3,
        ..DeliveryPolicy::default()
    }
}

#[test]
fn a_retryable_failure_is_retried_after_the_backoff() {
    let s = settlement_for(unavailable(None), &delivery(2, 3_600), &policy(), t(0), 1.0);
    assert_eq!(
        s,
        Settlement::Retry {
            attempt: unavailable(None),
            next_at: t(2),
        }
    );
    let s = settlement_for(
        unavailable(Some(10_000)),
        &delivery(1, 3_600),
        &policy(),
        t(0),
        0.0,
    );
    assert!(matches!(s, Settlement::Retry { next_at, .. } if next_at == t(10)));
}

#[test]
fn an_unsent_request_is_retried_like_a_retryable_failure_and_gives_up_the_same_way() {
    let unsent = || {
        attempt(DeliveryOutcome::Unsent {
            reason: "FCM: the connection was recycled".into(),
        })
    };
    let s = settlement_for(unsent(), &delivery(2, 3_600), &policy(), t(0), 1.0);
    assert_eq!(
        s,
        Settlement::Retry {
            attempt: unsent(),
            next_at: t(2),
        }
    );
    let s = settlement_for(unsent(), &delivery(3, 3_600), &policy(), t(0), 1.0);
    assert_eq!(s, Settlement::GaveUp(unsent()));
}

#[test]
fn retries_stop_at_max_attempts_when_retry_is_off_and_at_the_ttl() {
    let p = policy();
    let gave_up = |s: Settlement| matches!(s, Settlement::GaveUp(_));
    assert!(gave_up(settlement_for(
        unavailable(None),
        &delivery(3, 3_600),
        &p,
        t(0),
        0.5
    )));
    let off = DeliveryPolicy {
        retry: false,
        ..policy()
    };
    assert!(gave_up(settlement_for(
        unavailable(None),
        &delivery(1, 3_600),
        &off,
        t(0),
        0.5
    )));
    assert!(gave_up(settlement_for(
        unavailable(Some(5_000)),
        &delivery(1, 4),
        &p,
        t(0),
        0.5
    )));
}

#[test]
fn other_outcomes_settle_as_they_are() {
    let p = policy();
    let d = delivery(1, 3_600);
    let ok = attempt(DeliveryOutcome::Delivered { provider_id: None });
    assert_eq!(
        settlement_for(ok.clone(), &d, &p, t(0), 0.5),
        Settlement::Delivered(ok)
    );
    let gone = attempt(DeliveryOutcome::InvalidTarget {
        reason: "gone".into(),
    });
    assert_eq!(
        settlement_for(gone.clone(), &d, &p, t(0), 0.5),
        Settlement::InvalidTarget(gone)
    );
    let bad = attempt(DeliveryOutcome::Permanent {
        reason: "400".into(),
        status: Some(400),
    });
    assert_eq!(
        settlement_for(bad.clone(), &d, &p, t(0), 0.5),
        Settlement::Failed(bad)
    );
}

#[test]
fn waiting_past_the_ttl_expires_instead() {
    let d = delivery(1, 10);
    assert!(matches!(wait(&d, t(5), "x"), Settlement::Postpone { next_at, .. } if next_at == t(5)));
    assert!(matches!(wait(&d, t(10), "x"), Settlement::Expired { .. }));
}

#[test]
fn deliveries_that_end_without_arriving_are_logged_with_level_attempts_and_reason() {
    let d = delivery(3, 3_600);
    let bad = attempt(DeliveryOutcome::Permanent {
        reason: "400 from the provider".into(),
        status: Some(400),
    });
    let gone = attempt(DeliveryOutcome::InvalidTarget {
        reason: "Unregistered".into(),
    });
    let ended =
        |s: Settlement| Ended::of(&d, &s).map(|e| (e.warn, e.outcome, e.attempts, e.reason));
    let reason = |r: &str| r.to_string();
    assert_eq!(
        ended(Settlement::Failed(bad)),
        Some((true, "failed", 3, reason("400 from the provider")))
    );
    assert_eq!(
        ended(Settlement::GaveUp(unavailable(None))),
        Some((true, "gave_up", 3, reason("503")))
    );
    assert_eq!(
        ended(Settlement::InvalidTarget(gone)),
        Some((false, "invalid_target", 3, reason("Unregistered")))
    );
    assert_eq!(
        ended(expired("the push's TTL ran out before delivery")),
        Some((
            false,
            "expired",
            2,
            reason("the push's TTL ran out before delivery")
        ))
    );
    let superseded = Settlement::Cancelled {
        reason: crate::delivery::order::SUPERSEDED.into(),
    };
    assert_eq!(
        ended(superseded),
        Some((
            false,
            "cancelled",
            2,
            reason(crate::delivery::order::SUPERSEDED)
        ))
    );
    let ok = attempt(DeliveryOutcome::Delivered { provider_id: None });
    assert_eq!(ended(Settlement::Delivered(ok)), None);
    assert_eq!(
        ended(Settlement::Retry {
            attempt: unavailable(None),
            next_at: t(5)
        }),
        None
    );
    assert_eq!(ended(wait(&d, t(5), "busy")), None);
}

#[test]
fn a_long_reason_is_cut_at_a_character_boundary() {
    let long = "é".repeat(MAX_REASON);
    let cut = truncated(long);
    assert!(cut.len() <= MAX_REASON + '…'.len_utf8(), "{}", cut.len());
    assert!(cut.ends_with('…'));
    assert_eq!(truncated("short".into()), "short");
}

#[test]
fn fingerprints_never_show_the_key() {
    let key = "webhook:https://user:pass@example.com/hook?token=abc";
    let f = fingerprint(key);
    assert!(f.starts_with("webhook#"), "{f}");
    assert!(!f.contains("pass") && !f.contains("example"), "{f}");
    assert_eq!(f, fingerprint(key), "stable");
}
