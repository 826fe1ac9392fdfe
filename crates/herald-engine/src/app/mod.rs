//! App (push configuration) model. An app holds the rules, the content mode and the channel
//! sections of one client application. Channel sections can be stored before their channels
//! are built; their shape is checked here, their credentials are checked by the server (which
//! has the crypto to parse keys).
//!
//! Secrets (private keys, passwords, signing secrets) are listed in [`SECRET_PATHS`]. The
//! server seals them at rest and masks them on read; a PUT that sends the mask back keeps
//! the stored value, so GET-edit-PUT round trips work without re-entering secrets.
//!
//! - this file: the document's types and defaults;
//! - [`check`]: shape checks that need no crypto (`AppConfig::validate`);
//! - [`matrix`]: the Matrix push gateway's app ids;
//! - [`secrets`]: where secrets live in a document, masking, taking and restoring them.

mod check;
mod matrix;
mod secrets;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::participant::Role;

pub use matrix::{DEFAULT_MATRIX_TTL_S, MatrixApp, MatrixChannel, MatrixSection};
pub use secrets::{
    SECRET_MASK, SECRET_PATHS, mask_secrets, restore_secrets, take_secrets, visit_secrets,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecondaryRule {
    #[default]
    Always,
    Never,
}

/// `rules.secondary_rule`: one rule for every secondary participant (`"never"`), or one per
/// role (`{"agent": "never", "visitor": "always"}`; a role left out keeps `always`). A
/// document keeps the form it was stored in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SecondaryRules {
    One(SecondaryRule),
    PerRole(BTreeMap<Role, SecondaryRule>),
}

impl Default for SecondaryRules {
    fn default() -> Self {
        SecondaryRules::One(SecondaryRule::Always)
    }
}

impl From<SecondaryRule> for SecondaryRules {
    fn from(rule: SecondaryRule) -> Self {
        SecondaryRules::One(rule)
    }
}

impl SecondaryRules {
    /// The rule for a secondary participant with `role`.
    pub fn for_role(&self, role: Role) -> SecondaryRule {
        match self {
            SecondaryRules::One(rule) => *rule,
            SecondaryRules::PerRole(by_role) => by_role.get(&role).copied().unwrap_or_default(),
        }
    }
}

impl<'de> Deserialize<'de> for SecondaryRules {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        const EXPECTED: &str = "must be \"always\", \"never\", or an object of role → \"always\" | \"never\" (e.g. {\"agent\": \"never\"})";
        let rule = |v: &Value| match v.as_str() {
            Some("always") => Some(SecondaryRule::Always),
            Some("never") => Some(SecondaryRule::Never),
            _ => None,
        };
        match Value::deserialize(d)? {
            Value::Object(map) => {
                let mut by_role = BTreeMap::new();
                for (key, value) in &map {
                    let role = Role::parse(key).ok_or_else(|| {
                        D::Error::custom(format!(
                            "{key:?} is not a role; expected visitor, agent, bot or system"
                        ))
                    })?;
                    let r = rule(value).ok_or_else(|| {
                        D::Error::custom(format!("{key}: must be \"always\" or \"never\""))
                    })?;
                    by_role.insert(role, r);
                }
                Ok(SecondaryRules::PerRole(by_role))
            }
            other => rule(&other)
                .map(SecondaryRules::One)
                .ok_or_else(|| D::Error::custom(EXPECTED)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContentMode {
    #[default]
    Full,
    MetadataOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    pub notify_roles: Vec<Role>,
    pub bot_message_roles: Vec<Role>,
    pub secondary_rule: SecondaryRules,
    /// Event types that never trigger a push.
    pub filter: Vec<String>,
    pub grace_delay_ms: u64,
    pub coalesce_window_ms: u64,
    pub email_delay_ms: u64,
    pub chat_ttl_s: u64,
    pub auto_join_calls: bool,
    pub left_notice: LeftNotice,
}

/// `rules.left_notice`: when a user in one of `roles` goes away — their last live session goes
/// to the background or ends (a dropped one once its reconnect grace is over) — Herald posts a
/// `notice.custom` with `text` into each of their conversations, so the other side knows
/// (GMS's "customer is not online").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeftNotice {
    pub enabled: bool,
    pub text: String,
    pub roles: Vec<Role>,
}

impl Default for LeftNotice {
    fn default() -> Self {
        Self {
            enabled: false,
            text: "customer is not online".into(),
            roles: vec![Role::Visitor],
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            notify_roles: vec![Role::Visitor, Role::Agent],
            bot_message_roles: vec![Role::Visitor, Role::Agent, Role::Bot, Role::System],
            secondary_rule: SecondaryRules::default(),
            filter: vec![
                "notice.typing_started".into(),
                "notice.typing_stopped".into(),
            ],
            grace_delay_ms: 5_000,
            coalesce_window_ms: 3_000,
            email_delay_ms: 600_000,
            chat_ttl_s: 3_600,
            auto_join_calls: false,
            left_notice: LeftNotice::default(),
        }
    }
}

/// `content.shape`: Herald's own push content, or in addition the shape Genesys GMS chat
/// clients read (`message`, `serviceId`, `lastTranscript`, tagged `chat.newagentmessage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContentShape {
    #[default]
    Herald,
    Gms,
}

/// `content.gms`: what a GMS-shaped push says besides its transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GmsContent {
    /// The notification message.
    pub message: String,
}

