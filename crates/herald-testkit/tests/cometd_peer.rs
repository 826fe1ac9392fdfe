//! The CometD peer's plumbing, without Herald: the driver loads the npm client, reports transport
//! failures, and speaks Bayeux (long-polling) to a server that denies the handshake and to a toy
//! server that delivers. These also pin down what the npm client puts on the wire.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::post;
use herald_testkit::peers::CometdClient;
use herald_testkit::peers::cometd::Transport;
use serde_json::{Value, json};

/// What the denying server saw: (request path, JSON body) per request.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// An HTTP server that answers every Bayeux request, on `/cometd` and its message-type suffixes,
/// with an unsuccessful handshake reply echoing the request's `id` (the client ignores replies
/// without it). axum rather than a hand-rolled reader: the npm client sends chunked bodies.
async fn denying_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/cometd", post(deny))
        .route("/cometd/", post(deny))
        .route("/cometd/{*kind}", post(deny))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cometd", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn deny(State(seen): State<Seen>, uri: Uri, Json(body): Json<Value>) -> Json<Value> {
    let id = body[0]["id"].clone();
    seen.lock().unwrap().push((uri.path().to_string(), body));
    Json(json!([{
        "channel": "/meta/handshake",
        "successful": false,
        "error": "403::denied",
        "id": id,
    }]))
}

#[tokio::test]
async fn a_denied_handshake_comes_back_with_the_servers_error() {
    let (url, seen) = denying_server().await;
    let mut client = CometdClient::start(&url, Transport::LongPolling).await;

    let reply = client
        .handshake(json!({"authentication": {"token": "not-a-jwt"}}))
        .await;

    assert_eq!(reply["successful"], false, "{reply}");
    assert_eq!(reply["error"], "403::denied", "{reply}");
    assert_eq!(reply["reply"]["channel"], "/meta/handshake", "{reply}");
    // The listener sees the same reply.
    let meta = client.next_meta("/meta/handshake").await;
    assert_eq!(meta["error"], "403::denied", "{meta}");

    // What the npm client put on the wire: the message type appended to the URL, the props'
    // `ext` as the message's `ext`, and a long-polling-only offer.
    let (path, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(path, "/cometd/handshake");
    let handshake = &body[0];
    assert_eq!(handshake["channel"], "/meta/handshake", "{body}");
    assert_eq!(handshake["version"], "1.0", "{body}");
    assert_eq!(
        handshake["ext"],
        json!({"authentication": {"token": "not-a-jwt"}}),
        "{body}"
    );
    assert_eq!(
        handshake["supportedConnectionTypes"],
        json!(["long-polling", "callback-polling"]),
        "{body}"
    );
    assert!(client.messages_so_far().is_empty());
    client.close().await;
}

#[tokio::test]
async fn nothing_listening_is_reported_as_a_failed_handshake() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    for transport in [Transport::LongPolling, Transport::WebSocket] {
        let url = format!("http://127.0.0.1:{port}/cometd");
        let mut client = CometdClient::start(&url, transport).await;
        let reply = client.handshake(Value::Null).await;
        assert_eq!(reply["successful"], false, "{transport:?}: {reply}");
        assert_eq!(reply["clientId"], Value::Null, "{transport:?}: {reply}");
        assert!(reply["error"].is_string(), "{transport:?}: {reply}");
        client.close().await;
    }
}

/// Just enough Bayeux for one long-polling session: a subscribe queues one delivery on the
/// subscribed channel and one on `/_genesys` (for the listener), which the next held
/// `/meta/connect` carries. Real semantics (timeouts, sessions) are Herald's job, not this.
async fn toy_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let queued: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new()
        .route("/cometd", post(toy))
        .route("/cometd/", post(toy))
        .route("/cometd/{*kind}", post(toy))
        .with_state((seen.clone(), queued));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cometd", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

type ToyState = (Seen, Arc<Mutex<Vec<Value>>>);

