//! Shape checks of an app document that need no crypto. Key material is checked by the
//! channels (`herald_channels::credentials`) before an app is stored.

use super::*;
use crate::validate::{self, Invalid};

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
        non_empty(
            "rules.left_notice.text",
            &self.rules.left_notice.text,
            LEFT_NOTICE_TEXT_BYTES,
        )?;
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
        non_empty(
            "content.gms.message",
            &self.content.gms.message,
            GMS_MESSAGE_BYTES,
        )?;
        // The GMS shape exists to carry the agent's words; `metadata_only` promises none.
        if self.content.shape == ContentShape::Gms && self.content.mode == ContentMode::MetadataOnly
        {
            return Err(Invalid::new(
                "content.shape",
                "gms carries the transcript's text and cannot be combined with metadata_only",
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
            if c.preset == ConnectorPreset::Gms && self.content.shape != ContentShape::Gms {
                return Err(Invalid::new(
                    "connector.preset",
                    "gms sends the GMS shape, which needs content.shape = \"gms\"",
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
        if let Some(matrix) = &self.matrix {
            matrix.validate(self)?;
        }
        Ok(())
    }
}

/// A notice is one line of the transcript, not a message.
const LEFT_NOTICE_TEXT_BYTES: usize = 1024;
/// A notification's headline, not its content.
const GMS_MESSAGE_BYTES: usize = 256;

/// A Standard Webhooks symmetric secret: `whsec_` + base64 (padding optional) of 24–64 bytes.
pub(super) fn webhook_secret_ok(secret: &str) -> bool {
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
