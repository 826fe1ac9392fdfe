//! APNs (SPEC §2.5): Apple's HTTP/2 provider API with token authentication.
//!
//! - **Connections.** One HTTP/2 client per (base URL, team, key): APNs binds a connection to
//!   one team and to the key of its first request. `https://` negotiates h2 by ALPN over
//!   rustls; `http://` speaks h2c with prior knowledge (local fakes). hyper multiplexes every
//!   request over one connection and never opens more streams than the server's SETTINGS
//!   allow. The first request on a new pool goes alone (APNs allows one stream until a request
//!   with a valid token), so those SETTINGS are known before requests are multiplexed; without
//!   that, a burst on a fresh connection overshoots and the server refuses the extra streams.
//!   hyper sends keep-alive PINGs (also while idle), drops a connection whose PING goes
//!   unanswered, and opens a new one after a GOAWAY (a stream APNs refused is retried on it).
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
pub mod token;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use herald_engine::app::{ApnsSection, AppConfig};
use herald_engine::clock::Clock;
use herald_engine::delivery::Channel;
use herald_engine::device::{Channel as DeviceChannel, Device};
use herald_engine::push::{Delivery, DeliveryOutcome, Target};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use self::errors::{Action, Answer};
use self::payload::PushType;
use self::token::{Credentials, TokenCache};
use crate::{Settings, outbound};
use herald_engine::registry::ChannelRegistry;

/// Apple's production endpoint, used when an app sets no `apns.base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.push.apple.com";

/// The longest error body read from APNs (they are a few dozen bytes).
const MAX_ANSWER_BYTES: usize = 4096;

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

/// (base URL, team id, key id)
type ClientKey = (String, String, String);

/// One HTTP/2 client (its connection pool) and its warm-up gate: the first request on a new
/// pool goes alone, so the server's SETTINGS (APNs allows one stream until a request with a
/// valid token) are known before requests are multiplexed on the connection.
struct Pool {
    client: reqwest::Client,
    warm: AtomicBool,
    gate: tokio::sync::Mutex<()>,
}

impl Pool {
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        if self.warm.load(Ordering::Acquire) {
            return send(request).await;
        }
        let alone = self.gate.lock().await;
        if self.warm.load(Ordering::Acquire) {
            drop(alone);
            return send(request).await;
        }
        let answer = send(request).await;
        if answer.is_ok() {
            self.warm.store(true, Ordering::Release);
        }
        answer
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    read_answer(request.send().await?).await
}

/// The `apns` and `apns_voip` channel.
pub struct ApnsChannel {
    options: ApnsOptions,
    tokens: TokenCache,
    clients: Mutex<HashMap<ClientKey, Arc<Pool>>>,
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

fn header(value: &str) -> Result<HeaderValue, DeliveryOutcome> {
    HeaderValue::from_str(value)
        .map_err(|_| permanent("a value of the APNs request is not a valid header value"))
}

impl ApnsChannel {
    pub fn new(clock: Arc<dyn Clock>, options: ApnsOptions) -> ApnsChannel {
        ApnsChannel {
            tokens: TokenCache::new(clock, options.token_refresh_after),
            options,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// How many provider tokens this channel has signed (for tests and metrics).
    pub fn signings(&self) -> u64 {
        self.tokens.signings()
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Arc<Pool>>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pool(&self, key: &ClientKey) -> Result<Arc<Pool>, String> {
        if let Some(pool) = self.clients().get(key) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(Pool {
            client: self.build_client(&key.0)?,
            warm: AtomicBool::new(false),
            gate: tokio::sync::Mutex::new(()),
        });
        Ok(self.clients().entry(key.clone()).or_insert(pool).clone())
    }

    fn build_client(&self, base: &str) -> Result<reqwest::Client, String> {
        let o = &self.options;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(o.connect_timeout)
            .timeout(o.request_timeout)
            // Apple: keep connections open for hours; PINGs find the dead ones.
            .pool_idle_timeout(None)
            .http2_keep_alive_interval(o.ping_interval)
            .http2_keep_alive_timeout(o.ping_timeout)
            .http2_keep_alive_while_idle(true)
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("http://") {
            builder = builder.http2_prior_knowledge();
        } else if !o.trusted_roots_pem.is_empty() {
            let roots = o
                .trusted_roots_pem
                .iter()
                .map(|pem| reqwest::Certificate::from_pem(pem))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "a trusted APNs root certificate is not PEM".to_string())?;
            builder = builder.tls_certs_only(roots);
        }
        builder
            .build()
            .map_err(|e| format!("the APNs client cannot be built: {e}"))
    }

    /// Forgets the connection pool `pool` of `key` (unless another request already replaced
    /// it): the next request opens a new connection.
    fn reconnect(&self, key: &ClientKey, pool: &Arc<Pool>) {
        let mut clients = self.clients();
        if clients
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, pool))
        {
            clients.remove(key);
        }
    }

