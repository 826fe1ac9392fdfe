//! The push-proxy role: metadata only, signed with `X-hmac`, and the preset's failure policy.

use std::collections::BTreeSet;

use herald_testkit::capture::Captured;
use herald_testkit::python;
use serde_json::json;

use super::*;

/// Python's `hmac` judges `X-hmac` of a push-proxy call: `valid` or `invalid`.
fn python_judges(secret: &str, call: &Captured) -> String {
    let input = json!({
        "secret": secret,
        "body": String::from_utf8(call.body.to_vec()).unwrap(),
        "signature": call.header("x-hmac").unwrap_or_default(),
    });
    let script = r#"
import hashlib, hmac, json, sys
d = json.load(sys.stdin)
body = json.loads(d["body"])
expected = hmac.new(d["secret"].encode(), (body["eventId"] + body["sessionId"]).encode(), hashlib.sha256).hexdigest()
print("valid" if hmac.compare_digest(expected, d["signature"]) else "invalid")
"#;
    python::run(script, input.to_string().as_bytes())
        .trim()
        .to_string()
}

const PROXY_SECRET: &str = "proxy-shared-secret-91c2";

#[tokio::test]
async fn push_proxy_role_metadata_only_signed_never_retried_backs_off_after_503s_but_not_400_or_500()
 {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 0, "coalesce_window_ms": 0},
        "content": {"mode": "metadata_only"},
        "delivery": {"retry": false, "breaker_statuses": [429, 502, 503, 504], "breaker_failures": 2, "breaker_cool_down_ms": 30_000},
        "connector": {"preset": "push_proxy", "hmac_secret": PROXY_SECRET},
    }))
    .await;
    s.device(SESSION).await;

    // Metadata only, signed.
    let (event_id, _) = s
        .say_as("Ann Secretname", "Your card ending 4242 was charged")
        .await;
    let call = &s.exactly(1).await[0];
    let body = call.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "conversationId",
            "customerId",
            "eventDate",
            "eventId",
            "sessionId"
        ]
    );
    assert_eq!(body["eventId"], event_id.as_str());
    assert_eq!(body["conversationId"], "c1");
    assert_eq!(body["customerId"], "visitor-1");
    assert_eq!(body["sessionId"], SESSION);
    time::OffsetDateTime::parse(
        body["eventDate"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("eventDate is RFC 3339");
    let mut everything = String::from_utf8(call.body.to_vec()).unwrap();
    for (name, value) in &call.headers {
        everything.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or("")));
    }
    for text in ["4242", "card", "charged", "Secretname", "Ann"] {
        assert!(
            !everything.contains(text),
            "`{text}` leaked into the call:\n{everything}"
        );
    }
    let signature = call.header("x-hmac").unwrap();
    assert!(
        signature.len() == 64
            && signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "lowercase hex: {signature}"
    );
    assert_eq!(python_judges(PROXY_SECRET, call), "valid");
    assert_eq!(python_judges("another-secret", call), "invalid");

    // The client fetches the content with the ids it got.
    let client = s.hub.token("visitor-1").await;
    let cid = body["conversationId"].as_str().unwrap();
    let (status, page) = s
        .hub
        .get(
            &format!("/v1/me/conversations/{cid}/events?after=0"),
            &client,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let event = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == body["eventId"])
        .unwrap_or_else(|| panic!("the event is in the transcript: {page:#}"));
    assert_eq!(event["text"], "Your card ending 4242 was charged");

    // 400 and 500: failed at once, never retried, and they never pause the calls.
    let mut seen = 1;
    for status in [400, 500] {
        s.receiver.set_default(status);
        for _ in 0..3 {
            let (_, position) = s.say("failing").await;
            seen += 1;
            s.exactly(seen).await;
            let id = s.notification_at(position).await;
            let delivery = s.settled_delivery(&id).await;
            assert_eq!(delivery["status"], "failed", "{delivery:#}");
            assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
            assert_eq!(delivery["attempts"][0]["status"], status);
        }
    }
    s.advance(600_000);
    s.exactly(seen).await;

    // Continuous 503s: after `breaker_failures` of them the calls pause for the cool-down.
    s.receiver.set_default(503);
    for _ in 0..2 {
        let (_, position) = s.say("unavailable").await;
        seen += 1;
        s.exactly(seen).await;
        let id = s.notification_at(position).await;
        let delivery = s.settled_delivery(&id).await;
        assert_eq!(
            delivery["attempts"].as_array().unwrap().len(),
            1,
            "never retried"
        );
    }
    let mut waiting = vec![];
    for _ in 0..2 {
        let (event_id, position) = s.say("while paused").await;
        let id = s.notification_at(position).await;
        let delivery = s
            .delivery_when(&id, "held back by the open circuit", |d| {
                d["status"] == "pending"
                    && d["note"]
                        .as_str()
                        .is_some_and(|n| n.contains("circuit open"))
            })
            .await;
        assert!(delivery["attempts"].as_array().unwrap().is_empty());
        waiting.push((event_id, id));
    }
    s.advance(29_000);
    s.exactly(seen).await;

    // After the cool-down they resume: the held-back pushes go, then new ones at once.
    s.receiver.set_default(200);
    s.advance(1_001);
    s.receiver.wait_for(seen + 1).await;
    // One probe goes first; a delivery that asked while it was out waits a moment (of the
    // manual clock) before it follows.
    s.advance(1_000);
    seen += 2;
    let calls = s.exactly(seen).await;
    let resumed: BTreeSet<_> = calls[seen - 2..]
        .iter()
        .map(|c| c.json()["eventId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        resumed,
        waiting
            .iter()
            .map(|(e, _)| e.clone())
            .collect::<BTreeSet<_>>()
    );
    for (_, id) in &waiting {
        let delivery = s.settled_delivery(id).await;
        assert_eq!(delivery["status"], "delivered", "{delivery:#}");
    }
    let (event_id, _) = s.say("back to normal").await;
    seen += 1;
    let calls = s.exactly(seen).await;
    assert_eq!(calls[seen - 1].json()["eventId"], event_id.as_str());
    assert_eq!(python_judges(PROXY_SECRET, &calls[seen - 1]), "valid");
}

