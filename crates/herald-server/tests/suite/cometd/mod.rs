//! The CometD front door driven by the real npm `cometd` client (`cometd-nodejs-client`):
//! the GMS background-state story end to end, over long-polling and WebSocket, and the
//! protocol edges a client can hit (unknown client, bad token, a foreign conversation,
//! malformed bodies).

mod push;

use herald_testkit::TestHub;
use herald_testkit::peers::CometdClient;
use herald_testkit::peers::cometd::Transport;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn hub() -> TestHub {
    let hub = TestHub::start().await;
    hub.join("c1", "visitor-1", "visitor").await;
    hub.join("c1", "agent-7", "agent").await;
    hub.join("c2", "agent-7", "agent").await;
    hub
}

async fn agent_says(hub: &TestHub, id: &str, text: &str) -> u64 {
    let event = json!({"event_id": id, "conversation_id": "c1", "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": text});
    hub.events(event).await["position"].as_u64().unwrap()
}

async fn client(hub: &TestHub, transport: Transport) -> CometdClient {
    let mut client = CometdClient::start(&hub.url("/cometd"), transport).await;
    let token = hub.token("visitor-1").await;
    let reply = client
        .handshake(json!({"authentication": {"token": token}}))
        .await;
    assert_eq!(reply["successful"], true, "{reply}");
    client
}