impl Default for GmsContent {
    fn default() -> Self {
        Self {
            message: "New message from Agent".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Content {
    pub mode: ContentMode,
    /// How many recent transcript lines a `full` push carries.
    pub transcript_lines: u8,
    pub shape: ContentShape,
    pub gms: GmsContent,
}

impl Default for Content {
    fn default() -> Self {
        Self {
            mode: ContentMode::Full,
            transcript_lines: 3,
            shape: ContentShape::Herald,
            gms: GmsContent::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsSection {
    pub team_id: String,
    pub key_id: String,
    /// The `.p8` PKCS#8 PEM. Secret.
    pub private_key: String,
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    /// RSA PKCS#8 PEM. Secret.
    pub private_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_id: Option<String>,
    pub token_uri: String,
    /// Google's JSON carries more fields (auth_uri, client_id, …); they are kept, unused.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmSection {
    pub service_account: ServiceAccount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPushSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapid_public_key: Option<String>,
    /// base64url 32-byte P-256 scalar. Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapid_private_key: Option<String>,
    pub subject: String,
    /// How often each subscription gets a health-check push it must acknowledge (0: never).
    #[serde(default)]
    pub health_check_interval_s: u64,
    /// How long a subscription has to acknowledge before it counts as unhealthy.
    #[serde(default = "default_health_check_timeout_s")]
    pub health_check_timeout_s: u64,
}

fn default_health_check_timeout_s() -> u64 {
    300
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    None,
    #[default]
    Starttls,
    Tls,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub from: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// `whsec_…` secrets; several during a rotation. Secret.
    pub secrets: Vec<String>,
}

pub const WEBHOOK_EVENTS: &[&str] = &[
    "push_notification.new_message",
    "push_notification.read_message",
    "push_notification.incoming_call",
    "push_notification.revoked_call",
    "push_notification.missed_call",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorPreset {
    #[default]
    SdkAdapter,
    PushProxy,
    /// GMS's HTTP push: `{deviceToken, authToken, message: {message, serviceId,
    /// lastTranscript}, tag: "chat.newagentmessage"}` (for apps with `content.shape = "gms"`).
    Gms,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSection {
    pub callback_url: String,
    #[serde(default)]
    pub preset: ConnectorPreset,
    /// The payload template for `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Value>,
    /// Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    /// Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// How deliveries of this app fail and recover (SPEC §3.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryPolicy {
    /// Retry transient failures (exponential backoff with jitter, within the push's TTL).
    /// `false` is the push-proxy preset's behaviour: one attempt only.
    pub retry: bool,
    /// First retry delay; doubles per attempt up to `retry_max_delay_ms`.
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// Most attempts per delivery (the TTL ends retries sooner when it runs out).
    pub max_attempts: u32,
    /// Consecutive counted failures that open an endpoint's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit holds deliveries back before a probe.
    pub breaker_cool_down_ms: u64,
    /// HTTP statuses that count towards opening the circuit; transport errors (no status)
    /// always count.
    pub breaker_statuses: Vec<u16>,
    /// Most deliveries in flight to one endpoint at once.
    pub max_concurrency: u32,
    /// An endpoint failing without a success for this long is disabled until an operator
    /// re-enables it (0: never).
    pub disable_after_ms: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            retry: true,
            retry_base_delay_ms: 1_000,
            retry_max_delay_ms: 300_000,
            max_attempts: 12,
            breaker_failures: 10,
            breaker_cool_down_ms: 30_000,
            breaker_statuses: vec![408, 429, 500, 502, 503, 504],
            max_concurrency: 64,
            disable_after_ms: 0,
        }
    }
}

/// The whole app document of `PUT /v1/apps/{app_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub rules: Rules,
    #[serde(default)]
    pub content: Content,
    #[serde(default)]
    pub delivery: DeliveryPolicy,
    /// Overrides of the built-in texts: kind → locale → `{title, body}`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub templates: crate::notify::content::Templates,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns: Option<ApnsSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcm: Option<FcmSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webpush: Option<WebPushSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorSection>,
    /// The Matrix app ids this app serves through the Matrix push gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MatrixSection>,
}

#[cfg(test)]
mod tests;
