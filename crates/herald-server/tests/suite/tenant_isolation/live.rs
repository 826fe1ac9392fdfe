//! A live session in another tenant never receives the first tenant's events.

use herald_testkit::LiveClient;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn a_live_session_in_another_tenant_never_receives_the_first_tenants_events() {
    let hub = hub_with_operator().await;
    let b_key = create_tenant(&hub, "acme").await;
    // alice takes part in conv-a in both tenants, so both would be recipients if tenants mixed.
    ok(
        &hub,
        Method::PUT,
        "/v1/conversations/conv-a/participants/alice",
        &hub.key,
        Some(json!({"role": "visitor"})),
    )
    .await;
    ok(
        &hub,
        Method::PUT,
        "/v1/conversations/conv-a/participants/alice",
        &b_key,
        Some(json!({"role": "visitor"})),
    )
    .await;
    let mut a_alice = hub.live("alice").await;
    let mut b_alice =
        LiveClient::connect(&hub.base, &hub.token_with(&b_key, "alice").await, "").await;
    // A first frame releases live events on both sessions.
    for session in [&mut a_alice, &mut b_alice] {
        session.send_text(r#"{"type":"ping"}"#).await;
        assert_eq!(session.next_of("pong").await["type"], "pong");
    }

    hub.events(message("a-e1", "conv-a", "agent-a", A_TEXT))
        .await;
    let event = a_alice.next_of("event").await;
    assert_eq!(event["event"]["text"], A_TEXT, "{event}");
    assert_eq!(
        b_alice.try_next(QUIET).await,
        None,
        "B-alice received something from tenant A"
    );
    // And resuming A's conversation from B gives B's transcript only (its own joined event).
    b_alice.resume(json!({"conv-a": 0})).await;
    let mut frames = vec![];
    loop {
        let frame = b_alice.next().await;
        if frame["type"] == "caught_up" {
            break;
        }
        frames.push(frame);
    }
    assert!(
        !Value::Array(frames.clone()).to_string().contains(A_TEXT),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .all(|f| f["event"]["type"] != "message.created"),
        "{frames:?}"
    );
}
