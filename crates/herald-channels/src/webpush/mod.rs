//! Web Push (SPEC §2.5; RFC 8030, 8291, 8292): one `POST <subscription endpoint>` per delivery
//! with the push encrypted for the browser.
//!
//! Files:
//! - `mod.rs`: the channel: the request (encrypted body, headers), one send, the reading of
//!   the push service's answer.
//! - [`ece`]: RFC 8291 encryption.
//! - [`payload`]: the plaintext and the headers that steer it.
//! - [`vapid`]: RFC 8292 VAPID keys and tokens.
//! - `tests.rs`: unit tests of the channel.
//!
//! - **Body** ([`ece`]): RFC 8291 `aes128gcm`, one record, a fresh salt and ephemeral key per
//!   message; the plaintext ([`payload`]) is JSON cut to 3993 bytes by shortening text.
//! - **VAPID** ([`vapid`]): `Authorization: vapid t=<ES256 JWT>, k=<public key>` with the app's
//!   `webpush` keys, `aud` = the endpoint's origin, `sub` = `webpush.subject`; one JWT per
//!   (key, audience) reused for 11 of its 12 hours.
//! - **Headers**: `TTL` = seconds the push has left, `Urgency` (`high` for calls, `low` for
//!   silent pushes, `normal` otherwise), `Topic` = a 32-character hash of the collapse key (a
//!   newer push of a conversation replaces an undelivered older one), `Content-Encoding:
//!   aes128gcm`, `Content-Type: application/octet-stream`.
//! - **Answers**: 2xx delivered; 404 and 410 mean the subscription is gone (RFC 8030 says
//!   404, real services say 410) → the device is removed; 413 is our bug → permanent; 429 and
//!   5xx → retry, honouring `Retry-After`; 400/401/403 are configuration errors (VAPID key,
//!   subscription made for another key), not a dead subscription → permanent; redirects are
//!   not followed.
//!
//! Endpoints are user-supplied URLs, so every call goes through the SSRF-guarded
//! [`Outbound`] client. Logs carry ids and statuses only: never endpoints, keys or text.

pub mod ece;
pub mod payload;
pub mod vapid;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_engine::app::AppConfig;
use herald_engine::clock::Clock;
use herald_engine::delivery::Channel;
use herald_engine::device::{Device, DeviceChannel, WebPushSubscription};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, Target};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub use vapid::{generate_vapid_keys, public_key_of};

use super::outbound::{self, Answer, Outbound};
use crate::Settings;
use herald_engine::registry::ChannelRegistry;

/// The longest `TTL` sent: 28 days (push services keep messages for less anyway).
pub const MAX_TTL_SECONDS: u64 = 28 * 24 * 3600;

/// Registers the [`WebPushChannel`] as `webpush`. A call may take at most
/// `outbound.timeout_ms`, and never more than the delivery core's attempt timeout.
pub fn register(
    registry: ChannelRegistry,
    settings: &Settings,
    clock: Arc<dyn Clock>,
    outbound: Outbound,
) -> ChannelRegistry {
    let timeout = Duration::from_millis(
        settings
            .outbound
            .timeout_ms
            .min(settings.attempt_timeout_ms)
            .max(1),
    );
    registry.with(
        "webpush",
        Arc::new(WebPushChannel::new(outbound, clock, timeout)),
    )
}

/// The `webpush` channel.
pub struct WebPushChannel {
    outbound: Outbound,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    vapid: vapid::Vapid,
}

fn permanent(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status: None,
    }
}

fn header(value: &str) -> Result<HeaderValue, DeliveryOutcome> {
    HeaderValue::from_str(value).map_err(|_| permanent("a Web Push header is not valid"))
}

impl WebPushChannel {
    pub fn new(outbound: Outbound, clock: Arc<dyn Clock>, timeout: Duration) -> WebPushChannel {
        WebPushChannel {
            outbound,
            clock,
            timeout,
            vapid: vapid::Vapid::new(),
        }
    }

    /// The request for `delivery` to `device`: endpoint, headers and encrypted body.
    fn request(
        &self,
        delivery: &Delivery,
        device: &Device,
        app: &AppConfig,
    ) -> Result<(String, HeaderMap, Vec<u8>), DeliveryOutcome> {
        let Some(section) = &app.webpush else {
            return Err(permanent("the app has no webpush section"));
        };
        if device.channel != DeviceChannel::Webpush {
            return Err(permanent(format!(
                "a {} device cannot be reached through Web Push",
                device.channel.as_str()
            )));
        }
        let Some(subscription) = &device.subscription else {
            return Err(DeliveryOutcome::InvalidTarget {
                reason: "the webpush device has no subscription".into(),
            });
        };
        let audience = vapid::audience(&subscription.endpoint).map_err(permanent)?;
        // Push services check `exp` against their own clocks: sign with the wall clock.
        let authorization = self
            .vapid
            .authorization(section, &audience, time::OffsetDateTime::now_utc())
            .map_err(permanent)?;

        let body = encrypted_body(delivery, subscription)?;
        let ttl = delivery.push.ttl_at(self.clock.now()).min(MAX_TTL_SECONDS);
        let headers = request_headers(&delivery.push, ttl, &authorization)?;
        Ok((subscription.endpoint.clone(), headers, body))
    }

