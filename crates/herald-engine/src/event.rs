//! Events (SPEC §3.1). The wire shape is a flat JSON object: the envelope fields
//! (`event_id`, `conversation_id`, `type`, `occurred_at`) beside the type's own fields. It is
//! parsed in two steps — envelope, then the type's body with unknown fields refused — so an
//! error names the exact field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::ids::{ConversationId, EventId, UserId};
use crate::participant::{Participant, Role};
use crate::validate::{self, Invalid};

/// Longest text an event may carry (a message's or a notice's `text`): validation refuses a
/// longer one. Not the push limit (`notify::compose`'s `MAX_PUSH_TEXT_BYTES`).
pub const MAX_EVENT_TEXT_BYTES: usize = 32 * 1024;
pub const MAX_ATTACHMENTS: usize = 20;
pub const MAX_CUSTOM_BYTES: usize = 16 * 1024;
pub const MAX_CALLEES: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: UserId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageCreated {
    pub sender: Actor,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRead {
    pub reader_id: UserId,
    pub position: u64,
}

/// Transcript notices: typing, joined/left notices, push URL, custom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantJoined {
    pub participant: Participant,
    /// Who added them (an invitation, a forward); absent when they joined on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantLeft {
    pub user_id: UserId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRinging {
    pub call_id: String,
    pub caller: Actor,
    pub callees: Vec<UserId>,
    /// How long the call rings; bounds the TTL of incoming-call pushes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_timeout_s: Option<u32>,
}

/// `call.answered`, `call.cancelled`, `call.timeout`, `call.ended`, `call.declined`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallUpdate {
    pub call_id: String,
    /// Who answered, declined, cancelled or ended (required for `call.declined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    MessageCreated(MessageCreated),
    MessageRead(MessageRead),
    Notice(NoticeKind, Notice),
    ParticipantJoined(ParticipantJoined),
    ParticipantLeft(ParticipantLeft),
    CallRinging(CallRinging),
    Call(CallKind, CallUpdate),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    TypingStarted,
    TypingStopped,
    Joined,
    Left,
    PushUrl,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Answered,
    Declined,
    Cancelled,
    Timeout,
    Ended,
}

/// Every event type name, as it appears in `type`.
pub const EVENT_TYPES: &[&str] = &[
    "message.created",
    "message.read",
    "notice.typing_started",
    "notice.typing_stopped",
    "notice.joined",
    "notice.left",
    "notice.push_url",
    "notice.custom",
    "participant.joined",
    "participant.left",
    "call.ringing",
    "call.answered",
    "call.declined",
    "call.cancelled",
    "call.timeout",
    "call.ended",
];

