//! APNs (SPEC §2.5): Apple's HTTP/2 provider API with token authentication.
//!
//! Files:
//! - `mod.rs`: the channel: options, one send, the `Channel` impl.
//! - `pool.rs`: connections (one HTTP/2 pool per base URL, team and key, the warm-up gate) and
//!   reading APNs' answers.
//! - `request.rs`: the device check and the request headers.
//! - [`payload`]: the JSON payload, cut to Apple's limit (unit tests in `payload/tests.rs`).
//! - [`token`]: provider tokens.
//! - [`errors`]: what each answer means.
//!
//! - **Connections.** One HTTP/2 client per (base URL, team, key): APNs binds a connection to
//!   one team and to the key of its first request. `https://` negotiates h2 by ALPN over
//!   rustls; `http://` speaks h2c with prior knowledge (local fakes). hyper multiplexes every
//!   request over one connection and never opens more streams than the server's SETTINGS
//!   allow. The first request on a new pool goes alone (APNs allows one stream until a request
//!   with a valid token), so those SETTINGS are known before requests are multiplexed; without
//!   that, a burst on a fresh connection overshoots and the server refuses the extra streams.
//!   hyper sends keep-alive PINGs (also while idle), drops a connection whose PING goes
//!   unanswered, and opens a new one after a GOAWAY. A request APNs refused unprocessed (a
//!   stream above the GOAWAY's last stream id, `REFUSED_STREAM`, or a connection that closed
//!   before it was sent) is sent again at once inside the attempt
//!   ([`outbound::send_until_processed`]); if it still cannot go, the outcome is
//!   [`DeliveryOutcome::Unsent`], which the circuit breaker ignores, and the pool is kept.
//!   Every request has a connect timeout and a total timeout, so a dead upstream fails as
//!   retryable instead of hanging.
//! - **Provider token** ([`token`]): cached per (team, key), re-signed after 40 minutes,
//!   single-flight, never more often than every 20 minutes.
//! - **Request** ([`payload`]): `apns-push-type` (`alert`, `background` for silent pushes on
//!   an alert token, `voip` on `apns_voip` tokens), `apns-topic` (`.voip` for VoIP),
//!   `apns-priority` (5 for background), `apns-expiration` (the push's TTL),
//!   `apns-collapse-id` (the push's collapse key, at most 64 bytes) and `apns-id` (derived
//!   from the delivery id: stable across retries); the payload cut to 4 KB (5 KB VoIP).
//! - **Answers** ([`errors`]): every reason in Apple's table mapped to delivered / retryable /
//!   invalid target / permanent.
//!
//! The base URL is the operator's configuration (`apns.base_url`), not user input, so this
//! client does not go through the SSRF guard of [`super::outbound`].
//!
//! Logs carry ids, statuses and reasons only: never tokens, payloads or keys.

pub mod errors;
pub mod payload;
mod pool;
mod request;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_engine::app::{ApnsSection, AppConfig};
use herald_engine::clock::Clock;
use herald_engine::delivery::Channel;
use herald_engine::device::Device;
use herald_engine::push::{Delivery, DeliveryOutcome, Target};
use herald_engine::registry::ChannelRegistry;

use self::errors::{Action, Answer};
use self::pool::{ClientKey, Pool, Pools};
use self::token::{Credentials, TokenCache};
use crate::{Settings, outbound};

/// Apple's production endpoint, used when an app sets no `apns.base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.push.apple.com";

/// How the channel talks to APNs.
#[derive(Clone)]
pub struct ApnsOptions {
    /// Bound on opening a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Bound on one request, from sending to the end of the answer.
    pub request_timeout: Duration,
    /// HTTP/2 PING interval, also while idle (Apple: keep connections open, check them with
    /// PING).
    pub ping_interval: Duration,
    /// A PING unanswered for this long closes the connection.
    pub ping_timeout: Duration,
    /// Age at which a cached provider token is replaced (Apple: between 20 and 60 minutes).
    pub token_refresh_after: time::Duration,
    /// If set, the only certificates trusted for `https://` base URLs (PEM); for tests
    /// against a fake with a self-signed certificate. Otherwise the system's roots.
    pub trusted_roots_pem: Vec<Vec<u8>>,
}

impl Default for ApnsOptions {
    fn default() -> Self {
        ApnsOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(20),
            token_refresh_after: token::REFRESH_AFTER,
            trusted_roots_pem: vec![],
        }
    }
}

/// Registers one [`ApnsChannel`] under both `apns` and `apns_voip` (they share connections and
/// provider tokens). A request may take at most the delivery core's attempt timeout, and never
/// more than the default 10 s.
pub fn register(
    registry: ChannelRegistry,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> ChannelRegistry {
    let options = ApnsOptions {
        request_timeout: ApnsOptions::default()
            .request_timeout
            .min(Duration::from_millis(settings.attempt_timeout_ms.max(1))),
        ..ApnsOptions::default()
    };
    let channel = Arc::new(ApnsChannel::new(clock, options));
    registry
        .with("apns", channel.clone())
        .with("apns_voip", channel)
}

/// The `apns` and `apns_voip` channel.
pub struct ApnsChannel {
    options: ApnsOptions,
    tokens: TokenCache,
    pools: Pools,
}

fn permanent(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status: None,
    }
}

