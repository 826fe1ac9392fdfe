//! FCM HTTP v1 (SPEC §2.5): `POST {base}/v1/projects/{project_id}/messages:send` with
//! `{"message": …}` and `Authorization: Bearer <access token>`.
//!
//! Files:
//! - `mod.rs`: the channel: clients, one send (with one token refresh), the `Channel` impl.
//! - [`auth`]: OAuth2 access tokens for the service account (unit tests in `auth/tests.rs`).
//! - [`message`]: the message of one push (`message/mod.rs`: shape, data, the whole message;
//!   `android.rs`; `apns.rs`: the block for iOS devices; `fit.rs`: the cut to 4096 bytes;
//!   `tests.rs`).
//! - [`errors`]: what each answer means.
//!
//! - **Access tokens** ([`auth`]): an RS256 service-account assertion exchanged at the
//!   account's own `token_uri`, cached per account until shortly before it expires, fetched
//!   once for every concurrent send, and fetched again once inside the same attempt when FCM
//!   answers 401 without an `FcmError`.
//! - **Messages** ([`message`]): notification messages with a per-conversation `tag` and
//!   `notification_count` for visible pushes, data-only messages for silent pushes and calls,
//!   an `apns` block for iOS devices, `ttl` from the push, cut to 4096 bytes.
//! - **Answers** ([`errors`]): FCM's error table mapped to delivered / retryable / invalid
//!   target / permanent; only `UNREGISTERED`, an `INVALID_ARGUMENT` about the token and
//!   `SENDER_ID_MISMATCH` drop a device.
//! - **Connections**: HTTP/2 — by ALPN for `https://`, with prior knowledge for `http://`
//!   (local fakes); the token endpoint is called over whatever it speaks. One attempt per call:
//!   retries, breakers and bulkheads belong to the delivery core, and the endpoint key
//!   `fcm:<base_url>:<project_id>` scopes them. The one exception: a request FCM refused
//!   unprocessed (a connection it is recycling: a stream above a GOAWAY's last stream id,
//!   `REFUSED_STREAM`, or a connection that closed before it was sent) is sent again at once on
//!   a fresh connection ([`outbound::send_until_processed`]); if it still cannot go, the outcome
//!   is [`DeliveryOutcome::Unsent`], which the circuit breaker ignores.
//!
//! The base URL and `token_uri` are the operator's and the credential's configuration, not
//! user input, so this client does not go through the SSRF guard of [`super::outbound`].
//!
//! Logs carry ids, statuses and error codes only: never tokens, access tokens, keys or text.

pub mod auth;
pub mod errors;
pub mod message;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use herald_engine::app::{AppConfig, FcmSection};
use herald_engine::clock::Clock;
use herald_engine::delivery::Channel;
use herald_engine::device::{Device, DeviceChannel};
use herald_engine::push::{Delivery, DeliveryOutcome, Target};

use self::auth::AccessTokens;
use self::errors::{Action, Answer};
use crate::{Settings, outbound};
use herald_engine::registry::ChannelRegistry;

/// Google's endpoint, used when an app sets no `fcm.base_url`.
pub const DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";

/// The longest answer body read from FCM.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// How the channel talks to FCM.
#[derive(Clone, Debug)]
pub struct FcmOptions {
    /// Bound on opening a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Bound on one request (a send or a token fetch), from sending to the end of the answer.
    pub request_timeout: Duration,
}

impl Default for FcmOptions {
    fn default() -> Self {
        FcmOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Registers the [`FcmChannel`] as `fcm`. A request may take at most the delivery core's
/// attempt timeout, and never more than the default 10 s.
pub fn register(
    registry: ChannelRegistry,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> ChannelRegistry {
    let options = FcmOptions {
        request_timeout: FcmOptions::default()
            .request_timeout
            .min(Duration::from_millis(settings.attempt_timeout_ms.max(1))),
        ..FcmOptions::default()
    };
    registry.with("fcm", Arc::new(FcmChannel::new(clock, options)))
}

fn permanent(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status: None,
    }
}

fn base_url(section: &FcmSection) -> &str {
    section
        .base_url
        .as_deref()
        .unwrap_or(DEFAULT_BASE_URL)
        .trim_end_matches('/')
}

/// Google project ids are letters, digits and hyphens (domain-scoped ones add `.` and `:`);
/// anything else cannot be put in the path as it is.
fn valid_project_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

type Lazy = OnceLock<Result<reqwest::Client, String>>;

/// The `fcm` channel. One per server: it holds the HTTP clients (their connection pools) and
/// the access tokens of every app.
pub struct FcmChannel {
    options: FcmOptions,
    clock: Arc<dyn Clock>,
    tokens: AccessTokens,
    /// For `https://` base URLs (h2 by ALPN).
    tls: Lazy,
    /// For `http://` base URLs (h2c with prior knowledge).
    h2c: Lazy,
    /// For token endpoints (HTTP/1.1 or h2 by ALPN).
    oauth: Lazy,
}

impl FcmChannel {
    pub fn new(clock: Arc<dyn Clock>, options: FcmOptions) -> FcmChannel {
        FcmChannel {
            options,
            tokens: AccessTokens::new(clock.clone()),
            clock,
            tls: OnceLock::new(),
            h2c: OnceLock::new(),
            oauth: OnceLock::new(),
        }
    }

    /// How many access tokens this channel has requested (for tests and metrics).
    pub fn token_fetches(&self) -> u64 {
        self.tokens.fetches()
    }

    fn client<'a>(
        &self,
        lazy: &'a Lazy,
        prior_knowledge: bool,
    ) -> Result<&'a reqwest::Client, DeliveryOutcome> {
        lazy.get_or_init(|| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(self.options.connect_timeout)
                .timeout(self.options.request_timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .http2_keep_alive_interval(Duration::from_secs(30))
                .http2_keep_alive_timeout(Duration::from_secs(10))
                .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")));
            if prior_knowledge {
                builder = builder.http2_prior_knowledge();
            }
            builder
                .build()
                .map_err(|e| format!("the FCM client cannot be built: {e}"))
        })
        .as_ref()
        .map_err(|why| permanent(why.clone()))
    }

