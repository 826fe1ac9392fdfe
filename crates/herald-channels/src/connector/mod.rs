//! The connector channel (SPEC §2.5): the customer's own push backend, called once per
//! `connector` device with a payload the customer agreed on.
//!
//! Files:
//! - `mod.rs`: the channel: one call, the endpoint key.
//! - `request.rs`: the variables, the body and the headers (with `X-hmac`) of one call.
//! - [`template`]: payload templates (unit tests in `template/tests.rs`).
//! - [`presets`]: the built-in payload shapes.
//! - `tests.rs`: unit tests of the channel.
//!
//! `POST connector.callback_url` with the body rendered from a payload template
//! ([`template`]): the `sdk_adapter` preset
//! (`{authToken, deviceToken, payload: {aps: {alert: {title, body}, badge, sound}, …}}`, a
//! silent `aps` for reads and revoked calls), the `push_proxy` preset (exactly
//! `{eventId, conversationId, customerId, sessionId, eventDate}`, metadata only), the `gms`
//! preset (GMS's HTTP push: `{deviceToken, authToken, message: {message, serviceId,
//! lastTranscript}, tag: "chat.newagentmessage"}`; pushes without GMS content, reads and calls,
//! as `{deviceToken, authToken, kind, serviceId, position}`), or the app's
//! own `template` (`custom`). Presets are templates too ([`presets`]): one code path.
//!
//! Variables: `device_token` (the device's token, opaque, passed through untouched),
//! `auth_token` (the app's `connector.auth_token`), `event_id` (the id of the event behind the
//! push; the notification id when there is none), `event_date` (RFC 3339; when that event was
//! recorded, else when the push was made), `conversation_id`, `customer_id` (the recipient's
//! user id), `session_id` (= the device token), `title`, `body`, `badge` (absolute), `unread`,
//! `message_count`, `missed_calls`, `kind`, `silent`, `position`, `call_id`, `sender_name`,
//! `data` (a map), `push` (the whole push), `notification_id`, `delivery_id` (stable across
//! retries: a de-duplication key), `app_id`, `platform`, `locale`, `gms` (a GMS-shaped push's
//! `{message: {message, serviceId, lastTranscript}, tag}`). What a push lacks is `none`.
//!
//! Headers: the app's `connector.headers`, and `X-hmac` when `connector.hmac_secret` is set
//! (required by `push_proxy`): lowercase hex HMAC-SHA256(secret, event_id + session_id).
//! Time limit: the app's `connector.timeout_ms`, else the server's `outbound.timeout_ms`. The
//! answer is read by [`outbound::classify`]; a template that cannot be rendered is a permanent
//! failure with the reason. Logs never carry the token, the payload or the secrets.

pub mod presets;
mod request;
pub mod template;

use std::time::Duration;

use async_trait::async_trait;
use herald_engine::app::AppConfig;
use herald_engine::delivery::Channel;
use herald_engine::push::{Delivery, DeliveryOutcome, Target};

pub use self::request::{signature, variables};
pub use self::template::validate_template;

use super::outbound::{self, Outbound};

pub struct ConnectorChannel {
    outbound: Outbound,
    default_timeout: Duration,
}

impl ConnectorChannel {
    /// `default_timeout_ms`: the server's `outbound.timeout_ms`, for apps without their own.
    pub fn new(outbound: Outbound, default_timeout_ms: u64) -> ConnectorChannel {
        ConnectorChannel {
            outbound,
            default_timeout: Duration::from_millis(default_timeout_ms),
        }
    }
}

fn permanent(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status: None,
    }
}

/// The callback's host (and port, when the URL names one).
fn callback_host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => "-".to_string(),
        },
        Err(_) => "-".to_string(),
    }
}

fn label(outcome: &DeliveryOutcome) -> &'static str {
    match outcome {
        DeliveryOutcome::Delivered { .. } => "delivered",
        DeliveryOutcome::Retryable { .. } => "retryable",
        DeliveryOutcome::InvalidTarget { .. } => "invalid_target",
        DeliveryOutcome::Permanent { .. } => "permanent",
        DeliveryOutcome::Unsent { .. } => "unsent",
    }
}

#[async_trait]
impl Channel for ConnectorChannel {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        let Target::Device { device } = &delivery.target else {
            return permanent("the connector channel delivers to devices only");
        };
        let Some(section) = &app.connector else {
            return permanent("the app has no connector section");
        };
        let (headers, body) = match request::call(delivery, device, section) {
            Ok(call) => call,
            Err(outcome) => return outcome,
        };
        let timeout = section
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.default_timeout);
        let outcome = match self
            .outbound
            .post_json(&section.callback_url, headers, body, timeout)
            .await
        {
            Ok(answer) => outbound::classify(&answer),
            Err(outcome) => outcome,
        };
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            app.id = %delivery.app_id,
            delivery.id = %delivery.id,
            attempt = delivery.attempt,
            outcome = label(&outcome),
            "connector call made"
        );
        outcome
    }

    fn endpoint_key(&self, delivery: &Delivery, app: &AppConfig) -> String {
        let host = app
            .connector
            .as_ref()
            .map(|c| callback_host(&c.callback_url))
            .unwrap_or_else(|| "-".to_string());
        format!(
            "connector:{}:{}:{host}",
            delivery.tenant_id, delivery.app_id
        )
    }
}

#[cfg(test)]
mod tests;
