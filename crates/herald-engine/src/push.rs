//! What Herald sends: a channel-agnostic push, the delivery that carries it to one target, and
//! the four outcomes a channel can report (SPEC §3.5). Channels render a `Push` into their own
//! wire format (APNs JSON, FCM message, Web Push payload, webhook body, connector template).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::device::Device;
use crate::ids::{AppId, ConversationId, TenantId, UserId};
use crate::participant::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// One or more new messages (visible).
    NewMessage,
    /// A transcript notice that pushes (`notice.push_url`, `notice.custom`, …), possibly
    /// standing for messages before it too (visible). Its `event_id` is the notice's.
    Notice,
    /// The conversation was read elsewhere: clear what was shown (silent).
    Read,
    /// A call is ringing (visible, high priority, VoIP where possible).
    IncomingCall,
    /// The ringing call stopped: dismiss the call UI (silent).
    RevokedCall,
    /// A call nobody answered (visible).
    MissedCall,
    /// Someone added the user to a conversation: an invitation or a forward (visible).
    Invitation,
    /// A proactive notification from `POST /v1/notifications` (visible).
    Proactive,
    /// The messages of a conversation still unread after the app's `email_delay_ms` (email).
    Digest,
    /// A Web Push subscription health check the client must acknowledge (silent).
    HealthCheck,
}

impl PushKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::NewMessage => "new_message",
            PushKind::Notice => "notice",
            PushKind::Read => "read",
            PushKind::IncomingCall => "incoming_call",
            PushKind::RevokedCall => "revoked_call",
            PushKind::MissedCall => "missed_call",
            PushKind::Invitation => "invitation",
            PushKind::Proactive => "proactive",
            PushKind::Digest => "digest",
            PushKind::HealthCheck => "health_check",
        }
    }

    /// Silent pushes update state on the device; they show nothing.
    pub fn is_silent(self) -> bool {
        matches!(
            self,
            PushKind::Read | PushKind::RevokedCall | PushKind::HealthCheck
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSender {
    pub id: UserId,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One transcript line shown in a `full` push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    pub text: String,
}

/// A channel-agnostic push. In `metadata_only` mode `title`, `body`, `lines` and `sender.name`
/// are absent: the client fetches the content with the client API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    pub kind: PushKind,
    pub tenant_id: TenantId,
    pub app_id: AppId,
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The latest transcript position the push stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The id of the event at `position`, and when it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<crate::ids::EventId>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub event_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Line>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<PushSender>,
    /// How many messages this push stands for (coalescing).
    pub message_count: u32,
    /// Unread count of the conversation.
    pub unread: u64,
    /// The badge: the user's total unread, always absolute.
    pub badge: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default)]
    pub missed_calls: u64,
    /// Same key → a newer push replaces an older one (APNs collapse id, FCM tag, Web Push
    /// Topic). Per conversation for messages and reads, per call for calls.
    pub collapse_key: String,
    /// High priority: calls, and visible messages. Silent pushes are never high priority.
    pub high_priority: bool,
    /// Custom string data: a proactive notification's, or `url` of a `notice.push_url`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Past this, the push is expired, never sent late.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// A payload already in the provider's own shape, composed by a front door that speaks
    /// for its clients' apps (the Matrix push gateway, whose apps expect Sygnal's payloads):
    /// the channel sends it instead of rendering the fields above, which then only steer the
    /// request (priority, TTL, collapse key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayPayload>,
    /// The GMS shape of the push (`content.shape = "gms"`), which channels that carry text
    /// send alongside or instead of their own rendering (see [`Gms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gms: Option<Gms>,
}

/// What a Genesys GMS chat push says: the app's message, the conversation (`serviceId`) and
/// the agent events it stands for (`lastTranscript`), serialised exactly as GMS clients read
/// it: `{"message": "New message from Agent", "serviceId": "…", "lastTranscript":
/// [{"Message.Text": "Hello"}]}`. Channels tag it [`GMS_TAG`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gms {
    pub message: String,
    #[serde(rename = "serviceId")]
    pub service_id: String,
    #[serde(rename = "lastTranscript")]
    pub last_transcript: Vec<GmsItem>,
}

/// The tag GMS gives chat pushes.
pub const GMS_TAG: &str = "chat.newagentmessage";

/// One `lastTranscript` item, `{"<GMS kind>": "text"}` (`Message.Text`, `Notice.Custom`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GmsItem {
    pub kind: String,
    pub text: String,
}

impl Serialize for GmsItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(&self.kind, &self.text)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for GmsItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        let mut entries = map.into_iter();
        match (entries.next(), entries.next()) {
            (Some((kind, text)), None) => Ok(GmsItem { kind, text }),
            _ => Err(serde::de::Error::custom(
                "a lastTranscript item has exactly one kind",
            )),
        }
    }
}

/// A provider-shaped payload (see [`Push::gateway`]): for APNs the whole JSON body, for FCM
/// the message's `data` (string values), for Web Push the JSON the service worker gets. The
/// composer fits it to the provider's size limit; a channel refuses one that does not fit
/// rather than cut into a shape it does not own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayPayload(pub serde_json::Map<String, serde_json::Value>);

impl Push {
    /// Seconds left to live at `now` (0 when expired).
    pub fn ttl_at(&self, now: OffsetDateTime) -> u64 {
        (self.expires_at - now).whole_seconds().max(0) as u64
    }
}

/// Where one delivery goes.
#[expect(
    clippy::large_enum_variant,
    reason = "a target is built once per delivery and moved, never stored in bulk; boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A registered device (a snapshot taken when the delivery was created).
    Device { device: Device },
    /// A webhook endpoint of the app, with the recipient's devices in that app (so a customer
    /// can push through their own infrastructure).
    Webhook {
        endpoint_id: String,
        #[serde(default)]
        devices: Vec<Device>,
    },
    /// An email address (from the user's preferences or their participant record).
    Email { address: String },
}

/// One push on its way to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub id: String,
    pub notification_id: String,
    pub tenant_id: TenantId,
    pub app_id: AppId,
    /// The channel that carries it: a device channel name, or `webhook`.
    pub channel: String,
    pub target: Target,
    pub push: Push,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// What a channel reports for one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    Delivered {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<String>,
    },
    /// Try again later: connect errors, timeouts, 429, 5xx. `after` honours `Retry-After`.
    Retryable {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_ms: Option<u64>,
        reason: String,
        /// The HTTP status, when there was one (circuit breakers count by status).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// The target is gone for good (APNs 410, FCM UNREGISTERED, Web Push 404/410): remove the
    /// device and keep the reason.
    InvalidTarget { reason: String },
    /// Other failures that retrying cannot fix.
    Permanent {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// The request never reached the endpoint's processing: the provider refused it
    /// unprocessed on a connection it was recycling (an HTTP/2 GOAWAY whose last stream id is
    /// below the request's stream, or `REFUSED_STREAM`), or the connection closed before it was
    /// sent — and sending it again on a fresh connection within the attempt did not get through
    /// either. Retried like [`Retryable`](Self::Retryable) (sending it again cannot duplicate
    /// it), but never held against the endpoint: its circuit breaker and health ignore it.
    /// Added after `retryable`; stored histories without it read as before.
    Unsent { reason: String },
}

impl DeliveryOutcome {
    /// Why the attempt did not arrive, in words; `None` when it did.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Delivered { .. } => None,
            Self::Retryable { reason, .. }
            | Self::InvalidTarget { reason }
            | Self::Unsent { reason }
            | Self::Permanent { reason, .. } => Some(reason),
        }
    }
}
