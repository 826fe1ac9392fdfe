//! App (push configuration) model. An app holds the rules, the content mode and the channel
//! sections of one client application. Channel sections can be stored before their channels
//! are built; their shape is checked here, their credentials are checked by the server (which
//! has the crypto to parse keys).
//!
//! Secrets (private keys, passwords, signing secrets) are listed in [`SECRET_PATHS`]. The
//! server seals them at rest and masks them on read; a PUT that sends the mask back keeps
//! the stored value, so GET-edit-PUT round trips work without re-entering secrets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::participant::Role;
use crate::validate::{self, Invalid};

/// What a secret looks like on read.
pub const SECRET_MASK: &str = "********";

/// Where secrets live in an app document: `*` matches every array element.
pub const SECRET_PATHS: &[&[&str]] = &[
    &["apns", "private_key"],
    &["fcm", "service_account", "private_key"],
    &["webpush", "vapid_private_key"],
    &["smtp", "password"],
    &["webhooks", "*", "secrets", "*"],
    &["connector", "hmac_secret"],
    &["connector", "auth_token"],
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecondaryRule {
    #[default]
    Always,
    Never,
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
    pub secondary_rule: SecondaryRule,
    /// Event types that never trigger a push.
    pub filter: Vec<String>,
    pub grace_delay_ms: u64,
    pub coalesce_window_ms: u64,
    pub email_delay_ms: u64,
    pub chat_ttl_s: u64,
    pub auto_join_calls: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            notify_roles: vec![Role::Visitor, Role::Agent],
            bot_message_roles: vec![Role::Visitor, Role::Agent, Role::Bot, Role::System],
            secondary_rule: SecondaryRule::Always,
            filter: vec![
                "notice.typing_started".into(),
                "notice.typing_stopped".into(),
            ],
            grace_delay_ms: 5_000,
            coalesce_window_ms: 3_000,
            email_delay_ms: 600_000,
            chat_ttl_s: 3_600,
            auto_join_calls: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Content {
    pub mode: ContentMode,
    /// How many recent transcript lines a `full` push carries.
    pub transcript_lines: u8,
}

impl Default for Content {
    fn default() -> Self {
        Self {
            mode: ContentMode::Full,
            transcript_lines: 3,
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
}

impl AppConfig {
    /// Shape checks that need no crypto. Key material is checked by the server.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(name) = &self.name {
            validate::text("name", name, 256)?;
        }
        for (i, t) in self.rules.filter.iter().enumerate() {
            if !crate::event::EVENT_TYPES.contains(&t.as_str()) {
                return Err(Invalid::new(
                    format!("rules.filter[{i}]"),
                    "is not an event type",
                ));
            }
        }
        let day_ms = 86_400_000;
        for (field, v) in [
            ("grace_delay_ms", self.rules.grace_delay_ms),
            ("coalesce_window_ms", self.rules.coalesce_window_ms),
            ("email_delay_ms", self.rules.email_delay_ms),
        ] {
            if v > day_ms {
                return Err(Invalid::new(
                    format!("rules.{field}"),
                    "must be at most one day",
                ));
            }
        }
        if !(1..=2_419_200).contains(&self.rules.chat_ttl_s) {
            return Err(Invalid::new(
                "rules.chat_ttl_s",
                "must be between 1 s and 28 days",
            ));
        }
        crate::notify::content::validate(&self.templates)?;
        let d = &self.delivery;
        if d.retry_base_delay_ms == 0 || d.retry_base_delay_ms > d.retry_max_delay_ms {
            return Err(Invalid::new(
                "delivery.retry_base_delay_ms",
                "must be at least 1 and at most retry_max_delay_ms",
            ));
        }
        if d.max_attempts == 0 || d.max_attempts > 100 {
            return Err(Invalid::new(
                "delivery.max_attempts",
                "must be between 1 and 100",
            ));
        }
        if d.breaker_failures == 0 {
            return Err(Invalid::new(
                "delivery.breaker_failures",
                "must be at least 1",
            ));
        }
        if d.max_concurrency == 0 || d.max_concurrency > 10_000 {
            return Err(Invalid::new(
                "delivery.max_concurrency",
                "must be between 1 and 10000",
            ));
        }
        if let Some(i) = d
            .breaker_statuses
            .iter()
            .position(|s| !(100..=599).contains(s))
        {
            return Err(Invalid::new(
                format!("delivery.breaker_statuses[{i}]"),
                "must be an HTTP status",
            ));
        }
        let most_lines = crate::notify::store::MAX_TRANSCRIPT_LINES;
        if usize::from(self.content.transcript_lines) > most_lines {
            return Err(Invalid::new(
                "content.transcript_lines",
                format!("must be at most {most_lines}"),
            ));
        }
        if let Some(apns) = &self.apns {
            fixed_id("apns.team_id", &apns.team_id)?;
            fixed_id("apns.key_id", &apns.key_id)?;
            non_empty("apns.topic", &apns.topic, 255)?;
            opt_url("apns.base_url", apns.base_url.as_deref())?;
        }
        if let Some(fcm) = &self.fcm {
            non_empty(
                "fcm.service_account.project_id",
                &fcm.service_account.project_id,
                255,
            )?;
            non_empty(
                "fcm.service_account.client_email",
                &fcm.service_account.client_email,
                255,
            )?;
            url(
                "fcm.service_account.token_uri",
                &fcm.service_account.token_uri,
            )?;
            opt_url("fcm.base_url", fcm.base_url.as_deref())?;
        }
        if let Some(wp) = &self.webpush
            && !(wp.subject.starts_with("mailto:") || wp.subject.starts_with("https:"))
        {
            return Err(Invalid::new(
                "webpush.subject",
                "must be a mailto: or https: contact",
            ));
        }
        if let Some(smtp) = &self.smtp {
            non_empty("smtp.host", &smtp.host, 255)?;
            non_empty("smtp.from", &smtp.from, 320)?;
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let at = format!("webhooks[{i}]");
            non_empty(&format!("{at}.id"), &w.id, 64)?;
            if !ids.insert(&w.id) {
                return Err(Invalid::new(format!("{at}.id"), "is used twice"));
            }
            url(&format!("{at}.url"), &w.url)?;
            for (j, e) in w.events.iter().enumerate() {
                if !WEBHOOK_EVENTS.contains(&e.as_str()) {
                    return Err(Invalid::new(
                        format!("{at}.events[{j}]"),
                        format!("must be one of {}", WEBHOOK_EVENTS.join(", ")),
                    ));
                }
            }
            if w.secrets.is_empty() {
                return Err(Invalid::new(
                    format!("{at}.secrets"),
                    "needs at least one whsec_ secret",
                ));
            }
            for (j, s) in w.secrets.iter().enumerate() {
                if !webhook_secret_ok(s) {
                    return Err(Invalid::new(
                        format!("{at}.secrets[{j}]"),
                        "must be whsec_ followed by the base64 of 24 to 64 random bytes",
                    ));
                }
            }
        }
        if let Some(c) = &self.connector {
            url("connector.callback_url", &c.callback_url)?;
            if c.preset == ConnectorPreset::Custom && c.template.is_none() {
                return Err(Invalid::new(
                    "connector.template",
                    "is required with the custom preset",
                ));
            }
            if c.preset == ConnectorPreset::PushProxy && c.hmac_secret.is_none() {
                return Err(Invalid::new(
                    "connector.hmac_secret",
                    "is required with the push_proxy preset",
                ));
            }
            if let Some(t) = c.timeout_ms
                && !(1..=60_000).contains(&t)
            {
                return Err(Invalid::new(
                    "connector.timeout_ms",
                    "must be between 1 and 60000",
                ));
            }
        }
        Ok(())
    }
}

/// A Standard Webhooks symmetric secret: `whsec_` + base64 (padding optional) of 24–64 bytes.
fn webhook_secret_ok(secret: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD_NO_PAD.decode(b64.trim_end_matches('=')).ok())
        .is_some_and(|key| (24..=64).contains(&key.len()))
}

fn non_empty(path: &str, v: &str, max: usize) -> Result<(), Invalid> {
    if v.trim().is_empty() {
        return Err(Invalid::new(path, "must not be empty"));
    }
    validate::text(path, v, max)
}

/// Apple team and key ids are 10 alphanumeric characters.
fn fixed_id(path: &str, v: &str) -> Result<(), Invalid> {
    if v.len() != 10 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Invalid::new(path, "must be 10 letters or digits"));
    }
    Ok(())
}

