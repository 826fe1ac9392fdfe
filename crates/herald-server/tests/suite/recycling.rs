//! Providers recycle HTTP/2 connections (a GOAWAY after so many requests, then a graceful
//! close): through a hub, a proactive notification to a user with 300 devices goes through a
//! recycler (`herald_testkit::recycler`) that closes each connection after 5 requests —
//! refusing with `REFUSED_STREAM` what still arrives on it — in front of the fake FCM and the
//! fake APNs. Every push arrives exactly once, every delivery ends delivered, no attempt fails
//! on a transport error (a request refused unprocessed is sent again; at worst an attempt is
//! `unsent`) and the endpoint's circuit never opens: a recycled connection is not the
//! endpoint's failure. (Every 5 rather than every 1,000 requests, so one run recycles about
//! sixty connections with requests in flight.)

use std::collections::HashMap;
use std::time::Duration;

use herald_testkit::fake_apns::{FakeApns, KEY_ID, TEAM_ID};
use herald_testkit::fake_fcm::FakeFcm;
use herald_testkit::keys::EC_PRIVATE_PEM;
use herald_testkit::recycler::Recycler;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};

const DEVICES: usize = 300;
const RECYCLE_EVERY: u64 = 5;
const TOPIC: &str = "com.example.chat";

/// A sensitive breaker (one counted failure opens it) that recovers quickly, so a failure shows
/// in the outcome instead of in a timeout.
fn delivery_policy() -> Value {
    json!({"breaker_failures": 1, "breaker_cool_down_ms": 100,
           "retry_base_delay_ms": 50, "retry_max_delay_ms": 200})
}

/// Registers `tokens` as `alice`'s devices on `channel` (`platform`), sends her one proactive
/// notification and waits until all its deliveries are settled; answers them.
async fn push_to_all(
    hub: &TestHub,
    channel: &str,
    platform: &str,
    tokens: &[String],
) -> Vec<Value> {
    let alice = hub.token("alice").await;
    for token in tokens {
        let device =
            json!({"app_id": "chat", "channel": channel, "token": token, "platform": platform});
        let (status, body) = hub.post("/v1/me/devices", &alice, device).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = hub
        .post(
            "/v1/notifications",
            &hub.key,
            json!({"app_id": "chat", "user_ids": ["alice"], "title": "Maintenance", "body": "Tonight at ten"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["notifications"][0]["notification_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        let (status, body) = hub.get(&format!("/v1/notifications/{id}"), &hub.key).await;
        assert_eq!(status, 200, "{body}");
        let deliveries = body["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.len() == tokens.len() && deliveries.iter().all(|d| d["status"] != "pending") {
            return deliveries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deliveries never settled: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every delivery delivered, and no attempt failed in a way held against the endpoint.
fn assert_all_delivered(deliveries: &[Value]) {
    for d in deliveries {
        assert_eq!(d["status"], "delivered", "{d:#}");
        for attempt in d["attempts"].as_array().unwrap() {
            assert!(
                attempt["outcome"] == "delivered" || attempt["outcome"] == "unsent",
                "an attempt failed on a recycled connection: {d:#}"
            );
        }
    }
}

/// The app's endpoints: closed circuits, no failures counted, and no circuit ever opened.
async fn assert_circuit_never_opened(hub: &TestHub) {
    let (status, health) = hub.get("/v1/apps/chat/endpoints", &hub.key).await;
    assert_eq!(status, 200, "{health}");
    let endpoints = health.as_array().unwrap();
    assert!(!endpoints.is_empty(), "{health}");
    for endpoint in endpoints {
        assert_eq!(endpoint["circuit"], "closed", "{health}");
        assert_eq!(endpoint["consecutive_failures"], 0, "{health}");
        assert!(endpoint["failing_since"].is_null(), "{health}");
    }
    let metrics = hub.http.get(hub.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let opened: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("herald_circuit_open_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(opened, 0.0, "the circuit opened: {metrics}");
}

/// How often each value occurs more than once.
fn duplicates(values: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for v in values {
        *seen.entry(v).or_default() += 1;
    }
    seen.retain(|_, n| *n > 1);
    seen
}

#[tokio::test]
async fn fcm_pushes_through_a_front_end_that_recycles_connections_arrive_once_and_never_open_the_circuit()
 {
    let fake = FakeFcm::start().await;
    let recycler = Recycler::start(&fake.url(), RECYCLE_EVERY).await;
    let hub = TestHub::builder().start().await;
    let app = json!({
        "rules": {"grace_delay_ms": 0},
        "delivery": delivery_policy(),
        "fcm": {"service_account": fake.service_account(), "base_url": recycler.url()}
    });
    let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 201, "{body}");
    let tokens: Vec<String> = (0..DEVICES).map(|i| format!("fcm-tok-{i:03}")).collect();

    let deliveries = push_to_all(&hub, "fcm", "android", &tokens).await;

    assert_all_delivered(&deliveries);
    let messages = fake.messages();
    assert!(messages.iter().all(|m| m.status == 200));
    let dups = duplicates(messages.iter().map(|m| m.token.clone()));
    assert!(dups.is_empty(), "pushes sent twice: {dups:?}");
    assert_eq!(messages.len(), DEVICES, "every device got its push");
    assert_circuit_never_opened(&hub).await;
    assert!(
        recycler.connections() > 1 && recycler.recycled() > 0,
        "the recycler recycled connections: {} accepted, {} recycled, {} streams refused",
        recycler.connections(),
        recycler.recycled(),
        recycler.refused()
    );
}

#[tokio::test]
async fn apns_pushes_through_a_front_end_that_recycles_connections_arrive_once_and_never_open_the_circuit()
 {
    let fake = FakeApns::builder().topic(TOPIC).start().await;
    let recycler = Recycler::start(&fake.url(), RECYCLE_EVERY).await;
    let hub = TestHub::builder().start().await;
    let app = json!({
        "rules": {"grace_delay_ms": 0},
        "delivery": delivery_policy(),
        "apns": {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": EC_PRIVATE_PEM,
                 "topic": TOPIC, "base_url": recycler.url()}
    });
    let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 201, "{body}");
    let tokens: Vec<String> = (0..DEVICES).map(|i| format!("{i:064x}")).collect();

    let deliveries = push_to_all(&hub, "apns", "ios", &tokens).await;

    assert_all_delivered(&deliveries);
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.status == 200));
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    let dups = duplicates(
        requests
            .iter()
            .map(|r| r.header("apns-id").unwrap_or_default().to_string()),
    );
    assert!(dups.is_empty(), "pushes sent twice (apns-id): {dups:?}");
    let dups = duplicates(requests.iter().map(|r| r.token.clone()));
    assert!(
        dups.is_empty(),
        "pushes sent twice (device token): {dups:?}"
    );
    assert_eq!(requests.len(), DEVICES, "every device got its push");
    assert_circuit_never_opened(&hub).await;
    assert!(
        recycler.connections() > 1 && recycler.recycled() > 0,
        "the recycler recycled connections: {} accepted, {} recycled, {} streams refused",
        recycler.connections(),
        recycler.recycled(),
        recycler.refused()
    );
}