    fn send_client(&self, base: &str) -> Result<&reqwest::Client, DeliveryOutcome> {
        if base.starts_with("http://") {
            self.client(&self.h2c, true)
        } else {
            self.client(&self.tls, false)
        }
    }

    /// Sends `delivery` to `device` once (fetching a new access token and sending again if
    /// FCM refuses the cached one) and classifies the answer.
    pub async fn send(
        &self,
        delivery: &Delivery,
        device: &Device,
        app: &AppConfig,
    ) -> DeliveryOutcome {
        let section = match section_for(device, app) {
            Ok(section) => section,
            Err(outcome) => return outcome,
        };
        let account = &section.service_account;
        let base = base_url(section);
        let url = format!("{base}/v1/projects/{}/messages:send", account.project_id);
        let (client, oauth) = match (self.send_client(base), self.client(&self.oauth, false)) {
            (Ok(c), Ok(o)) => (c, o),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let now = self.clock.now();
        let rendered = match &delivery.push.gateway {
            Some(payload) => match message::gateway::render(&delivery.push, payload, device, now) {
                Ok(rendered) => rendered,
                Err(why) => {
                    return DeliveryOutcome::Permanent {
                        reason: why,
                        status: None,
                    };
                }
            },
            None => message::render(delivery, device, now),
        };
        let mut refreshed = false;
        loop {
            let token = match self
                .tokens
                .token(oauth, account, self.options.request_timeout)
                .await
            {
                Ok(token) => token,
                Err(outcome) => {
                    tracing::debug!(
                        tenant.id = %delivery.tenant_id,
                        delivery.id = %delivery.id,
                        "FCM access token not available"
                    );
                    return outcome;
                }
            };
            let answer = match post(client, &url, &token.value, &rendered, delivery).await {
                Ok(answer) => answer,
                Err(outcome) => return outcome,
            };
            let (outcome, action) = errors::classify(&answer);
            tracing::debug!(
                tenant.id = %delivery.tenant_id,
                delivery.id = %delivery.id,
                device.id = %device.id,
                message_bytes = rendered.message_bytes,
                status = answer.status,
                error_code = answer.error_code.as_deref(),
                "FCM attempt"
            );
            if action == Action::RefreshToken && !refreshed {
                refreshed = true;
                self.tokens.rejected(account, &token);
                continue;
            }
            return outcome;
        }
    }
}

/// The app's `fcm` section, if `device` can be reached with it.
fn section_for<'a>(device: &Device, app: &'a AppConfig) -> Result<&'a FcmSection, DeliveryOutcome> {
    let Some(section) = &app.fcm else {
        return Err(permanent("the app has no fcm section"));
    };
    if device.channel != DeviceChannel::Fcm {
        return Err(permanent(format!(
            "a {} device cannot be reached through FCM",
            device.channel.as_str()
        )));
    }
    if !valid_project_id(&section.service_account.project_id) {
        return Err(permanent(
            "fcm.service_account.project_id is not a Google project id",
        ));
    }
    Ok(section)
}

/// One send with `access_token`, sent again at once if FCM refuses it unprocessed (a
/// connection it is recycling); a request that got no answer is the retryable outcome (unsent
/// if FCM refused it unprocessed every time).
async fn post(
    client: &reqwest::Client,
    url: &str,
    access_token: &str,
    rendered: &message::Rendered,
    delivery: &Delivery,
) -> Result<Answer, DeliveryOutcome> {
    let send = || async {
        let response = client
            .post(url)
            .bearer_auth(access_token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(rendered.body.clone())
            .send()
            .await?;
        read_answer(response).await
    };
    let answer = outbound::send_until_processed(send).await;
    answer.map_err(|e| {
        let outcome = outbound::transport_failure(&e, "FCM");
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            error = %e.without_url(),
            "FCM transport failure"
        );
        outcome
    })
}

async fn read_answer(mut response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = response.status().as_u16();
    let retry_after_ms = outbound::retry_after_ms(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() < MAX_ANSWER_BYTES {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
        }
    }
    Ok(Answer::parse(status, retry_after_ms, &body))
}

#[async_trait]
impl Channel for FcmChannel {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        match &delivery.target {
            Target::Device { device } => self.send(delivery, device, app).await,
            Target::Webhook { .. } | Target::Email { .. } => {
                permanent("the FCM channel only carries device targets")
            }
        }
    }

    fn endpoint_key(&self, _delivery: &Delivery, app: &AppConfig) -> String {
        match &app.fcm {
            Some(section) => format!(
                "fcm:{}:{}",
                base_url(section),
                section.service_account.project_id
            ),
            None => "fcm:unconfigured".to_string(),
        }
    }
}
