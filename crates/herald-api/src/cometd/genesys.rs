//! The GMS background-state contract (the vendor's "Chat API Version 1 Push Notification and
//! Background State"): a client going to the background sends `/meta/disconnect` with
//! `ext.transcriptPosition`; coming back, its new session — once subscribed to `/_genesys` —
//! first gets one `/_genesys` message per conversation carrying every transcript event after
//! that position, then live events.
//!
//! Positions are remembered per user in this node's memory (for [`REMEMBER_FOR`]); a client
//! that comes back to another node, or after a restart, subscribes and reads the transcript
//! with the client API instead.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_runtime::live::cursor::{Gone, Item, Reader, Sink, Stopped};
use serde_json::{Value, json};

use super::bayeux;
use super::client::Client;

/// The GMS channel of service messages.
pub const GENESYS_CHANNEL: &str = "/_genesys";
/// How long a background client's position is kept.
pub const REMEMBER_FOR: Duration = Duration::from_secs(24 * 3600);
/// Most users remembered at once; the oldest go first.
const REMEMBER_AT_MOST: usize = 100_000;

type UserKey = (TenantId, UserId);
/// When a user went to the background, and the positions they had seen.
type Positions = (Instant, Vec<(ConversationId, u64)>);

/// Users in the background: the conversations they were subscribed to and the position they
/// had seen.
#[derive(Default)]
pub struct Background {
    users: Mutex<HashMap<UserKey, Positions>>,
}

impl Background {
    pub fn remember(
        &self,
        tenant: &TenantId,
        user: &UserId,
        positions: Vec<(ConversationId, u64)>,
    ) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.retain(|_, (at, _)| at.elapsed() < REMEMBER_FOR);
        if users.len() >= REMEMBER_AT_MOST
            && let Some(oldest) = users
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            users.remove(&oldest);
        }
        users.insert((tenant.clone(), user.clone()), (Instant::now(), positions));
    }

    /// The positions of a user coming back, forgotten once taken.
    pub fn take(&self, tenant: &TenantId, user: &UserId) -> Vec<(ConversationId, u64)> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        match users.remove(&(tenant.clone(), user.clone())) {
            Some((at, positions)) if at.elapsed() < REMEMBER_FOR => positions,
            _ => vec![],
        }
    }
}

/// `ext.transcriptPosition`: a string or a number (GMS clients send both).
pub fn transcript_position(ext: Option<&serde_json::Map<String, Value>>) -> Option<u64> {
    match ext?.get("transcriptPosition")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// GMS's party roles: the customer is the `CLIENT`.
fn role(role: &str) -> String {
    match role {
        "visitor" => "CLIENT".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// One `transcriptToShow` row: `[kind, name, text, position, role]`.
pub fn row(event: &Value, position: u64) -> Option<Value> {
    // Named as the GMS-shaped pushes name their `lastTranscript` items.
    let kind = herald_engine::notify::content::gms::kind(event["type"].as_str()?)?;
    let sender = &event["sender"];
    let name = sender["name"]
        .as_str()
        .or(sender["id"].as_str())
        .or(event["user_id"].as_str())
        .unwrap_or("");
    let text = event["text"].as_str().unwrap_or("");
    let role = role(
        sender["role"]
            .as_str()
            .or(event["role"].as_str())
            .unwrap_or(""),
    );
    Some(json!([kind, name, text, position.to_string(), role]))
}

/// Collects the catch-up's rows.
struct Rows {
    rows: Vec<Value>,
    last: u64,
}

impl Sink for Rows {
    async fn emit(&mut self, item: Item<'_>) -> Result<(), Gone> {
        match item {
            Item::Event { position, json, .. } => {
                let event: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                self.rows.extend(row(&event, position));
                self.last = position;
            }
            Item::CaughtUp { position, .. } => self.last = position,
            Item::Unread(_) => {}
        }
        Ok(())
    }
}

/// The `/_genesys` message for a client coming back to `conversation` after `after`; it is
/// subscribed to the conversation from here on, its cursor at the last position shown.
pub async fn catch_up(
    client: &Client,
    reader: Reader<'_>,
    conversation: ConversationId,
    after: u64,
) -> Result<Option<Value>, Stopped> {
    let mut state = client.state.lock().await;
    let mut rows = Rows {
        rows: vec![],
        last: after,
    };
    match state
        .cursor
        .resume(reader, &client.user, conversation.clone(), after, &mut rows)
        .await
    {
        Ok(()) => {}
        Err(Stopped::NotAParticipant) => return Ok(None),
        Err(e) => return Err(e),
    }
    state.subscribed.insert(conversation.clone());
    Ok(Some(bayeux::delivery(
        GENESYS_CHANNEL,
        json!({
            "id": uuid::Uuid::now_v7().simple().to_string(),
            "message": {
                "chatSessionId": conversation,
                "transcriptPosition": rows.last.to_string(),
                "chatIxnState": "TRANSCRIPT",
                "chatServiceMessage": "Chat service is available",
                "transcriptToShow": rows.rows,
            },
            "tag": format!("service.chat.refresh.{conversation}"),
        }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_the_kind_sender_text_position_and_party() {
        let message = json!({"type": "message.created", "sender": {"id": "agent-7", "role": "agent", "name": "Ann"}, "text": "Hello"});
        assert_eq!(
            row(&message, 29),
            Some(json!(["Message.Text", "Ann", "Hello", "29", "AGENT"]))
        );
        let typing =
            json!({"type": "notice.typing_started", "sender": {"id": "v1", "role": "visitor"}});
        assert_eq!(
            row(&typing, 3),
            Some(json!(["Notice.TypingStarted", "v1", "", "3", "CLIENT"]))
        );
        assert_eq!(row(&json!({"type": "message.read"}), 4), None);
    }

    #[test]
    fn positions_come_as_strings_or_numbers() {
        let ext = |v: Value| json!({"transcriptPosition": v}).as_object().cloned();
        assert_eq!(transcript_position(ext(json!("4")).as_ref()), Some(4));
        assert_eq!(transcript_position(ext(json!(6)).as_ref()), Some(6));
        assert_eq!(transcript_position(ext(json!("x")).as_ref()), None);
        assert_eq!(transcript_position(None), None);
    }

    #[test]
    fn a_position_is_taken_once() {
        let background = Background::default();
        let (t, u) = (TenantId::parse("t").unwrap(), UserId::parse("u").unwrap());
        background.remember(&t, &u, vec![(ConversationId::parse("c").unwrap(), 4)]);
        assert_eq!(background.take(&t, &u).len(), 1);
        assert!(background.take(&t, &u).is_empty());
    }
}