async fn toy(
    State((seen, queued)): State<ToyState>,
    uri: Uri,
    Json(body): Json<Value>,
) -> Json<Value> {
    seen.lock()
        .unwrap()
        .push((uri.path().to_string(), body.clone()));
    let mut replies = Vec::new();
    for message in body.as_array().unwrap() {
        let (id, channel) = (message["id"].clone(), message["channel"].as_str().unwrap());
        match channel {
            "/meta/handshake" => replies.push(json!({
                "id": id, "channel": channel, "successful": true, "version": "1.0",
                "clientId": "toy-client", "supportedConnectionTypes": ["long-polling"],
                "advice": {"reconnect": "retry", "interval": 0, "timeout": 300},
            })),
            "/meta/connect" => {
                // Hold all but the first connect (advice.timeout 0), as a real server would.
                if message["advice"]["timeout"] != 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                replies.append(&mut queued.lock().unwrap());
                replies.push(json!({"id": id, "channel": channel, "successful": true}));
            }
            "/meta/subscribe" => {
                let subscription = message["subscription"].clone();
                queued.lock().unwrap().extend([
                    json!({"channel": subscription, "data": {"hello": subscription}}),
                    json!({"channel": "/_genesys", "data": {"pushed": true}}),
                ]);
                replies.push(json!({"id": id, "channel": channel, "successful": true,
                    "subscription": subscription}));
            }
            _ => replies.push(json!({"id": id, "channel": channel, "successful": true})),
        }
    }
    Json(Value::Array(replies))
}

#[tokio::test]
async fn deliveries_reach_subscriptions_and_listeners() {
    let (url, seen) = toy_server().await;
    let mut client = CometdClient::start(&url, Transport::LongPolling).await;

    let handshake = client.handshake(Value::Null).await;
    assert_eq!(handshake["successful"], true, "{handshake}");
    assert_eq!(handshake["clientId"], "toy-client", "{handshake}");
    client.listen("/_genesys").await;
    let subscribed = client.subscribe("/conversations/c1").await;
    assert_eq!(subscribed["successful"], true, "{subscribed}");

    let message = client.next_message("/conversations/c1").await;
    assert_eq!(message["via"], "subscription", "{message}");
    assert_eq!(message["data"], json!({"hello": "/conversations/c1"}));
    let pushed = client.next_message("/_genesys").await;
    assert_eq!(pushed["via"], "listener", "{pushed}");
    assert_eq!(client.messages_so_far().len(), 2);

    let published = client.publish("/service/x", json!({"n": 1})).await;
    assert_eq!(published["successful"], true, "{published}");
    let unsubscribed = client.unsubscribe("/conversations/c1").await;
    assert_eq!(unsubscribed["successful"], true, "{unsubscribed}");
    let disconnected = client.disconnect(json!({"transcriptPosition": "4"})).await;
    assert_eq!(disconnected["successful"], true, "{disconnected}");

    let seen = seen.lock().unwrap().clone();
    let disconnect = seen
        .iter()
        .find(|(_, body)| body[0]["channel"] == "/meta/disconnect")
        .expect("a /meta/disconnect went out");
    assert_eq!(disconnect.0, "/cometd/disconnect");
    assert_eq!(disconnect.1[0]["ext"], json!({"transcriptPosition": "4"}));
    assert_eq!(disconnect.1[0]["clientId"], "toy-client");
    // With `appendMessageTypeToURL` (the default) the client adds `/` to the URL, then the
    // message type for handshake/connect/disconnect: everything else goes to `/cometd/`.
    let paths: Vec<&str> = seen.iter().map(|(path, _)| path.as_str()).collect();
    assert!(paths.contains(&"/cometd/connect"), "{paths:?}");
    assert!(paths.contains(&"/cometd/"), "{paths:?}");
    assert!(!paths.contains(&"/cometd"), "{paths:?}");
    client.close().await;
}
