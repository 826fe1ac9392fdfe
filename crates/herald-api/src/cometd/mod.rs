//! The CometD front door (SPEC §2.6): Bayeux 1.0 at `/cometd` over long-polling (POST
//! `/cometd`, and `/cometd/handshake|connect|disconnect` as the JS client appends the message
//! type) and WebSocket (`GET /cometd`), on the same hub, cursor and transcript as `/v1/live`.
//! It plays the Genesys GMS chat role: a client is a user (its client token in
//! `ext.authentication.token`), subscribes to `/conversations/<id>` of conversations it takes
//! part in, publishes messages and reads into them, and goes to the background with
//! `/meta/disconnect` + `ext.transcriptPosition`; coming back, it first gets the transcript it
//! missed on `/_genesys`. A client that does not reconnect within `maxInterval` is gone and its
//! user away at once (fail open). Pushes, grace delays, unread counts and the "customer is not
//! online" notice (`rules.left_notice`) are the engine's, as for any live session.
//!
//! - [`bayeux`]: messages on the wire; [`handle`]: the meta channels and publishing;
//!   [`client`]: one client's subscriptions and waiting deliveries; [`genesys`]: the
//!   background-state contract.

mod bayeux;
mod client;
mod genesys;
mod handle;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::handle::{Cometd, Next};
use crate::state::AppState;

/// `[cometd]` of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CometdConfig {
    /// A client with no connect held for this long is gone (GMS: 10 s).
    pub max_interval_ms: u64,
    /// How long a `/meta/connect` is held when nothing is ready.
    pub timeout_ms: u64,
    /// Largest body or WebSocket message.
    pub max_body_bytes: usize,
    /// Most messages in one body or frame.
    pub max_messages: usize,
}

impl Default for CometdConfig {
    fn default() -> Self {
        Self {
            max_interval_ms: 10_000,
            timeout_ms: 25_000,
            max_body_bytes: 64 * 1024,
            max_messages: 100,
        }
    }
}

/// The front door's shared state.
pub struct Door {
    cometd: Cometd,
    reaper: OnceLock<()>,
}

pub type DoorState = Arc<Door>;

pub fn door(state: AppState) -> DoorState {
    let config = state.config.cometd.clone();
    Arc::new(Door {
        cometd: Cometd::new(state, config),
        reaper: OnceLock::new(),
    })
}

impl Door {
    /// Starts the task that expires silent clients, once, for as long as the door lives.
    fn reap_from_now_on(self: &Arc<Self>) {
        self.reaper.get_or_init(|| {
            let door: Weak<Door> = Arc::downgrade(self);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    let Some(door) = door.upgrade() else { return };
                    door.cometd.reap();
                }
            });
        });
    }

    /// Every reply of one body or frame, holding a connect in place (long-polling).
    async fn answer(&self, body: &[u8]) -> Vec<Value> {
        let messages = match bayeux::parse(body, self.cometd.config.max_messages) {
            Ok(messages) => messages,
            Err(why) => return vec![bayeux::malformed(&why)],
        };
        let mut out = vec![];
        for m in messages {
            match self.cometd.handle(m).await {
                Next::Reply(Value::Array(items)) => out.extend(items),
                Next::Reply(reply) => out.push(reply),
                Next::Hold(client, m) => out.extend(self.cometd.hold_connect(&client, &m).await),
            }
        }
        out
    }
}

fn bayeux_json(status: StatusCode, replies: Vec<Value>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        Json(replies),
    )
        .into_response()
}

/// Bayeux over long-polling: the messages of one POST, answered together.
#[utoipa::path(
    post, path = "/cometd", tag = "cometd",
    request_body(content = Object, description = "Bayeux 1.0 messages (an array, or one message). Also served at `/cometd/handshake`, `/cometd/connect` and `/cometd/disconnect`, where the JS client sends those meta messages. `GET /cometd` with a WebSocket upgrade is the websocket transport. Handshake with `ext.authentication.token` (a client token); channels `/conversations/{conversation_id}`, `/unread`, `/_genesys`."),
    responses(
        (status = 200, description = "The replies and deliveries, as an array of Bayeux messages (errors as unsuccessful replies with `code::message`)"),
        (status = 400, description = "The body is not Bayeux: one unsuccessful message says why"),
        (status = 413, description = "The body is over `cometd.max_body_bytes`"),
    )
)]
pub async fn long_poll(
    State(door): State<DoorState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    door.reap_from_now_on();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let why = bayeux::Malformed("the body could not be read (too large?)");
            return bayeux_json(status, vec![bayeux::malformed(&why)]);
        }
    };
    let replies = door.answer(&body).await;
    let malformed = replies.len() == 1
        && replies[0].get("channel").and_then(Value::as_str) == Some("/meta/unsuccessful");
    let status = if malformed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    bayeux_json(status, replies)
}

/// Bayeux over WebSocket: JSON arrays in text frames; a connect is held while other messages
/// keep flowing.
#[utoipa::path(
    get, path = "/cometd", tag = "cometd",
    responses((status = 101, description = "The websocket transport of the CometD front door"))
)]
pub async fn websocket(State(door): State<DoorState>, ws: WebSocketUpgrade) -> Response {
    door.reap_from_now_on();
    let max = door.cometd.config.max_body_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve_socket(door, socket))
}

/// A connect held over a WebSocket: the client, the message, and until when.
type Held = Option<(Arc<client::Client>, bayeux::Message, tokio::time::Instant)>;

async fn serve_socket(door: DoorState, socket: WebSocket) {
    let mut held: Held = None;
    serve_frames(&door, socket, &mut held).await;
    // The socket is gone with a connect held: from now on `maxInterval` counts.
    if let Some((client, _, _)) = held {
        client.end_connect();
    }
}

async fn serve_frames(door: &Door, mut socket: WebSocket, held: &mut Held) {
    let cometd = &door.cometd;
    loop {
        let wait = async {
            match &*held {
                Some((client, _, deadline)) => client.wait(*deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let text = match message {
                    WsMessage::Text(text) => text,
                    WsMessage::Close(_) => return,
                    _ => continue,
                };
                let messages = match bayeux::parse(text.as_bytes(), cometd.config.max_messages) {
                    Ok(messages) => messages,
                    Err(why) => {
                        if send(&mut socket, vec![bayeux::malformed(&why)]).await.is_err() { return }
                        continue;
                    }
                };
                let mut replies = vec![];
                for m in messages {
                    match cometd.handle(m).await {
                        Next::Reply(Value::Array(items)) => replies.extend(items),
                        Next::Reply(reply) => replies.push(reply),
                        Next::Hold(client, m) => {
                            // A newer connect replaces a held one, which is answered now.
                            if let Some((old, old_m, _)) = held.take() {
                                replies.extend(cometd.connect_now(&old, &old_m).await);
                                old.end_connect();
                            }
                            client.begin_connect();
                            let deadline = tokio::time::Instant::now() + Duration::from_millis(cometd.config.timeout_ms);
                            *held = Some((client, m, deadline));
                        }
                    }
                }
                if !replies.is_empty() && send(&mut socket, replies).await.is_err() { return }
            }
            woke = wait => {
                let (client, m, _) = held.take().expect("waiting only while a connect is held");
                let replies = cometd.answer_held(&client, &m, woke).await;
                client.end_connect();
                if send(&mut socket, replies).await.is_err() { return }
            }
        }
    }
}

async fn send(socket: &mut WebSocket, replies: Vec<Value>) -> Result<(), axum::Error> {
    let text = serde_json::to_string(&replies).expect("JSON values always serialise");
    socket.send(WsMessage::Text(text.into())).await
}
