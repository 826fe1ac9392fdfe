//! Every APNs reason through the fake reaches the right outcome.

use herald_engine::delivery::Channel;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::fake_apns::{FakeApns, Reply};

use super::*;

#[tokio::test]
async fn apns_reasons_through_the_fake_reach_the_right_outcome() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    type Expect = fn(&DeliveryOutcome) -> bool;
    let cases: Vec<(Reply, Expect)> = vec![
        (
            Reply::Ok,
            |o| matches!(o, DeliveryOutcome::Delivered { provider_id: Some(id) } if id.len() == 36),
        ),
        (
            Reply::bad_device_token(),
            |o| matches!(o, DeliveryOutcome::InvalidTarget { reason } if reason.contains("BadDeviceToken")),
        ),
        (Reply::reason(400, "DeviceTokenNotForTopic"), |o| {
            matches!(o, DeliveryOutcome::InvalidTarget { .. })
        }),
        (
            Reply::TooManyRequests {
                retry_after_s: Some(7),
            },
            |o| {
                matches!(
                    o,
                    DeliveryOutcome::Retryable {
                        after_ms: Some(7000),
                        status: Some(429),
                        ..
                    }
                )
            },
        ),
        (Reply::internal_server_error(), |o| {
            matches!(
                o,
                DeliveryOutcome::Retryable {
                    status: Some(500),
                    ..
                }
            )
        }),
        (Reply::service_unavailable(), |o| {
            matches!(
                o,
                DeliveryOutcome::Retryable {
                    status: Some(503),
                    ..
                }
            )
        }),
        (
            Reply::reason(400, "BadCollapseId"),
            |o| matches!(o, DeliveryOutcome::Permanent { status: Some(400), reason } if reason.contains("BadCollapseId")),
        ),
        (Reply::reason(403, "Forbidden"), |o| {
            matches!(
                o,
                DeliveryOutcome::Permanent {
                    status: Some(403),
                    ..
                }
            )
        }),
        (Reply::reason(413, "PayloadTooLarge"), |o| {
            matches!(
                o,
                DeliveryOutcome::Permanent {
                    status: Some(413),
                    ..
                }
            )
        }),
    ];
    for (i, (reply, expected)) in cases.into_iter().enumerate() {
        let token = format!("0a{i:02}");
        fake.script(&token, vec![reply.clone()]);
        let outcome = ch.deliver(&message(&format!("d{i}"), &token), &app).await;
        assert!(expected(&outcome), "{reply:?} → {outcome:?}");
    }
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
}
