//! One task per WebSocket connection.
//!
//! Ordering guarantee (no gap, no duplicate): the session keeps, per conversation, the last
//! position it sent. A live event at `last + 1` is sent; at or below `last` it is a duplicate
//! and skipped; beyond `last + 1` the gap is read from the store first. The session registers
//! with the hub before it reads any catch-up, so every event is in the store read, in the
//! queue, or both — and the cursor removes the overlap. Live events are held until the
//! client's first frame, so a client that opens with `resume` gets its catch-up first.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use herald_engine::ids::{ConversationId, EventId, TenantId, UserId};
use herald_engine::store::StoreError;
use tokio::time::{Instant, MissedTickBehavior};

use crate::state::AppState;
use herald_runtime::live::hub::{LiveEvent, Outbound};
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
    sent: HashMap<ConversationId, u64>,
    /// Live frames held until the client's first frame.
    held: Option<VecDeque<Outbound>>,
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
        sent: HashMap::new(),
        held: Some(VecDeque::new()),
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
                    if let Some(held) = &mut self.held {
                        held.push_back(outbound);
                    } else if Box::pin(self.on_outbound(outbound)).await.is_err() {
                        return Exit::Ending(Ending::Dropped);
                    }
                }
                _ = pings.tick() => {
                    if last_heard.elapsed() >= dead_after {
                        tracing::info!(session.id = session_id, "live session missed its heartbeats; closing it");
                        return Exit::Ending(Ending::Dead);
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
        // The first frame releases the live events held since connecting.
        if let Some(held) = self.held.take() {
            for outbound in held {
                self.on_outbound(outbound).await?;
            }
        }
        Ok(())
    }

    async fn resume(&mut self, conversation: ConversationId, after: u64) -> Result<(), ()> {
        match self
            .state
            .store
            .membership(&self.tenant, &conversation, &self.user)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                let message = format!("not a participant of conversation {conversation}");
                return self
                    .send(protocol::error("not_a_participant", &message))
                    .await;
            }
            Err(e) => return self.store_failed(e).await,
        }
        self.sent.insert(conversation.clone(), after);
        self.fill(&conversation, u64::MAX).await?;
        let position = self.sent[&conversation];
        self.send(protocol::caught_up(&conversation, position))
            .await
    }

    /// Sends stored events after the cursor, up to `until` inclusive.
    async fn fill(&mut self, conversation: &ConversationId, until: u64) -> Result<(), ()> {
        let page = self.state.config.limits.max_page_events;
        loop {
            let after = self.sent[conversation];
            if after >= until {
                return Ok(());
            }
            let limit = page.min(usize::try_from(until - after).unwrap_or(usize::MAX));
            let events = match self
                .state
                .store
                .events_after(&self.tenant, conversation, after, limit)
                .await
            {
                Ok(events) => events,
                Err(e) => return self.store_failed(e).await,
            };
            let done = events.len() < limit;
            for event in events {
                let frame =
                    protocol::event(conversation, event.position, &event.to_json().to_string());
                self.send(frame).await?;
                self.sent.insert(conversation.clone(), event.position);
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn on_outbound(&mut self, outbound: Outbound) -> Result<(), ()> {
        match outbound {
            Outbound::Event(event) => self.on_event(&event).await,
            Outbound::Unread(frame) => self.send(frame.into()).await,
        }
    }

    async fn on_event(&mut self, event: &LiveEvent) -> Result<(), ()> {
        let conversation = &event.conversation_id;
        match self.sent.get(conversation).copied() {
            Some(last) if event.position <= last => return Ok(()),
            Some(last) if event.position > last + 1 => {
                self.fill(conversation, event.position - 1).await?
            }
            _ => {}
        }
        if self
            .sent
            .get(conversation)
            .is_some_and(|last| event.position <= *last)
        {
            return Ok(());
        }
        self.send(protocol::event(conversation, event.position, &event.json))
            .await?;
        self.sent.insert(conversation.clone(), event.position);
        Ok(())
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

/// A parse error without the offending text (it may be message content).
fn frame_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = message
        .rfind(" at line ")
        .map_or(message.as_str(), |i| &message[..i]);
    format!("invalid frame: {message}")
}
