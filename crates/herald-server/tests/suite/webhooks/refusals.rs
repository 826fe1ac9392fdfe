//! Loopback URLs without the allow list, redirects not followed, 410 asking to be disabled.

use herald_testkit::capture::CaptureServer;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn without_the_allow_list_loopback_urls_fail_permanently_and_nothing_is_connected() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let urls = [
        ("literal", format!("http://127.0.0.1:{port}/hook")),
        ("name", format!("http://localhost:{port}/hook")),
        ("decimal", format!("http://2130706433:{port}/hook")),
    ];
    let webhooks: Vec<Value> = urls
        .iter()
        .map(|(id, url)| endpoint(id, url, ALL_EVENTS))
        .collect();
    let mut s = Story::new(false, Value::Array(webhooks), json!({})).await;
    s.say("Hello").await;
    let notification = s.latest("new_message").await;
    for (id, _) in &urls {
        let d = s.finished(&notification, id).await;
        assert_eq!(d["status"], "failed", "{id}: {d:#}");
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "never retried: {d:#}");
        let reason = attempts[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("forbidden address") && reason.contains("allow_cidrs"),
            "{id}: {reason}"
        );
        assert!(attempts[0].get("status").is_none(), "{id}: no HTTP status");
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a connection was attempted: {other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_410_asks_to_be_disabled() {
    let receiver = CaptureServer::start().await;
    let elsewhere = format!("{}/elsewhere", receiver.url);
    receiver.respond(302, &[("location", elsewhere.as_str())]);
    receiver.respond(410, &[]);
    let mut s = Story::new(
        true,
        json!([endpoint(
            "hooks",
            &format!("{}/hooks", receiver.url),
            ALL_EVENTS
        )]),
        json!({"rules": {"grace_delay_ms": 0, "coalesce_window_ms": 0}}),
    )
    .await;
    s.say("one").await;
    let redirected = s.latest("new_message").await;
    let d = s.finished(&redirected, "hooks").await;
    assert_eq!(d["status"], "failed", "{d:#}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(d["attempts"][0]["status"], 302);
    assert!(
        d["attempts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not followed")
    );
    let requests = receiver.captured();
    assert_eq!(requests.len(), 1, "the Location was not requested");
    assert_eq!(requests[0].path, "/hooks");

    s.clock.advance(time::Duration::seconds(1));
    s.say("two").await;
    let gone = s.latest("new_message").await;
    assert_ne!(gone["id"], redirected["id"]);
    let d = s.finished(&gone, "hooks").await;
    assert_eq!(d["status"], "invalid_target", "{d:#}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "not retried");
    let reason = d["attempts"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("410") && reason.contains("disabled"),
        "{d:#}"
    );
    // The endpoint is now disabled: visible to the operator, and nothing more is sent to it.
    let (_, health) = s.hub.get("/v1/apps/chat/endpoints", &s.hub.key).await;
    assert!(
        health
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["disabled_at"].is_string()),
        "{health}"
    );
    s.clock.advance(time::Duration::seconds(1));
    s.say("three").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.captured().len(), 2);
}
