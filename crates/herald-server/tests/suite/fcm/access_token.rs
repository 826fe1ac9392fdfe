//! The channel on its own: the OAuth access token (one fetch, refreshes, a refused account),
//! and the assertion checked by PyJWT.

use std::sync::Arc;
use std::time::Duration;

use herald_engine::clock::{Clock, ManualClock, SystemClock};
use herald_engine::delivery::Channel;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::fake_fcm::{
    CLIENT_EMAIL, FakeFcm, PRIVATE_KEY_ID, RSA_PUBLIC_PEM, Reply, SCOPE,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;

#[tokio::test]
async fn sixteen_concurrent_sends_cause_exactly_one_token_fetch() {
    let fake = FakeFcm::start().await;
    fake.set_token_latency(Duration::from_millis(200));
    let app = Arc::new(app(&fake));
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (fcm, app) = (fcm.clone(), app.clone());
            tokio::spawn(async move {
                fcm.deliver(&message(&format!("d{i}"), &format!("tok-{i}"), now), &app)
                    .await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap();
        assert!(delivered(&outcome), "{outcome:?}");
    }
    assert_eq!(fake.token_fetches(), 1);
    assert_eq!(fcm.token_fetches(), 1);
    let messages = fake.messages();
    assert_eq!(messages.len(), 16);
    assert!(
        messages
            .iter()
            .all(|m| m.access_token == messages[0].access_token)
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_inside_the_attempt() {
    let fake = FakeFcm::start().await;
    let app = app(&fake);
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    assert!(delivered(
        &fcm.deliver(&message("d1", "tok-1", now), &app).await
    ));
    fake.expire_tokens();
    assert!(delivered(
        &fcm.deliver(&message("d2", "tok-1", now), &app).await
    ));
    assert_eq!(fake.token_fetches(), 2);
    let rejected: Vec<_> = fake.rejections().iter().map(|r| r.status).collect();
    assert_eq!(rejected, [401], "one refused send, then the refreshed one");
    let messages = fake.messages();
    assert_eq!(messages.len(), 2);
    assert_ne!(messages[0].access_token, messages[1].access_token);

    // FCM keeps refusing: one refresh, then a permanent failure (no loop).
    fake.script(
        "tok-2",
        vec![Reply::Unauthenticated, Reply::Unauthenticated],
    );
    let outcome = fcm.deliver(&message("d3", "tok-2", now), &app).await;
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Permanent {
                status: Some(401),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(fake.token_fetches(), 3, "refreshed exactly once");
    assert_eq!(fake.messages_for("tok-2").len(), 2);
}

#[tokio::test]
async fn the_cached_token_is_replaced_before_it_expires_by_the_clock() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let fake = FakeFcm::builder()
        .clock(clock.clone())
        .expires_in(3599)
        .start()
        .await;
    let app = app(&fake);
    let fcm = channel(clock.clone());
    let send = |id: &str| message(id, "tok-1", clock.now());
    assert!(delivered(&fcm.deliver(&send("d1"), &app).await));
    clock.advance(time::Duration::minutes(58));
    assert!(delivered(&fcm.deliver(&send("d2"), &app).await));
    assert_eq!(fake.token_fetches(), 1, "still fresh after 58 minutes");
    clock.advance(time::Duration::seconds(60));
    assert!(delivered(&fcm.deliver(&send("d3"), &app).await));
    assert_eq!(
        fake.token_fetches(),
        2,
        "replaced a minute before it expires"
    );
    assert!(
        fake.rejections().is_empty(),
        "never sent with an expired one"
    );
}

#[tokio::test]
async fn a_refused_service_account_fails_permanently_and_is_not_asked_again_at_once() {
    let fake = FakeFcm::start().await;
    let mut app = app(&fake);
    app.fcm.as_mut().unwrap().service_account.client_email =
        "someone-else@example.iam.gserviceaccount.com".into();
    let fcm = channel(Arc::new(SystemClock));
    let now = OffsetDateTime::now_utc();
    for i in 0..3 {
        let outcome = fcm
            .deliver(&message(&format!("d{i}"), "tok-1", now), &app)
            .await;
        assert!(
            matches!(&outcome, DeliveryOutcome::Permanent { status: Some(400), reason } if reason.contains("invalid_grant")),
            "{outcome:?}"
        );
    }
    assert_eq!(
        fake.token_fetches(),
        1,
        "a refused credential is held for a moment"
    );
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn pyjwt_verifies_the_assertion() {
    let fake = FakeFcm::start().await;
    let app = app(&fake);
    let fcm = channel(Arc::new(SystemClock));
    assert!(delivered(
        &fcm.deliver(&message("d1", "tok-1", OffsetDateTime::now_utc()), &app)
            .await
    ));
    let assertion = fake.assertions().remove(0);
    let script = r#"
import json, sys, time, jwt
given = json.load(sys.stdin)
header = jwt.get_unverified_header(given["jwt"])
claims = jwt.decode(given["jwt"], given["public_key"], algorithms=["RS256"],
                    audience=given["token_uri"], issuer=given["iss"],
                    options={"require": ["iss", "aud", "iat", "exp", "scope"]})
assert 0 < claims["exp"] - claims["iat"] <= 3600, claims
assert abs(time.time() - claims["iat"]) < 600, claims
print(json.dumps({"alg": header["alg"], "kid": header["kid"], "iss": claims["iss"],
                  "aud": claims["aud"], "scope": claims["scope"]}))
"#;
    let input = json!({"jwt": assertion, "public_key": RSA_PUBLIC_PEM, "token_uri": fake.token_uri(), "iss": CLIENT_EMAIL});
    let out = herald_testkit::python::run(script, input.to_string().as_bytes());
    let verified: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        verified,
        json!({"alg": "RS256", "kid": PRIVATE_KEY_ID, "iss": CLIENT_EMAIL,
               "aud": fake.token_uri(), "scope": SCOPE})
    );
}