fn url(path: &str, v: &str) -> Result<(), Invalid> {
    validate::text(path, v, 2048)?;
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(Invalid::new(path, "must be an absolute http(s) URL")),
    }
}

fn opt_url(path: &str, v: Option<&str>) -> Result<(), Invalid> {
    v.map_or(Ok(()), |v| url(path, v))
}

/// Calls `f` with the JSON pointer and value of every secret present in `doc`.
pub fn visit_secrets(doc: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    fn walk(node: &mut Value, pattern: &[&str], at: String, f: &mut dyn FnMut(&str, &mut Value)) {
        let Some((head, rest)) = pattern.split_first() else {
            if !node.is_null() {
                f(&at, node);
            }
            return;
        };
        match (*head, node) {
            ("*", Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, rest, format!("{at}/{i}"), f);
                }
            }
            (key, Value::Object(map)) => {
                if let Some(child) = map.get_mut(key) {
                    walk(child, rest, format!("{at}/{key}"), f);
                }
            }
            _ => {}
        }
    }
    for pattern in SECRET_PATHS {
        walk(doc, pattern, String::new(), f);
    }
}

/// Replaces every secret with the mask.
pub fn mask_secrets(doc: &mut Value) {
    visit_secrets(doc, &mut |_, v| *v = Value::from(SECRET_MASK));
}