    /// The headers and payload of `delivery` to `device`.
    fn request(
        &self,
        delivery: &Delivery,
        device: &Device,
        section: &ApnsSection,
        jwt: &str,
    ) -> Result<(HeaderMap, Vec<u8>, PushType), DeliveryOutcome> {
        let push = &delivery.push;
        let push_type = PushType::for_push(device.channel, push.kind);
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: &str| -> Result<(), DeliveryOutcome> {
            headers.insert(HeaderName::from_static(name), header(value)?);
            Ok(())
        };
        set("authorization", &format!("bearer {jwt}"))?;
        set("apns-push-type", push_type.as_str())?;
        set("apns-topic", &push_type.topic(&section.topic))?;
        set("apns-priority", push_type.priority())?;
        set(
            "apns-expiration",
            &push.expires_at.unix_timestamp().max(0).to_string(),
        )?;
        set("apns-id", &payload::apns_id(&delivery.id))?;
        if !push.collapse_key.is_empty() {
            set(
                "apns-collapse-id",
                &payload::collapse_id(&push.collapse_key),
            )?;
        }
        set("content-type", "application/json")?;
        Ok((headers, payload::render(delivery, push_type), push_type))
    }

    /// Sends `delivery` to `device` once and answers what APNs said (the CLI prints it).
    pub async fn send(&self, delivery: &Delivery, device: &Device, app: &AppConfig) -> Sent {
        let Some(section) = &app.apns else {
            return Sent::failed(permanent("the app has no apns section"));
        };
        if !matches!(
            device.channel,
            DeviceChannel::Apns | DeviceChannel::ApnsVoip
        ) {
            return Sent::failed(permanent(format!(
                "a {} device cannot be reached through APNs",
                device.channel.as_str()
            )));
        }
        // Registration only takes hex tokens; anything else would not even make a valid path.
        if device.token.is_empty() || !device.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Sent::failed(DeliveryOutcome::InvalidTarget {
                reason: "the APNs device token is not a hex string".into(),
            });
        }
        let base = base_url(section);
        let key: ClientKey = (
            base.to_string(),
            section.team_id.clone(),
            section.key_id.clone(),
        );
        let pool = match self.pool(&key) {
            Ok(pool) => pool,
            Err(why) => return Sent::failed(permanent(why)),
        };
        let creds = credentials(section);
        let token = match self.tokens.token(creds).await {
            Ok(token) => token,
            Err(why) => return Sent::failed(permanent(why)),
        };
        let (headers, body, push_type) = match self.request(delivery, device, section, &token.jwt) {
            Ok(request) => request,
            Err(outcome) => return Sent::failed(outcome),
        };
        let url = format!("{base}/3/device/{}", device.token);
        let payload_bytes = body.len();
        let request = pool.client.post(url).headers(headers).body(body);
        let answer = match pool.send(request).await {
            Ok(answer) => answer,
            Err(e) => {
                let outcome = outbound::transport_failure(&e, "APNs");
                let timed_out = e.is_timeout();
                tracing::debug!(
                    tenant.id = %delivery.tenant_id,
                    delivery.id = %delivery.id,
                    error = %e.without_url(),
                    "APNs transport failure"
                );
                // A broken pool may hold a dead connection: start afresh.
                if !timed_out {
                    self.reconnect(&key, &pool);
                }
                return Sent::failed(outcome);
            }
        };
        let (outcome, action) = errors::classify(&answer, device.updated_at);
        match action {
            Action::Nothing => {}
            Action::RefreshToken => {
                self.tokens.expired(creds, &token);
            }
            Action::Reconnect => self.reconnect(&key, &pool),
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

async fn read_answer(response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = response.status().as_u16();
    let headers = response.headers();
    let apns_id = headers
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let retry_after_ms = outbound::retry_after_ms(headers);
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await? {
        if body.len() < MAX_ANSWER_BYTES {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
        }
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        reason: Option<String>,
        timestamp: Option<i64>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
    Ok(Answer {
        status,
        reason: parsed
            .as_ref()
            .and_then(|b| b.reason.clone())
            .filter(|r| r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric())),
        timestamp_ms: parsed.and_then(|b| b.timestamp),
        retry_after_ms,
        apns_id,
    })
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
