//! One task per WebSocket connection: socket I/O, heartbeats, frame parsing, presence.
//!
//! Ordering (no gap, no duplicate) is the transport-neutral [`Cursor`]'s: the session
//! registers with the hub before it reads any catch-up, hands the cursor every `resume` and
//! every live item, and sends what it emits as frames. Live items wait in the cursor until
//! the client's first frame.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use herald_engine::ids::{ConversationId, EventId, TenantId, UserId};
use herald_engine::store::StoreError;
use tokio::time::{Instant, MissedTickBehavior};

use crate::state::AppState;
use herald_runtime::live::cursor::{Cursor, Gone, Item, Reader, Sink, Stopped};
use herald_runtime::live::hub::Outbound;
use herald_runtime::live::presence::Ending;
use herald_runtime::live::protocol::{self, ClientFrame, SessionState};

/// Why the loop ended.
enum Exit {
    Ending(Ending),
    ShuttingDown,
}

struct Session {
    state: AppState,
    tenant: TenantId,
    user: UserId,
    socket: WebSocket,
    cursor: Cursor,
}

pub async fn run(
    state: AppState,
    socket: WebSocket,
    tenant: TenantId,
    user: UserId,
    initial: SessionState,
) {
    let mut registration = state.hub.register(&tenant, &user, initial);
    let session_id = registration.session_id;
    let mut session = Session {
        state: state.clone(),
        tenant,
        user,
        socket,
        cursor: Cursor::new(),
    };
    let exit = match Box::pin(session.greet(session_id)).await {
        Ok(()) => session.serve(session_id, &mut registration).await,
        Err(()) => Exit::Ending(Ending::Dropped),
    };
    let ending = match exit {
        Exit::Ending(ending) => ending,
        Exit::ShuttingDown => {
            let frame = CloseFrame {
                code: 1001,
                reason: Utf8Bytes::from_static("server shutting down"),
            };
            let _ = Box::pin(session.socket.send(Message::Close(Some(frame)))).await;
            Ending::Dropped
        }
    };
    state
        .hub
        .unregister(&session.tenant, &session.user, session_id, ending);
}

impl Session {
    /// The hello frame, then any request to resubscribe.
    async fn greet(&mut self, session_id: u64) -> Result<(), ()> {
        let heartbeat_ms = self.state.config.live.heartbeat_ms;
        self.send(protocol::hello(&session_id.to_string(), heartbeat_ms))
            .await?;
        self.ask_to_resubscribe().await
    }

    /// Idle, a session is this loop waiting in its `select!`. The task holding it is sized for
    /// its largest state, and an idle process holds thousands of them, so every handler that
    /// awaits the store or the socket runs boxed: its state exists only while it runs (this
    /// took the task from ~7.7 KB to under 2 KB per session).
    async fn serve(
        &mut self,
        session_id: u64,
        registration: &mut herald_runtime::live::hub::Registration,
    ) -> Exit {
        let heartbeat = Duration::from_millis(self.state.config.live.heartbeat_ms);
        let dead_after = Duration::from_millis(self.state.config.live.dead_after_ms);
        let mut pings = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                incoming = self.socket.recv() => {
                    let Some(Ok(message)) = incoming else { return Exit::Ending(Ending::Dropped) };
                    last_heard = Instant::now();
                    match message {
                        Message::Text(text) => {
                            if Box::pin(self.on_client_text(session_id, &text)).await.is_err() {
                                return Exit::Ending(Ending::Dropped);
                            }
                        }
                        Message::Binary(_) => {
                            let refusal = protocol::error("bad_frame", "frames are JSON text");
                            if Box::pin(self.send(refusal)).await.is_err() {
                                return Exit::Ending(Ending::Dropped);
                            }
                        }
                        Message::Close(_) => return Exit::Ending(Ending::Clean),
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                outbound = registration.outbound.recv() => {
                    let Some(outbound) = outbound else {
                        // The hub dropped us: we fell behind. Close; the client resumes.
                        let refusal = protocol::error("too_slow", "the session fell behind; reconnect and resume");
                        let _ = Box::pin(self.send(refusal)).await;
                        return Exit::Ending(Ending::Dropped);
                    };
                    if let Some(outbound) = self.cursor.hold(outbound)
                        && Box::pin(self.on_outbound(outbound)).await.is_err()
                    {
                        return Exit::Ending(Ending::Dropped);
                    }
                }
                _ = pings.tick() => {
                    let silent = last_heard.elapsed();
                    if silent >= dead_after {
                        tracing::info!(session.id = session_id, "live session missed its heartbeats; closing it");
                        // Gone since it was last heard from: what it seemed to look at since
                        // is decided again from then.
                        let silent = time::Duration::try_from(silent).unwrap_or(time::Duration::ZERO);
                        let last_heard = self.state.clock.now() - silent;
                        return Exit::Ending(Ending::Dead { last_heard });
                    }
                    if Box::pin(self.socket.send(Message::Ping(Default::default()))).await.is_err() {
                        return Exit::Ending(Ending::Dropped);
                    }
                }
                _ = registration.shutdown.changed() => return Exit::ShuttingDown,
            }
        }
    }