/// Takes the secrets out of `doc` (leaving the mask) and returns them by JSON pointer.
pub fn take_secrets(doc: &mut Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    visit_secrets(doc, &mut |at, v| {
        if let Some(s) = v.as_str() {
            out.insert(at.to_string(), s.to_string());
        }
        *v = Value::from(SECRET_MASK);
    });
    out
}

/// Puts secrets back. A masked value in `doc` with no stored secret at its pointer is
/// reported, so a client cannot "keep" a secret that never existed.
pub fn restore_secrets(doc: &mut Value, secrets: &BTreeMap<String, String>) -> Result<(), Invalid> {
    let mut missing = None;
    visit_secrets(doc, &mut |at, v| {
        if v.as_str() == Some(SECRET_MASK) {
            match secrets.get(at) {
                Some(s) => *v = Value::from(s.as_str()),
                None => missing = Some(at.trim_start_matches('/').replace('/', ".")),
            }
        }
    });
    match missing {
        Some(path) => Err(Invalid::new(
            path,
            "is masked but no stored secret exists here; send the real value",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_taken_masked_and_restored() {
        let mut doc = json!({
            "smtp": {"host": "h", "port": 25, "from": "a@b", "password": "pw"},
            "webhooks": [{"id": "w", "url": "https://x", "events": [], "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]}]
        });
        let original = doc.clone();
        let secrets = take_secrets(&mut doc);
        assert_eq!(secrets.len(), 3);
        assert_eq!(doc["smtp"]["password"], SECRET_MASK);
        assert_eq!(doc["webhooks"][0]["secrets"][1], SECRET_MASK);
        restore_secrets(&mut doc, &secrets).unwrap();
        assert_eq!(doc, original);
    }

    #[test]
    fn a_mask_without_a_stored_secret_is_refused() {
        let mut doc = json!({"smtp": {"password": SECRET_MASK}});
        assert_eq!(
            restore_secrets(&mut doc, &BTreeMap::new())
                .unwrap_err()
                .path,
            "smtp.password"
        );
    }

    #[test]
    fn a_push_quotes_at_most_the_transcript_lines_the_engine_reads() {
        let lines = |n: usize| -> AppConfig {
            serde_json::from_value(json!({"content": {"transcript_lines": n}})).unwrap()
        };
        let most = crate::notify::store::MAX_TRANSCRIPT_LINES;
        assert!(lines(most).validate().is_ok());
        let refused = lines(most + 1).validate().unwrap_err();
        assert_eq!(refused.path, "content.transcript_lines");
    }

    #[test]
    fn defaults_follow_the_spec() {
        let cfg: AppConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(cfg.rules.grace_delay_ms, 5_000);
        assert_eq!(cfg.rules.coalesce_window_ms, 3_000);
        assert_eq!(cfg.rules.notify_roles, vec![Role::Visitor, Role::Agent]);
        assert_eq!(
            cfg.rules.filter,
            vec!["notice.typing_started", "notice.typing_stopped"]
        );
    }

    #[test]
    fn webhook_secrets_must_decode_to_24_to_64_bytes() {
        assert!(webhook_secret_ok("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(webhook_secret_ok(
            "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
        ));
        assert!(!webhook_secret_ok("whsec_abc"), "too short");
        assert!(!webhook_secret_ok("whsec_not base64!"));
        assert!(
            !webhook_secret_ok("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "no prefix"
        );
    }

    #[test]
    fn bad_urls_and_ids_name_their_field() {
        let cfg: AppConfig =
            serde_json::from_value(json!({"connector": {"callback_url": "not a url"}})).unwrap();
        assert_eq!(cfg.validate().unwrap_err().path, "connector.callback_url");
        let cfg: AppConfig = serde_json::from_value(
            json!({"apns": {"team_id": "T", "key_id": "K", "private_key": "p", "topic": "t"}}),
        )
        .unwrap();
        assert_eq!(cfg.validate().unwrap_err().path, "apns.team_id");
    }
}
