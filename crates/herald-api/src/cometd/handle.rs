//! The meta channels and publishing, for both transports: `/meta/handshake` (a client token
//! in `ext.authentication.token`), `/meta/connect` (held until something is ready or the
//! timeout), `/meta/subscribe` and `/meta/unsubscribe` (a user's own conversations only),
//! `/meta/disconnect` (with GMS's `ext.transcriptPosition`), and publishing a message or a read
//! into a conversation the user takes part in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use herald_engine::event::{NewEvent, rfc3339};
use herald_engine::ids::{ConversationId, EventId};
use herald_engine::participant::Membership;
use herald_engine::store::StoreError;
use herald_runtime::live::cursor::Reader;
use herald_runtime::live::presence::Ending;
use herald_runtime::live::protocol::SessionState;
use herald_tenancy::auth::tokens;
use serde_json::{Map, Value, json};

use super::CometdConfig;
use super::bayeux::{self, Message};
pub use super::client::Woke;
use super::client::{Client, UNREAD_CHANNEL};
use super::genesys::{self, Background, GENESYS_CHANNEL};
use crate::state::AppState;

/// The transports Herald offers, in the client's preference order.
const TRANSPORTS: [&str; 2] = ["websocket", "long-polling"];

pub struct Cometd {
    pub state: AppState,
    pub config: CometdConfig,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    background: Background,
}

/// What one message asks of the transport besides its replies.
pub enum Next {
    Reply(Value),
    /// A `/meta/connect` to hold: answer it with [`Cometd::finish_connect`].
    Hold(Arc<Client>, Message),
}

fn advice(config: &CometdConfig) -> Value {
    json!({"reconnect": "retry", "interval": 0, "timeout": config.timeout_ms, "maxInterval": config.max_interval_ms})
}

