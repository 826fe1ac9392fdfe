//! Signed webhooks (SPEC §2.5, Standard Webhooks): one POST per delivery to an app's webhook
//! endpoint, for the `push_notification.*` event types it subscribes to.
//!
//! Files:
//! - `mod.rs`: the channel: one signed POST per endpoint, the reading of its answer.
//! - `body.rs`: the JSON body.
//! - `sign.rs`: Standard Webhooks signatures.
//! - `tests.rs`: unit tests of the channel.
//!
//! - `webhook-id` is the delivery id, the same on every retry (the receiver's de-duplication
//!   key); `webhook-timestamp` is the wall-clock second of this attempt (receivers compare it
//!   with their own clock), and every attempt is signed afresh.
//! - `webhook-signature` carries one `v1,…` entry per secret of the endpoint (rotation).
//! - The body is rendered once per attempt and exactly those bytes are signed and sent.
//! - The call goes through the guarded [`Outbound`] client (SSRF guard, no redirects) and its
//!   answer is read by [`outbound::classify`], except that 410 means the receiver wants no more
//!   webhooks: a permanent failure saying so.
//!
//! Logs carry the endpoint id and the status only: never the URL, body, tokens or secrets.

mod body;
mod sign;

use std::time::Duration;

use async_trait::async_trait;
use herald_engine::app::{AppConfig, WebhookEndpoint};
use herald_engine::delivery::Channel;
use herald_engine::push::{Delivery, DeliveryOutcome, Target};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub use body::MAX_BODY_BYTES;
pub use sign::{secret_key, sign, signature_header};

use super::outbound::{self, Outbound};
use herald_engine::notify::compose::webhook_event;

/// The `webhook` channel.
pub struct WebhookChannel {
    outbound: Outbound,
    timeout: Duration,
}

impl WebhookChannel {
    /// `timeout` bounds one call (`outbound.timeout_ms`).
    pub fn new(outbound: Outbound, timeout: Duration) -> WebhookChannel {
        WebhookChannel { outbound, timeout }
    }
}

fn permanent(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status: None,
    }
}

/// The key bytes of every secret of `endpoint`, or why they cannot be used.
fn keys(endpoint: &WebhookEndpoint) -> Result<Vec<Vec<u8>>, String> {
    if endpoint.secrets.is_empty() {
        return Err("the webhook endpoint has no signing secret".into());
    }
    endpoint
        .secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            secret_key(s).ok_or_else(|| {
                format!("the webhook endpoint's secrets[{i}] is not a whsec_ secret in base64")
            })
        })
        .collect()
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("ids, digits and base64 are valid header values")
}

/// The endpoint `endpoint_id` of `app` and the event type of `delivery`'s push, if the
/// endpoint still exists and subscribes to that type.
fn subscribed<'a>(
    delivery: &Delivery,
    app: &'a AppConfig,
    endpoint_id: &str,
) -> Result<(&'a WebhookEndpoint, &'static str), DeliveryOutcome> {
    let Some(endpoint) = app.webhooks.iter().find(|w| w.id == endpoint_id) else {
        return Err(permanent("the webhook endpoint was removed"));
    };
    let Some(event_type) = webhook_event(delivery.push.kind) else {
        return Err(permanent(format!(
            "{} pushes have no webhook event type",
            delivery.push.kind.as_str()
        )));
    };
    if !endpoint.events.iter().any(|e| e == event_type) {
        return Err(permanent(format!(
            "the webhook endpoint no longer subscribes to {event_type}"
        )));
    }
    Ok((endpoint, event_type))
}

/// `webhook-id`, `webhook-timestamp` and `webhook-signature` (one entry per key).
fn signed_headers(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("webhook-id"), header(id));
    headers.insert(
        HeaderName::from_static("webhook-timestamp"),
        header(&timestamp.to_string()),
    );
    headers.insert(
        HeaderName::from_static("webhook-signature"),
        header(&signature_header(keys, id, timestamp, body)),
    );
    headers
}

#[async_trait]
impl Channel for WebhookChannel {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        let Target::Webhook {
            endpoint_id,
            devices,
        } = &delivery.target
        else {
            return permanent("the webhook channel only carries webhook targets");
        };
        let (endpoint, event_type) = match subscribed(delivery, app, endpoint_id) {
            Ok(subscribed) => subscribed,
            Err(outcome) => return outcome,
        };
        let keys = match keys(endpoint) {
            Ok(keys) => keys,
            Err(why) => return permanent(why),
        };
        let body = body::render(delivery, event_type, app.content.mode, devices);
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = signed_headers(&keys, &delivery.id, timestamp, &body);
        let (status, outcome) = match self
            .outbound
            .post_json(&endpoint.url, headers, body, self.timeout)
            .await
        {
            // Standard Webhooks: 410 means "disable this endpoint". The target is gone; the
            // delivery core disables the endpoint until an operator re-enables it.
            Ok(answer) if answer.status == 410 => (
                Some(410),
                DeliveryOutcome::InvalidTarget {
                    reason: "the receiver answered 410 Gone: it asked for this webhook endpoint to be disabled".into(),
                },
            ),
            Ok(answer) => (Some(answer.status), outbound::classify(&answer)),
            Err(failure) => (None, failure),
        };
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            webhook.endpoint_id = %endpoint.id,
            status,
            delivered = matches!(outcome, DeliveryOutcome::Delivered { .. }),
            "webhook attempt"
        );
        outcome
    }

    fn endpoint_key(&self, delivery: &Delivery, _app: &AppConfig) -> String {
        let endpoint = match &delivery.target {
            Target::Webhook { endpoint_id, .. } => endpoint_id.as_str(),
            Target::Device { .. } | Target::Email { .. } => "",
        };
        format!(
            "webhook:{}:{}:{}",
            delivery.tenant_id, delivery.app_id, endpoint
        )
    }
}

#[cfg(test)]
mod tests;
