//! The channel on its own: FCM's answers over real HTTP reach the right outcome.

use std::sync::Arc;

use herald_engine::clock::SystemClock;
use herald_engine::delivery::Channel;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::fake_fcm::{FakeFcm, PROJECT_ID, Reply};
use time::OffsetDateTime;

use super::*;

#[tokio::test]
async fn fcm_answers_through_the_fake_reach_the_right_outcome() {
    let fake = FakeFcm::start().await;
    let app = app(&fake);
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    let cases = [
        (Reply::Ok, "delivered", None),
        (Reply::Unregistered, "invalid_target", None),
        (Reply::InvalidToken, "invalid_target", None),
        (
            Reply::InvalidArgument("Message is too big".into()),
            "permanent",
            Some(400),
        ),
        (Reply::SenderIdMismatch, "invalid_target", None),
        (
            Reply::QuotaExceeded {
                retry_after_s: Some(7),
            },
            "retryable",
            Some(429),
        ),
        (
            Reply::RateLimited {
                retry_after_s: Some(8),
            },
            "retryable",
            Some(429),
        ),
        (Reply::Internal, "retryable", Some(500)),
        (
            Reply::Unavailable {
                retry_after_s: Some(9),
            },
            "retryable",
            Some(503),
        ),
        (Reply::ThirdPartyAuthError, "permanent", Some(401)),
    ];
    for (i, (reply, expected, status)) in cases.iter().enumerate() {
        let token = format!("tok-case-{i}");
        fake.script(&token, vec![reply.clone()]);
        let outcome = fcm
            .deliver(&message(&format!("d{i}"), &token, now), &app)
            .await;
        let value = serde_json::to_value(&outcome).unwrap();
        assert_eq!(value["outcome"], *expected, "{reply:?} → {value}");
        if let Some(status) = status {
            assert_eq!(value["status"], *status, "{reply:?} → {value}");
        }
        if let DeliveryOutcome::Retryable { after_ms, .. } = &outcome {
            let asked = match reply {
                Reply::QuotaExceeded { .. } => Some(7_000),
                Reply::RateLimited { .. } => Some(8_000),
                Reply::Unavailable { .. } => Some(9_000),
                _ => None,
            };
            assert_eq!(*after_ms, asked, "{reply:?}");
        }
    }
    assert_eq!(fake.token_fetches(), 1, "one access token for all of them");

    // A wrong project is not a dead token.
    let mut elsewhere = app.clone();
    elsewhere.fcm.as_mut().unwrap().service_account.project_id = "other-project".into();
    let outcome = fcm.deliver(&message("dx", "tok-x", now), &elsewhere).await;
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Permanent {
                status: Some(404),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        fcm.endpoint_key(&message("dx", "tok-x", now), &app),
        format!("fcm:{}:{PROJECT_ID}", fake.url())
    );
    // A transport failure is retryable.
    let mut down = app.clone();
    down.fcm.as_mut().unwrap().base_url = Some("http://127.0.0.1:9".into());
    assert!(matches!(
        fcm.deliver(&message("dy", "tok-y", now), &down).await,
        DeliveryOutcome::Retryable { status: None, .. }
    ));
}
