//! The connection: the stream limit, a dead or stalled upstream, GOAWAY, TLS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_channels::apns::ApnsOptions;
use herald_engine::clock::SystemClock;
use herald_engine::delivery::Channel;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::fake_apns::{FakeApns, Reply};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sends_all_succeed_and_never_exceed_the_servers_two_streams() {
    let fake = FakeApns::builder().max_concurrent_streams(2).start().await;
    fake.set_latency(Duration::from_millis(50));
    let app = Arc::new(app(&fake.url()));
    let ch = channel();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (ch, app) = (ch.clone(), app.clone());
        sends.spawn(async move {
            ch.deliver(&message(&format!("d{i}"), &format!("cd{i:02}")), &app)
                .await
        });
    }
    while let Some(outcome) = sends.join_next().await {
        let outcome = outcome.unwrap();
        assert!(delivered(&outcome), "{outcome:?}");
    }
    assert_eq!(fake.requests().len(), 20);
    assert_eq!(fake.max_in_flight(), 2, "multiplexed, within the limit");
    assert_eq!(fake.connections(), 1);
    assert_eq!(
        fake.streams_opened(),
        20,
        "no stream over the limit (refused and sent again)"
    );
}

#[tokio::test]
async fn a_dead_upstream_fails_fast_as_retryable_and_a_restarted_one_is_used_again() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    assert!(delivered(&ch.deliver(&message("d1", "abcd"), &app).await));
    fake.stop().await;
    let started = Instant::now();
    let outcome = ch.deliver(&message("d2", "abcd"), &app).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Retryable { status: None, .. }),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "fails fast: {:?}",
        started.elapsed()
    );
    fake.restart().await;
    let outcome = ch.deliver(&message("d3", "abcd"), &app).await;
    assert!(delivered(&outcome), "{outcome:?}");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_stalled_request_times_out_as_retryable_and_the_connection_stays_usable() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel_with(
        Arc::new(SystemClock),
        ApnsOptions {
            request_timeout: Duration::from_millis(500),
            ..ApnsOptions::default()
        },
    );
    fake.script("abcd", vec![Reply::Stall]);
    let started = Instant::now();
    let outcome = ch.deliver(&message("d1", "abcd"), &app).await;
    assert!(
        matches!(&outcome, DeliveryOutcome::Retryable { reason, .. } if reason.contains("timed out")),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(delivered(&ch.deliver(&message("d2", "abcd"), &app).await));
    assert_eq!(fake.connections(), 1);
}

#[tokio::test]
async fn after_goaway_the_next_request_succeeds_on_a_new_connection() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    assert!(delivered(&ch.deliver(&message("d1", "abcd"), &app).await));

    // A GOAWAY between requests: the pool opens a new connection.
    fake.goaway_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(delivered(&ch.deliver(&message("d2", "abcd"), &app).await));

    // A GOAWAY with 503 Shutdown in answer to a request: retryable, then delivered.
    fake.script("abcd", vec![Reply::GoAway]);
    let outcome = ch.deliver(&message("d3", "abcd"), &app).await;
    assert!(
        matches!(&outcome, DeliveryOutcome::Retryable { status: Some(503), reason, .. } if reason.contains("Shutdown")),
        "{outcome:?}"
    );
    assert!(delivered(&ch.deliver(&message("d3", "abcd"), &app).await));
    let connections: Vec<u64> = fake.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [1, 2, 2, 3]);
}

#[tokio::test]
async fn over_tls_a_trusted_self_signed_certificate_works_and_an_untrusted_one_does_not() {
    let fake = FakeApns::builder().tls().start().await;
    assert!(fake.url().starts_with("https://"));
    let app = app(&fake.url());
    let trusting = channel_with(
        Arc::new(SystemClock),
        ApnsOptions {
            trusted_roots_pem: vec![fake.certificate_pem().unwrap().as_bytes().to_vec()],
            ..ApnsOptions::default()
        },
    );
    let outcome = trusting.deliver(&message("d1", "abcd"), &app).await;
    assert!(delivered(&outcome), "{outcome:?}");
    let outcome = channel().deliver(&message("d2", "abcd"), &app).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Retryable { status: None, .. }),
        "{outcome:?}"
    );
    assert_eq!(fake.requests().len(), 1);
}
