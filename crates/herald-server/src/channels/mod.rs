//! Channels: the `Channel` port implemented for each way Herald reaches a target. `outbound`
//! is the HTTP client every customer-supplied URL goes through (SSRF guard, no redirects).

pub mod apns;
pub mod connector;
pub mod email;
pub mod fcm;
pub mod outbound;
pub mod webhook;
pub mod webpush;

use crate::config::Config;
use crate::delivery::registry::ChannelRegistry;

/// The channels this server carries, by delivery channel name.
pub fn builtin(
    config: &Config,
    clock: std::sync::Arc<dyn herald_engine::clock::Clock>,
) -> Result<ChannelRegistry, String> {
    let outbound = outbound::Outbound::new(outbound::Guard::new(config.outbound.allow_list()?));
    let registry = ChannelRegistry::default();
    let registry = registry.with(
        "webhook",
        std::sync::Arc::new(webhook::WebhookChannel::new(
            outbound.clone(),
            std::time::Duration::from_millis(config.outbound.timeout_ms),
        )),
    );
    let registry = registry.with(
        "connector",
        std::sync::Arc::new(connector::ConnectorChannel::new(
            outbound.clone(),
            config.outbound.timeout_ms,
        )),
    );
    let registry = fcm::register(registry, config, clock.clone());
    let registry = email::register(registry, config);
    let registry = webpush::register(registry, config, clock.clone(), outbound.clone());
    let registry = apns::register(registry, config, clock);
    Ok(registry)
}
