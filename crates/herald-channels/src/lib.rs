//! Herald's channels: the engine's `Channel` port implemented for each way Herald reaches a
//! target. A channel only turns one delivery into one provider call and classifies the answer
//! (`Delivered`, `Retryable`, `InvalidTarget`, `Permanent`); retries, breakers and bulkheads are
//! the delivery core's (`herald-runtime`). Channels are configured from [`Settings`] and each
//! app's own section; they never see the server's configuration, the API or the engine task.
//!
//! Layout:
//! - [`apns`]: HTTP/2 to Apple (provider tokens, payload fitting, Apple's reasons).
//! - [`fcm`]: FCM HTTP v1 (service-account OAuth, messages, error mapping).
//! - [`webpush`]: RFC 8291 encryption, RFC 8292 VAPID, the push service's answers.
//! - [`email`]: SMTP digests and call emails (lettre), their texts, bodies and MIME message.
//! - [`webhook`]: Standard Webhooks, signed per endpoint.
//! - [`connector`]: the customer's own push backend (presets and templates).
//! - [`outbound`]: the SSRF-guarded HTTP client every customer-supplied URL goes through
//!   (address checks and guarded resolver in `outbound/guard.rs`), and the transport-error
//!   classification every HTTP channel shares ([`outbound::transport_failure`]).
//! - [`credentials`]: an app's channel sections checked before the app is stored.
//! - [`builtin`]: the registry of all of them by delivery channel name.
//!
//! Each channel's `mod.rs` opens with a map of its files.

pub mod apns;
pub mod connector;
pub mod credentials;
pub mod email;
pub mod fcm;
pub mod outbound;
pub mod webhook;
pub mod webpush;

use herald_engine::registry::ChannelRegistry;

pub use outbound::OutboundConfig;

/// What the channels take from the server's configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Customer-supplied URLs: the SSRF allow-list and the call time limit.
    pub outbound: OutboundConfig,
    /// The delivery core's limit on one attempt; no channel waits longer.
    pub attempt_timeout_ms: u64,
}

/// The channels this server carries, by delivery channel name.
pub fn builtin(
    settings: &Settings,
    clock: std::sync::Arc<dyn herald_engine::clock::Clock>,
) -> Result<ChannelRegistry, String> {
    let outbound = outbound::Outbound::new(outbound::Guard::new(settings.outbound.allow_list()?));
    let registry = ChannelRegistry::default();
    let registry = registry.with(
        "webhook",
        std::sync::Arc::new(webhook::WebhookChannel::new(
            outbound.clone(),
            std::time::Duration::from_millis(settings.outbound.timeout_ms),
        )),
    );
    let registry = registry.with(
        "connector",
        std::sync::Arc::new(connector::ConnectorChannel::new(
            outbound.clone(),
            settings.outbound.timeout_ms,
        )),
    );
    let registry = fcm::register(registry, settings, clock.clone());
    let registry = email::register(registry, settings);
    let registry = webpush::register(registry, settings, clock.clone(), outbound.clone());
    let registry = apns::register(registry, settings, clock);
    Ok(registry)
}