async fn background_story(transport: Transport) {
    let hub = hub().await;
    let mut visitor = client(&hub, transport).await;
    let reply = visitor.subscribe("/conversations/c1").await;
    assert_eq!(reply["successful"], true, "{reply}");
    let first = agent_says(&hub, "m1", "Hello").await;
    let delivery = visitor.next_message("/conversations/c1").await;
    assert_eq!(delivery["data"]["event"]["text"], "Hello", "{delivery}");
    assert_eq!(delivery["data"]["position"], first);

    let reply = visitor
        .publish(
            "/conversations/c1",
            json!({"type": "message.created", "text": "Hi Ann"}),
        )
        .await;
    assert_eq!(reply["successful"], true, "{reply}");
    let (_, transcript) = hub.get("/v1/conversations/c1/events", &hub.key).await;
    let texts: Vec<&str> = transcript["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(texts.contains(&"Hi Ann"), "{transcript}");

    // To the background with the position it has seen; the agent writes twice meanwhile.
    let seen = visitor.next_message("/conversations/c1").await["data"]["position"]
        .as_u64()
        .unwrap();
    let reply = visitor
        .disconnect(json!({"transcriptPosition": seen.to_string()}))
        .await;
    assert_eq!(reply["successful"], true, "{reply}");
    let (_, presence) = hub.get("/v1/users/visitor-1/presence", &hub.key).await;
    assert_eq!(presence["state"], "away", "{presence}");
    agent_says(&hub, "m2", "Are you there?").await;
    let last = agent_says(&hub, "m3", "Your order shipped").await;

    // Back: a new session first gets the transcript it missed on /_genesys, then live events.
    let mut back = client(&hub, transport).await;
    assert_eq!(
        back.subscribe("/conversations/c1").await["successful"],
        true
    );
    assert_eq!(back.subscribe("/_genesys").await["successful"], true);
    let genesys = back.next_message("/_genesys").await;
    let message = &genesys["data"]["message"];
    assert_eq!(message["chatIxnState"], "TRANSCRIPT", "{genesys}");
    assert_eq!(message["transcriptPosition"], last.to_string());
    let rows: Vec<&str> = message["transcriptToShow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[2].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        vec!["Are you there?", "Your order shipped"],
        "{genesys}"
    );
    assert_eq!(
        message["transcriptToShow"][0],
        json!([
            "Message.Text",
            "Ann",
            "Are you there?",
            (last - 1).to_string(),
            "AGENT"
        ])
    );
    let next = agent_says(&hub, "m4", "Welcome back").await;
    let delivery = back.next_message("/conversations/c1").await;
    assert_eq!(
        delivery["data"]["position"], next,
        "no gap and no duplicate after the catch-up: {delivery}"
    );

    // Reading everything through CometD clears the unread count.
    let (_, unread) = hub.get("/v1/users/visitor-1/unread", &hub.key).await;
    assert_eq!(unread["total"], 4, "the agent's four messages: {unread}");
    let reply = back
        .publish(
            "/conversations/c1",
            json!({"type": "message.read", "position": next}),
        )
        .await;
    assert_eq!(reply["successful"], true, "{reply}");
    let (_, unread) = hub.get("/v1/users/visitor-1/unread", &hub.key).await;
    assert_eq!(unread["total"], 0, "{unread}");
}

#[tokio::test]
async fn a_gms_client_goes_to_the_background_and_comes_back_to_exactly_what_it_missed_long_polling()
{
    background_story(Transport::LongPolling).await;
}

#[tokio::test]
async fn a_gms_client_goes_to_the_background_and_comes_back_to_exactly_what_it_missed_websocket() {
    background_story(Transport::WebSocket).await;
}

#[tokio::test]
async fn a_client_cannot_subscribe_or_publish_to_a_conversation_it_is_not_part_of() {
    let hub = hub().await;
    let mut visitor = client(&hub, Transport::LongPolling).await;
    let reply = visitor.subscribe("/conversations/c2").await;
    assert_eq!(reply["successful"], false, "{reply}");
    let reply = visitor
        .publish(
            "/conversations/c2",
            json!({"type": "message.created", "text": "x"}),
        )
        .await;
    assert_eq!(reply["successful"], false, "{reply}");
    let (_, transcript) = hub.get("/v1/conversations/c2/events", &hub.key).await;
    assert!(
        transcript["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["text"] != "x")
    );
}

#[tokio::test]
async fn a_bad_token_is_refused_without_a_session() {
    let hub = hub().await;
    let mut stranger = CometdClient::start(&hub.url("/cometd"), Transport::LongPolling).await;
    let reply = stranger
        .handshake(json!({"authentication": {"token": "not-a-jwt"}}))
        .await;
    assert_eq!(reply["successful"], false, "{reply}");
    let (_, presence) = hub.get("/v1/users/visitor-1/presence", &hub.key).await;
    assert_eq!(presence["sessions"], 0, "{presence}");
}

async fn post(hub: &TestHub, body: Value) -> (StatusCode, Value) {
    hub.call(Method::POST, "/cometd", None, Some(body)).await
}

/// A long-polling handshake by hand, as `visitor-1`: the client id.
async fn raw_handshake(hub: &TestHub) -> String {
    let token = hub.token("visitor-1").await;
    let (_, body) = post(
        hub,
        json!([{"channel": "/meta/handshake", "id": "1", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"], "ext": {"authentication": {"token": token}}}]),
    )
    .await;
    body[0]["clientId"].as_str().unwrap().to_string()
}

async fn wait_until_away(hub: &TestHub) {
    let deadline = tokio::time::Instant::now() + herald_testkit::PATIENCE;
    loop {
        let (_, presence) = hub.get("/v1/users/visitor-1/presence", &hub.key).await;
        if presence["state"] == "away" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {presence}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn unknown_clients_are_told_to_handshake_and_malformed_bodies_change_nothing() {
    let hub = hub().await;
    let (status, body) = post(&hub, json!([{"channel": "/meta/connect", "clientId": "nope", "id": "5", "connectionType": "long-polling"}])).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["successful"], false);
    assert_eq!(body[0]["id"], "5");
    assert!(
        body[0]["error"].as_str().unwrap().starts_with("402:"),
        "{body}"
    );
    assert_eq!(body[0]["advice"]["reconnect"], "handshake");
    let (status, _) = hub
        .call_raw(
            Method::POST,
            "/cometd",
            None,
            "application/json",
            b"{oops".to_vec(),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = hub
        .call_raw(
            Method::POST,
            "/cometd",
            None,
            "application/json",
            vec![b' '; 200 * 1024],
        )
        .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_client_that_never_reconnects_is_gone_after_max_interval_and_its_user_away() {
    let hub = TestHub::builder()
        .configure(|c| c.cometd.max_interval_ms = 1_000)
        .start()
        .await;
    hub.join("c1", "visitor-1", "visitor").await;
    let client_id = raw_handshake(&hub).await;
    let (_, presence) = hub.get("/v1/users/visitor-1/presence", &hub.key).await;
    assert_eq!(presence["state"], "foreground", "{presence}");
    wait_until_away(&hub).await;
    let (_, body) = post(&hub, json!([{"channel": "/meta/connect", "clientId": client_id, "id": "2", "connectionType": "long-polling"}])).await;
    assert!(
        body[0]["error"].as_str().unwrap().starts_with("402:"),
        "{body}"
    );
}

#[tokio::test]
async fn a_client_that_drops_its_held_connect_is_still_gone_after_max_interval() {
    let hub = TestHub::builder()
        .configure(|c| c.cometd.max_interval_ms = 1_000)
        .start()
        .await;
    hub.join("c1", "visitor-1", "visitor").await;
    let client_id = raw_handshake(&hub).await;
    // A held connect whose HTTP client gives up (the app was killed mid-poll).
    let gone = hub
        .http
        .post(hub.url("/cometd/connect"))
        .timeout(std::time::Duration::from_millis(300))
        .json(&json!([{"channel": "/meta/connect", "clientId": client_id, "id": "2", "connectionType": "long-polling"}]))
        .send()
        .await;
    assert!(gone.is_err(), "the connect was held");
    wait_until_away(&hub).await;
}