fn base_url(section: &ApnsSection) -> &str {
    section
        .base_url
        .as_deref()
        .unwrap_or(DEFAULT_BASE_URL)
        .trim_end_matches('/')
}

fn credentials(section: &ApnsSection) -> Credentials<'_> {
    Credentials {
        team_id: &section.team_id,
        key_id: &section.key_id,
        private_key: &section.private_key,
    }
}

impl ApnsChannel {
    pub fn new(clock: Arc<dyn Clock>, options: ApnsOptions) -> ApnsChannel {
        ApnsChannel {
            tokens: TokenCache::new(clock, options.token_refresh_after),
            options,
            pools: Pools::default(),
        }
    }

    /// How many provider tokens this channel has signed (for tests and metrics).
    pub fn signings(&self) -> u64 {
        self.tokens.signings()
    }

    /// The connection pool for `section`'s base URL, team and key, and its key.
    fn pool(&self, section: &ApnsSection) -> Result<(ClientKey, Arc<Pool>), String> {
        let key: ClientKey = (
            base_url(section).to_string(),
            section.team_id.clone(),
            section.key_id.clone(),
        );
        let pool = self.pools.get(&key, &self.options)?;
        Ok((key, pool))
    }

    /// Sends `delivery` to `device` once and answers what APNs said (the CLI prints it).
    pub async fn send(&self, delivery: &Delivery, device: &Device, app: &AppConfig) -> Sent {
        let Some(section) = &app.apns else {
            return Sent::failed(permanent("the app has no apns section"));
        };
        if let Err(outcome) = request::check_device(device) {
            return Sent::failed(outcome);
        }
        let base = base_url(section);
        let (key, pool) = match self.pool(section) {
            Ok(pool) => pool,
            Err(why) => return Sent::failed(permanent(why)),
        };
        let creds = credentials(section);
        let token = match self.tokens.token(creds).await {
            Ok(token) => token,
            Err(why) => return Sent::failed(permanent(why)),
        };
        let (headers, body, push_type) =
            match request::request(delivery, device, section, &token.jwt) {
                Ok(request) => request,
                Err(outcome) => return Sent::failed(outcome),
            };
        let url = format!("{base}/3/device/{}", device.token);
        let payload_bytes = body.len();
        // A request refused unprocessed (a connection APNs is recycling) goes again at once.
        let send = || {
            pool.send(
                pool.client
                    .post(&url)
                    .headers(headers.clone())
                    .body(body.clone()),
            )
        };
        let answer = match outbound::send_until_processed(send).await {
            Ok(answer) => answer,
            Err(e) => return Sent::failed(self.transport_failure(e, delivery, &key, &pool)),
        };
        let (outcome, action) = errors::classify(&answer, device.updated_at);
        match action {
            Action::Nothing => {}
            Action::RefreshToken => {
                self.tokens.expired(creds, &token);
            }
            Action::Reconnect => self.pools.reconnect(&key, &pool),
        }
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            device.id = %device.id,
            push_type = push_type.as_str(),
            payload_bytes,
            status = answer.status,
            reason = answer.reason.as_deref(),
            "APNs attempt"
        );
        Sent {
            answer: Some(answer),
            outcome,
        }
    }

    /// A request that got no answer: retryable (unsent if APNs refused it unprocessed). Unless
    /// it timed out or was refused (a graceful GOAWAY: the pool already moves new requests to
    /// a fresh connection and keeps its warm state), the pool may hold a dead connection and
    /// is replaced.
    fn transport_failure(
        &self,
        e: reqwest::Error,
        delivery: &Delivery,
        key: &ClientKey,
        pool: &Arc<Pool>,
    ) -> DeliveryOutcome {
        let outcome = outbound::transport_failure(&e, "APNs");
        let keep_pool = e.is_timeout() || outbound::refused_unprocessed(&e);
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            error = %e.without_url(),
            "APNs transport failure"
        );
        if !keep_pool {
            self.pools.reconnect(key, pool);
        }
        outcome
    }
}

/// One request's result: APNs' answer (if one came) and its classification.
#[derive(Debug, Clone)]
pub struct Sent {
    pub answer: Option<Answer>,
    pub outcome: DeliveryOutcome,
}

impl Sent {
    fn failed(outcome: DeliveryOutcome) -> Sent {
        Sent {
            answer: None,
            outcome,
        }
    }
}

#[async_trait]
impl Channel for ApnsChannel {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        match &delivery.target {
            Target::Device { device } => self.send(delivery, device, app).await.outcome,
            Target::Webhook { .. } | Target::Email { .. } => {
                permanent("the APNs channel only carries device targets")
            }
        }
    }

    fn endpoint_key(&self, _delivery: &Delivery, app: &AppConfig) -> String {
        match &app.apns {
            Some(section) => format!("apns:{}:{}", base_url(section), section.team_id),
            None => "apns:unconfigured".to_string(),
        }
    }
}