impl Cometd {
    pub fn new(state: AppState, config: CometdConfig) -> Cometd {
        Cometd {
            state,
            config,
            clients: Mutex::default(),
            background: Background::default(),
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Client>>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn client_count(&self) -> usize {
        self.clients().len()
    }

    fn page(&self) -> usize {
        self.state.config.limits.max_page_events
    }

    /// Handles one message; a connect that must wait comes back as [`Next::Hold`].
    pub async fn handle(&self, m: Message) -> Next {
        if m.channel == "/meta/handshake" {
            return Next::Reply(self.handshake(&m).await);
        }
        let Some(client) = m
            .client_id
            .as_deref()
            .and_then(|id| self.clients().get(id).cloned())
        else {
            let error = match &m.client_id {
                None => "401::No client ID".to_string(),
                Some(id) => format!("402:{id}:Unknown client"),
            };
            return Next::Reply(m.error(&error, Some(bayeux::rehandshake())));
        };
        client.touch();
        Next::Reply(match m.channel.as_str() {
            "/meta/connect" => {
                // The first connect of a session (advice.timeout 0) is answered at once.
                if m.advice_timeout() == Some(0) {
                    return Next::Reply(Value::Array(self.connect_now(&client, &m).await));
                }
                return Next::Hold(client, m);
            }
            "/meta/subscribe" => self.subscribe(&client, &m, true).await,
            "/meta/unsubscribe" => self.subscribe(&client, &m, false).await,
            "/meta/disconnect" => self.disconnect(&client, &m).await,
            channel if channel.starts_with("/meta/") => m.error("400::Unknown meta channel", None),
            _ => self.publish(&client, &m).await,
        })
    }

    async fn handshake(&self, m: &Message) -> Value {
        let token = m
            .ext()
            .and_then(|e| e.get("authentication"))
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str);
        let Some(token) = token else {
            return m.error(
                "401::ext.authentication.token is required",
                Some(json!({"reconnect": "none"})),
            );
        };
        let leeway = self.state.config.auth.token_leeway_s;
        let identity = match tokens::verify(
            self.state.store.as_ref(),
            &self.state.sealer,
            token,
            leeway,
        )
        .await
        {
            Ok(identity) => identity,
            Err(tokens::TokenError::Store(e)) => return self.unavailable(m, &e),
            Err(_) => {
                return m.error(
                    "403::invalid client token",
                    Some(json!({"reconnect": "none"})),
                );
            }
        };
        let offered: Vec<&str> = m
            .raw
            .get("supportedConnectionTypes")
            .and_then(Value::as_array)
            .map(|types| types.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let common: Vec<&str> = TRANSPORTS
            .into_iter()
            .filter(|t| offered.contains(t))
            .collect();
        if common.is_empty() {
            return m.error(
                "403::no common connection type (websocket, long-polling)",
                Some(json!({"reconnect": "none"})),
            );
        }
        let registration =
            self.state
                .hub
                .register(&identity.tenant, &identity.user, SessionState::Foreground);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let client = Arc::new(Client::new(
            id.clone(),
            identity.tenant,
            identity.user,
            registration,
        ));
        // Coming back from the background: the transcript since the position, before any
        // live event (the hub already queues those for this session); delivered once the
        // client subscribes to `/_genesys`.
        let reader = Reader {
            store: self.state.store.as_ref(),
            tenant: &client.tenant,
            page: self.page(),
        };
        for (conversation, after) in self.background.take(&client.tenant, &client.user) {
            match genesys::catch_up(&client, reader, conversation, after).await {
                Ok(Some(message)) => client.state.lock().await.genesys.push(message),
                Ok(None) => {}
                Err(stopped) => tracing::warn!(?stopped, "a CometD catch-up could not be read"),
            }
        }
        self.clients().insert(id.clone(), client);
        metrics::gauge!("herald_cometd_clients").set(self.client_count() as f64);
        let mut reply = m.reply(true);
        reply.insert("clientId".into(), json!(id));
        reply.insert("version".into(), json!("1.0"));
        reply.insert("supportedConnectionTypes".into(), json!(common));
        reply.insert("advice".into(), advice(&self.config));
        Value::Object(reply)
    }

    fn unavailable(&self, m: &Message, e: &StoreError) -> Value {
        tracing::error!(error.message = %e, "CometD request could not reach the store");
        m.error(
            "503::storage is unavailable; retry",
            Some(json!({"reconnect": "retry", "interval": 1000})),
        )
    }

    /// A connect answered at once: whatever is ready, then the reply.
    pub async fn connect_now(&self, client: &Client, m: &Message) -> Vec<Value> {
        let mut out = client.collect(self.state.store.as_ref(), self.page()).await;
        client.touch();
        let mut reply = m.reply(true);
        reply.insert("advice".into(), advice(&self.config));
        out.push(Value::Object(reply));
        out
    }

    /// A held connect: waits until something is ready or the timeout, then answers.
    pub async fn hold_connect(&self, client: &Client, m: &Message) -> Vec<Value> {
        let _connecting = client.connecting();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.timeout_ms);
        let woke = client.wait(deadline).await;
        self.answer_held(client, m, woke).await
    }

    /// The answer to a held connect once it woke.
    pub async fn answer_held(&self, client: &Client, m: &Message, woke: Woke) -> Vec<Value> {
        if woke == Woke::Gone {
            self.expire(&client.id, Ending::Dropped);
        }
        // Gone, disconnected or expired meanwhile: the client must start over.
        if !self.clients().contains_key(&client.id) {
            return vec![m.error(
                "402::the session ended; handshake again",
                Some(bayeux::rehandshake()),
            )];
        }
        self.connect_now(client, m).await
    }

    async fn subscribe(&self, client: &Client, m: &Message, on: bool) -> Value {
        let subscriptions: Vec<String> = match m.raw.get("subscription") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => vec![],
        };
        if subscriptions.is_empty() {
            return m.error("400::subscription is required", None);
        }
        for subscription in &subscriptions {
            if let Err(reply) = self.subscribe_one(client, m, subscription, on).await {
                return reply;
            }
        }
        let mut reply = m.reply(true);
        reply.insert("subscription".into(), m.raw["subscription"].clone());
        Value::Object(reply)
    }

    async fn subscribe_one(
        &self,
        client: &Client,
        m: &Message,
        channel: &str,
        on: bool,
    ) -> Result<(), Value> {
        let denied = || {
            let mut reply = m.error(
                &format!("403:{},{channel}:Subscription denied", client.id),
                None,
            );
            reply["subscription"] = json!(channel);
            reply
        };
        if channel == GENESYS_CHANNEL {
            // The catch-up waits for this subscription: a client routes a delivery only to a
            // channel it subscribed to, and it subscribes after its handshake.
            let mut state = client.state.lock().await;
            let catch_up = std::mem::take(&mut state.genesys);
            if on && !catch_up.is_empty() {
                state.ready.extend(catch_up);
                client.wake();
            }
            return Ok(());
        }
        if channel == UNREAD_CHANNEL {
            client.state.lock().await.unread = on;
            return Ok(());
        }
        let (conversation, _) =
            self.member_conversation(client, channel)
                .await
                .map_err(|e| match e {
                    Some(e) => self.unavailable(m, &e),
                    None => denied(),
                })?;
        let mut state = client.state.lock().await;
        if on {
            state.subscribed.insert(conversation);
        } else {
            state.subscribed.remove(&conversation);
        }
        Ok(())
    }

    /// The conversation of a `/conversations/<id>` channel the user takes part in, and their
    /// membership; `Err(None)` for any other channel or conversation.
    async fn member_conversation(
        &self,
        client: &Client,
        channel: &str,
    ) -> Result<(ConversationId, Membership), Option<StoreError>> {
        let id = channel.strip_prefix("/conversations/").ok_or(None)?;
        let conversation = ConversationId::parse(id).map_err(|_| None)?;
        match self
            .state
            .store
            .membership(&client.tenant, &conversation, &client.user)
            .await
        {
            Ok(Some(member)) => Ok((conversation, member)),
            Ok(None) => Err(None),
            Err(e) => Err(Some(e)),
        }
    }

