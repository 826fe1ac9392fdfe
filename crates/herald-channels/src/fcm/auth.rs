//! OAuth2 access tokens for FCM (Google, "Using OAuth 2.0 for Server to Server Applications"):
//! the service account signs an RS256 assertion
//! `{iss: client_email, scope: firebase.messaging, aud: token_uri, iat, exp ≤ iat + 1 h}`
//! (header `kid` = `private_key_id`), posts it to **its own `token_uri`** as
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`, and gets
//! `{access_token, expires_in, token_type: "Bearer"}` back.
//!
//! - One token is cached per (client_email, token_uri, key): a replaced key never reuses the
//!   old key's token. It is used until [`REFRESH_MARGIN`] before it expires (at most half its
//!   life early).
//! - Fetching is single-flight: concurrent sends that find no fresh token wait for one fetch;
//!   if that fetch fails, the ones that waited for it get its failure instead of fetching
//!   again, and a permanent failure (a refused key) is answered from memory for
//!   [`FAILURE_HOLD`] so a broken credential cannot turn every delivery into a token request.
//! - A 401 from FCM without an `FcmError` means the token was refused: [`AccessTokens::rejected`]
//!   drops it (only if it is still the cached one), and the channel fetches once more.
//!
//! Times come from the [`Clock`] port, so tests drive expiry by hand. Access tokens, assertions
//! and keys never reach a log or a reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use herald_engine::app::ServiceAccount;
use herald_engine::clock::Clock;
use herald_engine::push::DeliveryOutcome;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::outbound::{retry_after_ms, transport_failure};

/// The one scope FCM sends need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions that live at most an hour.
pub const ASSERTION_LIFETIME: Duration = Duration::hours(1);
/// How long before its expiry a cached token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::minutes(1);
/// How long a permanent token failure is answered from memory.
pub const FAILURE_HOLD: Duration = Duration::seconds(10);
/// The longest token endpoint answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An access token and when to stop using it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub value: Arc<str>,
    pub refresh_at: OffsetDateTime,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

fn permanent(reason: impl Into<String>, status: Option<u16>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status,
    }
}

/// Signs the assertion for `account` at `now` (no caching).
pub fn assertion(account: &ServiceAccount, now: OffsetDateTime) -> Result<String, DeliveryOutcome> {
    let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|_| {
        permanent(
            "fcm.service_account.private_key is not an RSA PKCS#8 PEM key",
            None,
        )
    })?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = account.private_key_id.clone();
    let iat = now.unix_timestamp();
    let claims = Claims {
        iss: &account.client_email,
        scope: SCOPE,
        aud: &account.token_uri,
        iat,
        exp: iat + ASSERTION_LIFETIME.whole_seconds(),
    };
    jsonwebtoken::encode(&header, &claims, &key).map_err(|_| {
        permanent(
            "the FCM assertion could not be signed with fcm.service_account.private_key",
            None,
        )
    })
}

/// When a token that lives `expires_in` seconds from `obtained` should be replaced.
pub fn refresh_at(obtained: OffsetDateTime, expires_in: u64) -> OffsetDateTime {
    let life = Duration::seconds(i64::try_from(expires_in).unwrap_or(i64::MAX / 2));
    obtained + life - REFRESH_MARGIN.min(life / 2)
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    token_type: Option<String>,
}

/// An OAuth2 error answer (`{"error": "invalid_grant", "error_description": …}`).
#[derive(Deserialize)]
struct Refused {
    error: Option<String>,
    error_description: Option<String>,
}

/// A short, printable excerpt of a provider's words (they never contain secrets we sent).
pub(crate) fn excerpt(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    herald_engine::notify::content::shorten(clean.trim(), 200)
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() < MAX_ANSWER_BYTES {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
        }
    }
    Ok(body)
}

/// Exchanges a fresh assertion for an access token (no caching).
pub async fn fetch(
    client: &reqwest::Client,
    account: &ServiceAccount,
    now: OffsetDateTime,
    timeout: std::time::Duration,
) -> Result<AccessToken, DeliveryOutcome> {
    let jwt = assertion(account, now)?;
    let response = client
        .post(&account.token_uri)
        .form(&[("grant_type", GRANT_TYPE), ("assertion", jwt.as_str())])
        .timeout(timeout)
        .send()
        .await;
    let failed = |e: reqwest::Error| {
        // Timeouts and connect errors come first, as for every other peer.
        if e.is_builder() && !e.is_timeout() && !e.is_connect() {
            return permanent("fcm.service_account.token_uri is not a usable URL", None);
        }
        transport_failure(&e, "FCM token endpoint")
    };
    let response = response.map_err(failed)?;
    let status = response.status().as_u16();
    let retry_after = retry_after_ms(response.headers());
    let body = read_limited(response).await.map_err(failed)?;
    if status == 200 {
        return granted(&body, status, now);
    }
    Err(refusal(&body, status, retry_after))
}

/// The access token in a 200 answer of the token endpoint.
fn granted(body: &[u8], status: u16, now: OffsetDateTime) -> Result<AccessToken, DeliveryOutcome> {
    let granted: Granted =
        serde_json::from_slice(body).map_err(|_| DeliveryOutcome::Retryable {
            after_ms: None,
            reason: "FCM token endpoint: the answer is not an access token".into(),
            status: Some(status),
        })?;
    if granted
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        || granted.access_token.is_empty()
    {
        return Err(permanent(
            "FCM token endpoint: the answer is not a bearer token",
            Some(status),
        ));
    }
    Ok(AccessToken {
        value: granted.access_token.into(),
        refresh_at: refresh_at(now, granted.expires_in),
    })
}

/// What a refusal of the token endpoint means: retryable for 408, 429 and 5xx, else permanent
/// (the service account is wrong). The endpoint's error words, cut short, are the reason.
fn refusal(body: &[u8], status: u16, retry_after: Option<u64>) -> DeliveryOutcome {
    let refused: Option<Refused> = serde_json::from_slice(body).ok();
    let said = refused
        .map(|r| {
            let mut said = r.error.unwrap_or_default();
            if let Some(d) = r.error_description {
                said = format!("{said} ({d})");
            }
            excerpt(&said)
        })
        .filter(|s| !s.is_empty())
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    let reason = format!("FCM token endpoint answered {status}{said}");
    match status {
        408 | 429 | 500..=599 => DeliveryOutcome::Retryable {
            after_ms: retry_after,
            reason,
            status: Some(status),
        },
        _ => permanent(format!("{reason}; check fcm.service_account"), Some(status)),
    }
}

/// (client_email, token_uri, SHA-256 of the key)
type CacheKey = (String, String, [u8; 32]);

#[derive(Default)]
struct Slot {
    current: RwLock<Option<AccessToken>>,
    /// The last failed fetch and when it failed.
    failure: RwLock<Option<(OffsetDateTime, DeliveryOutcome)>>,
    /// Fetches finished so far (successful or not).
    flights: AtomicU64,
    /// Held while fetching: the single flight.
    fetching: tokio::sync::Mutex<()>,
}

impl Slot {
    fn fresh(&self, now: OffsetDateTime) -> Option<AccessToken> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|t| now < t.refresh_at).cloned()
    }

    fn failure(&self) -> Option<(OffsetDateTime, DeliveryOutcome)> {
        self.failure
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The access tokens of every service account a channel sends with.
pub struct AccessTokens {
    clock: Arc<dyn Clock>,
    slots: Mutex<HashMap<CacheKey, Arc<Slot>>>,
    fetches: AtomicU64,
}

impl AccessTokens {
    pub fn new(clock: Arc<dyn Clock>) -> AccessTokens {
        AccessTokens {
            clock,
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many token requests were made so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn slot(&self, account: &ServiceAccount) -> Arc<Slot> {
        let fingerprint: [u8; 32] = Sha256::digest(account.private_key.as_bytes()).into();
        let key = (
            account.client_email.clone(),
            account.token_uri.clone(),
            fingerprint,
        );
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone()
    }

    /// The token to send with: the cached one while fresh, else a new one (fetched once for
    /// every concurrent caller).
    pub async fn token(
        &self,
        client: &reqwest::Client,
        account: &ServiceAccount,
        timeout: std::time::Duration,
    ) -> Result<AccessToken, DeliveryOutcome> {
        let slot = self.slot(account);
        if let Some(token) = slot.fresh(self.clock.now()) {
            return Ok(token);
        }
        let flights_before = slot.flights.load(Ordering::Acquire);
        let _flight = slot.fetching.lock().await;
        let now = self.clock.now();
        if let Some(token) = slot.fresh(now) {
            return Ok(token);
        }
        if let Some((at, outcome)) = slot.failure() {
            let waited_for_it = slot.flights.load(Ordering::Acquire) != flights_before;
            let held =
                matches!(outcome, DeliveryOutcome::Permanent { .. }) && now - at < FAILURE_HOLD;
            if waited_for_it || held {
                return Err(outcome);
            }
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = fetch(client, account, now, timeout).await;
        match &fetched {
            Ok(token) => {
                *slot.current.write().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
                *slot.failure.write().unwrap_or_else(PoisonError::into_inner) = None;
            }
            Err(outcome) => {
                *slot.failure.write().unwrap_or_else(PoisonError::into_inner) =
                    Some((now, outcome.clone()));
            }
        }
        slot.flights.fetch_add(1, Ordering::Release);
        fetched
    }

    /// FCM refused `used` (401 without an `FcmError`): the next [`token`](Self::token) fetches
    /// a new one, unless another send already replaced it. Answers whether it was dropped.
    pub fn rejected(&self, account: &ServiceAccount, used: &AccessToken) -> bool {
        let slot = self.slot(account);
        let mut current = slot.current.write().unwrap_or_else(PoisonError::into_inner);
        let drop_it = current.as_ref().is_some_and(|t| t.value == used.value);
        if drop_it {
            *current = None;
        }
        drop_it
    }
}

#[cfg(test)]
mod tests;
