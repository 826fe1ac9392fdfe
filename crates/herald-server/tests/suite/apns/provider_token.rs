//! The provider token: shared, re-signed only when old enough, verified by PyJWT.

use std::sync::Arc;

use herald_channels::apns::ApnsOptions;
use herald_engine::clock::ManualClock;
use herald_engine::delivery::Channel;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::fake_apns::{FakeApns, KEY_ID, Reply, TEAM_ID};
use herald_testkit::keys::EC_PUBLIC_PEM;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_sends_share_one_provider_token() {
    let fake = FakeApns::start().await;
    let app = Arc::new(app(&fake.url()));
    let ch = channel();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (ch, app) = (ch.clone(), app.clone());
        sends.spawn(async move {
            ch.deliver(&message(&format!("d{i}"), &format!("ab{i:02}")), &app)
                .await
        });
    }
    while let Some(outcome) = sends.join_next().await {
        assert!(delivered(&outcome.unwrap()));
    }
    assert_eq!(ch.signings(), 1);
    let requests = fake.requests();
    assert_eq!(requests.len(), 16);
    assert!(requests.iter().all(|r| r.jwt == requests[0].jwt));
}

#[tokio::test]
async fn expired_provider_token_answers_re_sign_only_a_token_twenty_minutes_old() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let ch = channel_with(clock.clone(), ApnsOptions::default());
    let send = |id: &str| {
        let (ch, app, d) = (ch.clone(), app.clone(), message(id, "abcd"));
        async move { ch.deliver(&d, &app).await }
    };
    let expired = || fake.script("abcd", vec![Reply::reason(403, "ExpiredProviderToken")]);

    assert!(delivered(&send("d1").await));
    expired();
    assert!(matches!(
        send("d2").await,
        DeliveryOutcome::Retryable {
            status: Some(403),
            ..
        }
    ));
    clock.advance(time::Duration::minutes(19));
    expired();
    assert!(!delivered(&send("d3").await));
    assert!(delivered(&send("d4").await));
    assert_eq!(ch.signings(), 1, "a token younger than 20 minutes is kept");

    clock.advance(time::Duration::minutes(1));
    expired();
    assert!(!delivered(&send("d5").await));
    assert!(delivered(&send("d6").await));
    assert_eq!(ch.signings(), 2, "a 20-minute-old token is replaced");

    // A storm of expiry answers right after a refresh changes nothing.
    for i in 0..5 {
        expired();
        assert!(!delivered(&send(&format!("s{i}")).await));
    }
    assert!(delivered(&send("d7").await));
    assert_eq!(ch.signings(), 2);

    clock.advance(time::Duration::minutes(40));
    assert!(delivered(&send("d8").await));
    assert_eq!(ch.signings(), 3, "refreshed after 40 minutes");
    let jwts: std::collections::BTreeSet<String> =
        fake.requests().into_iter().map(|r| r.jwt).collect();
    assert_eq!(jwts.len(), 3);
    assert!(
        fake.rejections().is_empty(),
        "never TooManyProviderTokenUpdates: {:?}",
        fake.rejections()
    );
}

#[tokio::test]
async fn pyjwt_verifies_the_provider_token() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    assert!(delivered(
        &channel().deliver(&message("d1", "abcd"), &app).await
    ));
    let jwt = fake.requests()[0].jwt.clone();
    let script = r#"
import json, sys, time, jwt
given = json.load(sys.stdin)
header = jwt.get_unverified_header(given["jwt"])
claims = jwt.decode(given["jwt"], given["public_key"], algorithms=["ES256"],
                    issuer=given["team_id"], options={"require": ["iss", "iat"]})
assert abs(time.time() - claims["iat"]) < 600, claims
print(json.dumps({"alg": header["alg"], "kid": header["kid"], "iss": claims["iss"]}))
"#;
    let input = json!({"jwt": jwt, "public_key": EC_PUBLIC_PEM, "team_id": TEAM_ID});
    let out = herald_testkit::python::run(script, input.to_string().as_bytes());
    let verified: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        verified,
        json!({"alg": "ES256", "kid": KEY_ID, "iss": TEAM_ID})
    );
}
