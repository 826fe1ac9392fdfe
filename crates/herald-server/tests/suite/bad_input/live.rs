//! Live sessions: bad frames and oversized frames.

use futures_util::{SinkExt, StreamExt};
use herald_testkit::{PATIENCE, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::*;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(hub: &TestHub, user: &str) -> Socket {
    let token = hub.token(user).await;
    let mut request = format!("{}/v1/live", hub.base.replacen("http", "ws", 1))
        .into_client_request()
        .expect("ws url");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("live session connects");
    let hello = next_frame(&mut socket).await.expect("hello");
    assert_eq!(hello["type"], "hello", "{hello}");
    socket
}

/// The next text frame as JSON; `None` when the connection closes. Panics after PATIENCE.
async fn next_frame(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the server answers or closes")
        {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("frames are JSON"));
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn bad_live_frames_get_a_bad_frame_error_and_the_session_keeps_working() {
    let hub = TestHub::start().await;
    let mut socket = connect(&hub, "alice").await;
    let bad_frames: Vec<(&str, Message)> = vec![
        ("garbage text", Message::text("this is not json {{{")),
        (
            "an unknown frame type",
            Message::text(r#"{"type":"explode"}"#),
        ),
        ("a binary frame", Message::binary(vec![0u8, 159, 146, 150])),
        (
            "a frame without a type",
            Message::text(r#"{"positions":{}}"#),
        ),
        ("a JSON array", Message::text("[1,2,3]")),
        (
            "a ping with an unknown field",
            Message::text(r#"{"type":"ping","extra":1}"#),
        ),
        (
            "a resume with a negative position",
            Message::text(r#"{"type":"resume","positions":{"c1":-1}}"#),
        ),
        (
            "a read with a bad conversation id",
            Message::text(r#"{"type":"read","conversation_id":"c 1","position":1}"#),
        ),
        (
            "a state that does not exist",
            Message::text(r#"{"type":"state","state":"asleep"}"#),
        ),
        (
            "10,000-deep nested arrays",
            Message::text(String::from_utf8(nested(10_000, "[", "]")).expect("ascii")),
        ),
    ];
    let mut failures = vec![];
    for (what, frame) in bad_frames {
        socket.send(frame).await.expect("frame sent");
        match next_frame(&mut socket).await {
            Some(reply)
                if reply["type"] == "error"
                    && reply["code"] == "bad_frame"
                    && reply["message"].is_string() => {}
            Some(reply) => failures.push(format!(
                "  - {what}: expected an error frame with code bad_frame, got {reply}"
            )),
            None => {
                failures.push(format!("  - {what}: the server closed the session"));
                break;
            }
        }
        // The session keeps working.
        socket
            .send(Message::text(r#"{"type":"ping"}"#))
            .await
            .expect("ping sent");
        match next_frame(&mut socket).await {
            Some(reply) if reply == json!({"type": "pong"}) => {}
            other => {
                failures.push(format!(
                    "  - after {what}: a ping got {other:?} instead of a pong"
                ));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "bad live frames were not handled:\n{}",
        failures.join("\n")
    );
    // Still a working session: it gets live events.
    let (status, body) = hub
        .put(
            "/v1/conversations/c1/participants/alice",
            &hub.key,
            json!({"role": "visitor"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.events(message("e1", "c1", "still listening?")).await;
    loop {
        let frame = next_frame(&mut socket).await.expect("the session is open");
        if frame["type"] == "event" && frame["event"]["event_id"] == "e1" {
            break;
        }
    }
}

#[tokio::test]
async fn a_live_frame_over_the_size_limit_closes_the_connection_and_the_server_stays_up() {
    let hub = TestHub::start().await;
    let max = 64 * 1024;
    let mut socket = connect(&hub, "alice").await;
    let mut other = connect(&hub, "bob").await;
    let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(max + 1024));
    // The server may close while we are still writing; either way the connection must end.
    let _ = socket.send(Message::text(huge)).await;
    let mut closed = false;
    for _ in 0..10 {
        match next_frame(&mut socket).await {
            None => {
                closed = true;
                break;
            }
            // An error frame before the close is acceptable; a pong is not.
            Some(frame) => assert_ne!(
                frame["type"], "pong",
                "an oversized frame was processed: {frame}"
            ),
        }
    }
    assert!(
        closed,
        "the connection was not closed after a frame over max_frame_bytes"
    );

    // The server is fine: health, other sessions, new sessions.
    let (status, body) = hub.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    other
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .expect("ping sent");
    assert_eq!(next_frame(&mut other).await, Some(json!({"type": "pong"})));
    let mut again = hub.live("alice").await;
    again.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(again.next().await, json!({"type": "pong"}));
    // A frame just under the limit is not refused for its size.
    let under = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(max - 1024));
    again.send_text(&under).await;
    let reply = again
        .try_next(PATIENCE)
        .await
        .expect("a frame under the limit keeps the session open");
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "bad_frame", "{reply}");
}