impl EventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::MessageCreated(_) => "message.created",
            EventBody::MessageRead(_) => "message.read",
            EventBody::Notice(kind, _) => match kind {
                NoticeKind::TypingStarted => "notice.typing_started",
                NoticeKind::TypingStopped => "notice.typing_stopped",
                NoticeKind::Joined => "notice.joined",
                NoticeKind::Left => "notice.left",
                NoticeKind::PushUrl => "notice.push_url",
                NoticeKind::Custom => "notice.custom",
            },
            EventBody::ParticipantJoined(_) => "participant.joined",
            EventBody::ParticipantLeft(_) => "participant.left",
            EventBody::CallRinging(_) => "call.ringing",
            EventBody::Call(kind, _) => match kind {
                CallKind::Answered => "call.answered",
                CallKind::Declined => "call.declined",
                CallKind::Cancelled => "call.cancelled",
                CallKind::Timeout => "call.timeout",
                CallKind::Ended => "call.ended",
            },
        }
    }

    /// Parses the type-specific fields. `fields` excludes the envelope.
    pub fn parse(type_name: &str, fields: Map<String, Value>) -> Result<EventBody, Invalid> {
        fn body<T: serde::de::DeserializeOwned>(fields: Map<String, Value>) -> Result<T, Invalid> {
            validate::from_value(Value::Object(fields))
        }
        let notice = |kind| Ok(EventBody::Notice(kind, body(fields.clone())?));
        let call = |kind| Ok(EventBody::Call(kind, body(fields.clone())?));
        match type_name {
            "message.created" => Ok(EventBody::MessageCreated(body(fields)?)),
            "message.read" => Ok(EventBody::MessageRead(body(fields)?)),
            "notice.typing_started" => notice(NoticeKind::TypingStarted),
            "notice.typing_stopped" => notice(NoticeKind::TypingStopped),
            "notice.joined" => notice(NoticeKind::Joined),
            "notice.left" => notice(NoticeKind::Left),
            "notice.push_url" => notice(NoticeKind::PushUrl),
            "notice.custom" => notice(NoticeKind::Custom),
            "participant.joined" => Ok(EventBody::ParticipantJoined(body(fields)?)),
            "participant.left" => Ok(EventBody::ParticipantLeft(body(fields)?)),
            "call.ringing" => Ok(EventBody::CallRinging(body(fields)?)),
            "call.answered" => call(CallKind::Answered),
            "call.declined" => call(CallKind::Declined),
            "call.cancelled" => call(CallKind::Cancelled),
            "call.timeout" => call(CallKind::Timeout),
            "call.ended" => call(CallKind::Ended),
            _ => Err(Invalid::new(
                "type",
                format!(
                    "unknown event type; expected one of {}",
                    EVENT_TYPES.join(", ")
                ),
            )),
        }
    }

    /// The type-specific fields as a JSON object (the inverse of `parse`).
    pub fn fields(&self) -> Map<String, Value> {
        let value = match self {
            EventBody::MessageCreated(b) => serde_json::to_value(b),
            EventBody::MessageRead(b) => serde_json::to_value(b),
            EventBody::Notice(_, b) => serde_json::to_value(b),
            EventBody::ParticipantJoined(b) => serde_json::to_value(b),
            EventBody::ParticipantLeft(b) => serde_json::to_value(b),
            EventBody::CallRinging(b) => serde_json::to_value(b),
            EventBody::Call(_, b) => serde_json::to_value(b),
        };
        match value {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("event bodies are structs and always serialize to objects"),
        }
    }

    /// Who caused the event, when the event says so.
    pub fn actor_id(&self) -> Option<&UserId> {
        match self {
            EventBody::MessageCreated(m) => Some(&m.sender.id),
            EventBody::MessageRead(r) => Some(&r.reader_id),
            EventBody::Notice(_, n) => n.actor.as_ref().map(|a| &a.id),
            EventBody::ParticipantJoined(j) => {
                Some(j.by.as_ref().unwrap_or(&j.participant.user_id))
            }
            EventBody::ParticipantLeft(l) => Some(&l.user_id),
            EventBody::CallRinging(c) => Some(&c.caller.id),
            EventBody::Call(_, c) => c.by.as_ref(),
        }
    }

    fn validate(&self) -> Result<(), Invalid> {
        match self {
            EventBody::MessageCreated(m) => {
                validate_actor(&m.sender).map_err(|e| e.within("sender"))?;
                validate::text("text", &m.text, MAX_EVENT_TEXT_BYTES)?;
                if m.attachments.len() > MAX_ATTACHMENTS {
                    return Err(Invalid::new(
                        "attachments",
                        format!("at most {MAX_ATTACHMENTS} attachments"),
                    ));
                }
                for (i, a) in m.attachments.iter().enumerate() {
                    for (field, value) in [
                        ("name", &a.name),
                        ("content_type", &a.content_type),
                        ("url", &a.url),
                    ] {
                        if let Some(v) = value {
                            validate::text(&format!("attachments[{i}].{field}"), v, 2048)?;
                        }
                    }
                }
                Ok(())
            }
            EventBody::MessageRead(_) | EventBody::ParticipantLeft(_) => Ok(()),
            EventBody::Notice(_, n) => {
                if let Some(a) = &n.actor {
                    validate_actor(a).map_err(|e| e.within("actor"))?;
                }
                if let Some(t) = &n.text {
                    validate::text("text", t, MAX_EVENT_TEXT_BYTES)?;
                }
                if let Some(u) = &n.url {
                    validate::text("url", u, 2048)?;
                }
                if let Some(d) = &n.data
                    && d.to_string().len() > MAX_CUSTOM_BYTES
                {
                    return Err(Invalid::new(
                        "data",
                        format!("must serialize to at most {MAX_CUSTOM_BYTES} bytes"),
                    ));
                }
                Ok(())
            }
            EventBody::ParticipantJoined(j) => j
                .participant
                .validate()
                .map_err(|e| e.within("participant")),
            EventBody::CallRinging(c) => {
                validate::text("call_id", &c.call_id, 128)?;
                if c.call_id.is_empty() {
                    return Err(Invalid::new("call_id", "must not be empty"));
                }
                validate_actor(&c.caller).map_err(|e| e.within("caller"))?;
                if c.callees.is_empty() || c.callees.len() > MAX_CALLEES {
                    return Err(Invalid::new(
                        "callees",
                        format!("must list 1 to {MAX_CALLEES} users"),
                    ));
                }
                Ok(())
            }
            EventBody::Call(kind, c) => {
                validate::text("call_id", &c.call_id, 128)?;
                if c.call_id.is_empty() {
                    return Err(Invalid::new("call_id", "must not be empty"));
                }
                if *kind == CallKind::Declined && c.by.is_none() {
                    return Err(Invalid::new("by", "is required for call.declined"));
                }
                Ok(())
            }
        }
    }
}