/// The agent pushes a URL (`notice.push_url`) to the away visitor: the proxy is called with
/// the notice's own `eventId`, whatever message came before it, and the event the client
/// fetches with that id is the notice with its URL.
#[tokio::test]
async fn a_url_pushed_to_an_away_customer_reaches_the_proxy_with_the_notices_own_event_id() {
    let mut s = Story::new(json!({
        "rules": {"grace_delay_ms": 5000, "coalesce_window_ms": 3000},
        "connector": {"preset": "push_proxy", "hmac_secret": PROXY_SECRET},
    }))
    .await;
    s.device(SESSION).await;
    let push_url = |id: &str, url: &str| {
        json!({"event_id": id, "conversation_id": "c1", "type": "notice.push_url", "occurred_at": "2026-11-23T10:00:00Z",
            "actor": {"id": "agent-7", "role": "agent", "name": "Ann"}, "url": url})
    };

    // A URL alone: nothing is unread, yet after the grace delay the proxy hears of it.
    s.hub
        .events(push_url("u1", "https://shop.example/track/1"))
        .await;
    s.settle().await;
    s.advance(5_000);
    let first = s.exactly(1).await[0].json();
    assert_eq!(first["eventId"], "u1");

    // A message, then a URL inside the coalesce window: one call, for the URL.
    s.say("Your parcel is on its way").await;
    s.hub
        .events(push_url("u2", "https://shop.example/track/2"))
        .await;
    s.settle().await;
    s.advance(3_000);
    let calls = s.exactly(2).await;
    assert_eq!(
        calls[1].json()["eventId"],
        "u2",
        "not the message before it"
    );
    assert_eq!(python_judges(PROXY_SECRET, &calls[1]), "valid");

    let decisions = s.decisions().await;
    let sent = decisions
        .iter()
        .find(|d| d["push"]["event_id"] == "u2")
        .unwrap_or_else(|| panic!("a push for u2: {decisions:#?}"));
    assert_eq!(sent["push"]["kind"], "notice");
    assert_eq!(sent["push"]["data"]["url"], "https://shop.example/track/2");
    assert_eq!(sent["push"]["message_count"], 2, "it stands for both");

    let client = s.hub.token("visitor-1").await;
    let (_, page) = s
        .hub
        .get("/v1/me/conversations/c1/events?after=0", &client)
        .await;
    let fetched = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == "u2")
        .unwrap_or_else(|| panic!("the event is in the transcript: {page:#}"));
    assert_eq!(fetched["type"], "notice.push_url");
    assert_eq!(fetched["url"], "https://shop.example/track/2");
}

#[tokio::test]
async fn the_push_proxy_preset_brings_its_failure_policy_unless_the_app_overrides_it() {
    let hub = herald_testkit::TestHub::start().await;
    let connector = serde_json::json!({"callback_url": "https://proxy.example.com/cb", "preset": "push_proxy", "hmac_secret": "s3cret"});
    let (status, app) = hub
        .put(
            "/v1/apps/proxy",
            &hub.key,
            serde_json::json!({"connector": connector}),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["delivery"]["retry"], false);
    let statuses: Vec<u64> = app["delivery"]["breaker_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert!(
        !statuses.contains(&400) && !statuses.contains(&500),
        "{statuses:?}"
    );
    let (_, own) = hub
        .put(
            "/v1/apps/own",
            &hub.key,
            serde_json::json!({"connector": connector, "delivery": {"retry": true}}),
        )
        .await;
    assert_eq!(own["delivery"]["retry"], true, "the app's own choice wins");
    let (_, sdk) = hub
        .put(
            "/v1/apps/sdk",
            &hub.key,
            serde_json::json!({"connector": {"callback_url": "https://b.example.com/cb"}}),
        )
        .await;
    assert_eq!(
        sdk["delivery"]["retry"], true,
        "other presets keep the defaults"
    );
}