    async fn publish(&self, client: &Client, m: &Message) -> Value {
        let (conversation, member) = match self.member_conversation(client, &m.channel).await {
            Ok(found) => found,
            Err(Some(e)) => return self.unavailable(m, &e),
            Err(None) => {
                return m.error(
                    &format!("403:{},{}:Publish denied", client.id, m.channel),
                    None,
                );
            }
        };
        let Some(data) = m.data().and_then(Value::as_object) else {
            return m.error("400::data must be an object", None);
        };
        let now = self.state.clock.now();
        let appended = match data.get("type").and_then(Value::as_str) {
            Some("message.read") => {
                let Some(position) = data.get("position").and_then(Value::as_u64) else {
                    return m.error("400::a read needs a position", None);
                };
                let id = EventId::parse(format!("read-{}", uuid::Uuid::now_v7()))
                    .expect("generated ids are valid");
                self.state
                    .store
                    .mark_read(
                        &client.tenant,
                        &conversation,
                        &client.user,
                        position,
                        id,
                        now,
                    )
                    .await
                    .map(|a| a.into_iter().collect::<Vec<_>>())
            }
            Some("message.created") => {
                let event = match message(client, &conversation, &member, data, now) {
                    Ok(event) => event,
                    Err(reply) => return m.error(&reply, None),
                };
                self.state
                    .store
                    .append_events(&client.tenant, vec![event], now)
                    .await
            }
            _ => {
                return m.error(
                    "400::data.type must be message.created or message.read",
                    None,
                );
            }
        };
        match appended {
            Ok(appended) => {
                self.state.committed(&client.tenant, &appended);
                Value::Object(m.reply(true))
            }
            Err(StoreError::EventInvalid { invalid, .. }) => {
                m.error(&format!("400::{invalid}"), None)
            }
            Err(StoreError::EventConflict { .. }) => {
                m.error("409::the event id was used with another body", None)
            }
            Err(e) => self.unavailable(m, &e),
        }
    }

    async fn disconnect(&self, client: &Client, m: &Message) -> Value {
        if let Some(position) = genesys::transcript_position(m.ext()) {
            let subscribed: Vec<ConversationId> = client
                .state
                .lock()
                .await
                .subscribed
                .iter()
                .cloned()
                .collect();
            let positions = subscribed.into_iter().map(|c| (c, position)).collect();
            self.background
                .remember(&client.tenant, &client.user, positions);
        }
        self.expire(&client.id, Ending::Clean);
        Value::Object(m.reply(true))
    }

    /// Drops a client: its hub session ends as `ending` says (away at once for a clean
    /// disconnect or an expiry).
    pub fn expire(&self, id: &str, ending: Ending) {
        let Some(client) = self.clients().remove(id) else {
            return;
        };
        client.close();
        self.state
            .hub
            .unregister(&client.tenant, &client.user, client.session_id, ending);
        metrics::gauge!("herald_cometd_clients").set(self.client_count() as f64);
    }

    /// Expires every client silent for longer than `maxInterval`: gone, and away since it was
    /// last heard from.
    pub fn reap(&self) {
        let max_interval = Duration::from_millis(self.config.max_interval_ms);
        let gone: Vec<(String, std::time::Instant)> = self
            .clients()
            .values()
            .filter(|c| c.expired(max_interval))
            .map(|c| (c.id.clone(), c.last_seen()))
            .collect();
        for (id, last_seen) in gone {
            let silent =
                time::Duration::try_from(last_seen.elapsed()).unwrap_or(time::Duration::ZERO);
            let last_heard = self.state.clock.now() - silent;
            tracing::info!("a CometD client did not reconnect within maxInterval; it is gone");
            self.expire(&id, Ending::Dead { last_heard });
        }
    }
}

/// A `message.created` from the user, with their role and name in the conversation.
fn message(
    client: &Client,
    conversation: &ConversationId,
    member: &Membership,
    data: &Map<String, Value>,
    now: time::OffsetDateTime,
) -> Result<NewEvent, String> {
    let event_id = match data.get("event_id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => format!("cometd-{}", uuid::Uuid::now_v7().simple()),
    };
    let mut sender = json!({"id": client.user, "role": member.participant.role.as_str()});
    if let Some(name) = &member.participant.name {
        sender["name"] = json!(name);
    }
    let event = json!({
        "event_id": event_id, "conversation_id": conversation, "type": "message.created",
        "occurred_at": rfc3339(now), "sender": sender, "text": data.get("text").cloned().unwrap_or(Value::Null),
    });
    NewEvent::from_json(event).map_err(|invalid| format!("400::{invalid}"))
}