fn validate_actor(actor: &Actor) -> Result<(), Invalid> {
    match &actor.name {
        Some(name) => validate::text("name", name, crate::participant::MAX_NAME_BYTES),
        None => Ok(()),
    }
}

/// An event as submitted to `POST /v1/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: EventId,
    pub conversation_id: ConversationId,
    pub occurred_at: OffsetDateTime,
    pub body: EventBody,
}

#[derive(Deserialize)]
struct Envelope {
    event_id: EventId,
    conversation_id: ConversationId,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl NewEvent {
    /// Parses and validates one event from its wire form.
    pub fn from_json(value: Value) -> Result<NewEvent, Invalid> {
        let envelope: Envelope = validate::from_value(value)?;
        let body = EventBody::parse(&envelope.type_name, envelope.fields)?;
        body.validate()?;
        Ok(NewEvent {
            event_id: envelope.event_id,
            conversation_id: envelope.conversation_id,
            occurred_at: envelope.occurred_at,
            body,
        })
    }

    /// Checks the type-specific rules; `from_json` already does, this is for events built in
    /// code (e.g. by a store that must never persist what it could not read back).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.body.validate()
    }

    /// The wire form; also the canonical form hashed for idempotency (serde_json sorts keys).
    pub fn to_json(&self) -> Value {
        let mut map = self.body.fields();
        map.insert("event_id".into(), Value::from(self.event_id.as_str()));
        map.insert(
            "conversation_id".into(),
            Value::from(self.conversation_id.as_str()),
        );
        map.insert("type".into(), Value::from(self.body.type_name()));
        map.insert("occurred_at".into(), Value::from(rfc3339(self.occurred_at)));
        Value::Object(map)
    }
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An event in a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: u64,
    pub event: NewEvent,
    pub recorded_at: OffsetDateTime,
}

impl StoredEvent {
    pub fn to_json(&self) -> Value {
        let mut value = self.event.to_json();
        if let Value::Object(map) = &mut value {
            map.insert("position".into(), Value::from(self.position));
            map.insert("recorded_at".into(), Value::from(rfc3339(self.recorded_at)));
        }
        value
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