    /// Tells the client which of its Web Push subscriptions failed a health check.
    async fn ask_to_resubscribe(&mut self) -> Result<(), ()> {
        let unhealthy = match self
            .state
            .notify
            .unhealthy_devices(&self.tenant, &self.user)
            .await
        {
            Ok(unhealthy) => unhealthy,
            Err(e) => return self.store_failed(e).await,
        };
        for (device, app) in unhealthy {
            self.send(protocol::resubscribe(device.as_str(), app.as_str()))
                .await?;
        }
        Ok(())
    }

    async fn send(&mut self, frame: String) -> Result<(), ()> {
        self.socket
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| ())
    }

    async fn on_client_text(&mut self, session_id: u64, text: &str) -> Result<(), ()> {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                return self
                    .send(protocol::error("bad_frame", &frame_error(&e)))
                    .await;
            }
        };
        match frame {
            ClientFrame::Resume { positions } => {
                for (conversation, position) in positions {
                    self.resume(conversation, position).await?;
                }
            }
            ClientFrame::State { state } => {
                self.state
                    .hub
                    .set_state(&self.tenant, &self.user, session_id, state)
            }
            ClientFrame::Read {
                conversation_id,
                position,
            } => self.read(conversation_id, position).await?,
            ClientFrame::Ping {} => self.send(protocol::pong()).await?,
        }
        // The first frame releases the live items held since connecting.
        for outbound in self.cursor.release() {
            self.on_outbound(outbound).await?;
        }
        Ok(())
    }

    async fn resume(&mut self, conversation: ConversationId, after: u64) -> Result<(), ()> {
        let reader = Reader {
            store: self.state.store.as_ref(),
            tenant: &self.tenant,
            page: self.state.config.limits.max_page_events,
        };
        let mut frames = Frames(&mut self.socket);
        let stopped = self
            .cursor
            .resume(reader, &self.user, conversation.clone(), after, &mut frames)
            .await;
        if let Err(Stopped::NotAParticipant) = stopped {
            let message = format!("not a participant of conversation {conversation}");
            return self
                .send(protocol::error("not_a_participant", &message))
                .await;
        }
        self.stopped(stopped).await
    }

    async fn on_outbound(&mut self, outbound: Outbound) -> Result<(), ()> {
        let reader = Reader {
            store: self.state.store.as_ref(),
            tenant: &self.tenant,
            page: self.state.config.limits.max_page_events,
        };
        let mut frames = Frames(&mut self.socket);
        let stopped = self.cursor.live(reader, &outbound, &mut frames).await;
        self.stopped(stopped).await
    }

    /// Ends the session if the socket is gone; tells the client to resume later if the store
    /// failed.
    async fn stopped(&mut self, stopped: Result<(), Stopped>) -> Result<(), ()> {
        match stopped {
            Ok(()) => Ok(()),
            Err(Stopped::Gone) => Err(()),
            Err(Stopped::Store(e)) => self.store_failed(e).await,
            Err(Stopped::NotAParticipant) => Ok(()),
        }
    }

    async fn read(&mut self, conversation: ConversationId, position: u64) -> Result<(), ()> {
        let event_id = EventId::parse(format!("read-{}", uuid::Uuid::now_v7()))
            .expect("generated ids are valid");
        let now = self.state.clock.now();
        match self
            .state
            .store
            .mark_read(
                &self.tenant,
                &conversation,
                &self.user,
                position,
                event_id,
                now,
            )
            .await
        {
            Ok(appended) => {
                self.state.committed(&self.tenant, appended.as_slice());
                Ok(())
            }
            Err(StoreError::EventInvalid { invalid, .. }) => {
                self.send(protocol::error("invalid_read", &invalid.to_string()))
                    .await
            }
            Err(e) => self.store_failed(e).await,
        }
    }

    async fn store_failed(&mut self, error: StoreError) -> Result<(), ()> {
        tracing::error!(error.message = %error, "live session could not read the store");
        self.send(protocol::error(
            "unavailable",
            "storage is unavailable; resume later",
        ))
        .await
    }
}

/// The socket as the cursor's sink: each item as its frame.
struct Frames<'a>(&'a mut WebSocket);

impl Sink for Frames<'_> {
    async fn emit(&mut self, item: Item<'_>) -> Result<(), Gone> {
        let frame = match item {
            Item::Event {
                conversation,
                position,
                json,
            } => protocol::event(conversation, position, json),
            Item::Unread(frame) => frame.to_string(),
            Item::CaughtUp {
                conversation,
                position,
            } => protocol::caught_up(conversation, position),
        };
        self.0
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| Gone)
    }
}

/// A parse error without the offending text (it may be message content).
fn frame_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = message
        .rfind(" at line ")
        .map_or(message.as_str(), |i| &message[..i]);
    format!("invalid frame: {message}")
}