    async fn send(&self, delivery: &Delivery, device: &Device, app: &AppConfig) -> DeliveryOutcome {
        let (endpoint, headers, body) = match self.request(delivery, device, app) {
            Ok(request) => request,
            Err(outcome) => return outcome,
        };
        let bytes = body.len();
        let (status, outcome) = match self
            .outbound
            .post_bytes(&endpoint, headers, body, self.timeout)
            .await
        {
            Ok(answer) => (Some(answer.status), classify(&answer)),
            Err(failure) => (None, failure),
        };
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            device.id = %device.id,
            body_bytes = bytes,
            status,
            delivered = matches!(outcome, DeliveryOutcome::Delivered { .. }),
            "Web Push attempt"
        );
        outcome
    }
}

/// The push of `delivery` encrypted for `subscription` (RFC 8291).
fn encrypted_body(
    delivery: &Delivery,
    subscription: &WebPushSubscription,
) -> Result<Vec<u8>, DeliveryOutcome> {
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok();
    let (Some(p256dh), Some(auth)) = (
        decode(&subscription.keys.p256dh),
        decode(&subscription.keys.auth),
    ) else {
        return Err(DeliveryOutcome::InvalidTarget {
            reason: "the subscription's keys are not base64url".into(),
        });
    };
    // A gateway's payload goes as it came (its composer fitted it); too long is refused below.
    let plaintext = match &delivery.push.gateway {
        Some(gateway) => serde_json::to_vec(gateway).expect("JSON values always serialise"),
        None => payload::render(delivery),
    };
    ece::encrypt(&plaintext, &p256dh, &auth).map_err(|e| match e {
        ece::EceError::TooLong(_) => permanent(e.to_string()),
        ece::EceError::BadPublicKey | ece::EceError::BadAuthSecret => {
            DeliveryOutcome::InvalidTarget {
                reason: e.to_string(),
            }
        }
    })
}

/// `Authorization`, `TTL` (`ttl` seconds), `Urgency`, `Topic` and the content headers.
fn request_headers(
    push: &Push,
    ttl: u64,
    authorization: &str,
) -> Result<HeaderMap, DeliveryOutcome> {
    let mut headers = HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, header(authorization)?);
    headers.insert(HeaderName::from_static("ttl"), header(&ttl.to_string())?);
    headers.insert(
        HeaderName::from_static("urgency"),
        HeaderValue::from_static(payload::urgency_of(push)),
    );
    // A gateway's push replaces nothing unless its client asked (an empty collapse key).
    if !push.collapse_key.is_empty() {
        headers.insert(
            HeaderName::from_static("topic"),
            header(&payload::topic(&push.collapse_key))?,
        );
    }
    headers.insert(
        reqwest::header::CONTENT_ENCODING,
        HeaderValue::from_static("aes128gcm"),
    );
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(headers)
}

/// What a push service's answer means (RFC 8030 §5, §7; RFC 8292 §4).
pub fn classify(answer: &Answer) -> DeliveryOutcome {
    let status = answer.status;
    match status {
        200..=299 => DeliveryOutcome::Delivered { provider_id: None },
        404 | 410 => DeliveryOutcome::InvalidTarget {
            reason: format!(
                "the push service answered {status}: the subscription has expired or was unsubscribed"
            ),
        },
        413 => DeliveryOutcome::Permanent {
            reason: "the push service answered 413: the message is too large".into(),
            status: Some(status),
        },
        400 | 401 | 403 => DeliveryOutcome::Permanent {
            reason: format!(
                "the push service answered {status}: the request, the VAPID key or the subscription's applicationServerKey is wrong"
            ),
            status: Some(status),
        },
        _ => outbound::classify(answer),
    }
}

#[async_trait]
impl Channel for WebPushChannel {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        match &delivery.target {
            Target::Device { device } => self.send(delivery, device, app).await,
            Target::Webhook { .. } | Target::Email { .. } => {
                permanent("the Web Push channel only carries device targets")
            }
        }
    }

    fn endpoint_key(&self, delivery: &Delivery, _app: &AppConfig) -> String {
        let origin = match &delivery.target {
            Target::Device { device } => device
                .subscription
                .as_ref()
                .and_then(|s| vapid::audience(&s.endpoint).ok()),
            Target::Webhook { .. } | Target::Email { .. } => None,
        };
        format!(
            "webpush:{}:{}",
            origin.as_deref().unwrap_or("unknown"),
            delivery.app_id
        )
    }
}

#[cfg(test)]
mod tests;
