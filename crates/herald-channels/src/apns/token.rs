//! The provider token (Apple, "Establishing a token-based connection to APNs"): an ES256 JWT
//! with header `{alg: ES256, kid: <key id>}` and claims `{iss: <team id>, iat: <unix s>}`,
//! signed with the team's `.p8` key.
//!
//! Apple: "Refresh your token no more than once every 20 minutes and no less than once every
//! 60 minutes." So one token is cached per (team, key) and shared by every connection:
//! - it is re-signed once it is `refresh_after` old (40 minutes by default);
//! - signing is single-flight: concurrent sends that find no fresh token wait for one signing;
//! - a 403 `ExpiredProviderToken` makes the next send re-sign only if the cached token is at
//!   least `min_age` (20 minutes) old, so a storm of such answers cannot lead to
//!   `TooManyProviderTokenUpdates`.
//!
//! Ages come from the [`Clock`] port, so tests drive them by hand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use herald_engine::clock::Clock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// Apple's lower bound between two tokens on one connection.
pub const MIN_AGE: Duration = Duration::minutes(20);
/// When a cached token is replaced (Apple rejects tokens older than an hour).
pub const REFRESH_AFTER: Duration = Duration::minutes(40);

/// Who signs: one APNs key of one team.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub team_id: &'a str,
    pub key_id: &'a str,
    /// The `.p8` PKCS#8 PEM.
    pub private_key: &'a str,
}

/// A signed provider token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub jwt: Arc<str>,
    pub issued_at: OffsetDateTime,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

/// Signs one token (no caching).
pub fn sign(credentials: Credentials<'_>, now: OffsetDateTime) -> Result<Token, String> {
    let key = EncodingKey::from_ec_pem(credentials.private_key.as_bytes())
        .map_err(|_| "apns.private_key is not a PKCS#8 P-256 (.p8) key".to_string())?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(credentials.key_id.to_string());
    let claims = Claims {
        iss: credentials.team_id,
        iat: now.unix_timestamp(),
    };
    let jwt = jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|_| "the provider token could not be signed with apns.private_key".to_string())?;
    Ok(Token {
        jwt: jwt.into(),
        issued_at: now,
    })
}

/// (team, key id, SHA-256 of the key): a replaced key never reuses the old key's token.
type CacheKey = (String, String, [u8; 32]);

#[derive(Default)]
struct Slot {
    current: RwLock<Option<Token>>,
    /// Held while signing: the single flight.
    signing: tokio::sync::Mutex<()>,
}

impl Slot {
    fn fresh(&self, now: OffsetDateTime, refresh_after: Duration) -> Option<Token> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|t| now - t.issued_at < refresh_after)
            .cloned()
    }
}

/// The cache of provider tokens, shared by every app and connection of a channel.
pub struct TokenCache {
    clock: Arc<dyn Clock>,
    refresh_after: Duration,
    min_age: Duration,
    slots: Mutex<HashMap<CacheKey, Arc<Slot>>>,
    signings: AtomicU64,
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>, refresh_after: Duration) -> TokenCache {
        TokenCache {
            clock,
            refresh_after,
            min_age: MIN_AGE,
            slots: Mutex::new(HashMap::new()),
            signings: AtomicU64::new(0),
        }
    }

    /// How many tokens were signed so far.
    pub fn signings(&self) -> u64 {
        self.signings.load(Ordering::Relaxed)
    }

    fn slot(&self, credentials: Credentials<'_>) -> Arc<Slot> {
        let fingerprint: [u8; 32] = Sha256::digest(credentials.private_key.as_bytes()).into();
        let key = (
            credentials.team_id.to_string(),
            credentials.key_id.to_string(),
            fingerprint,
        );
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone()
    }

    /// The token to send with: the cached one while fresh, else a new one (signed once for
    /// every concurrent caller).
    pub async fn token(&self, credentials: Credentials<'_>) -> Result<Token, String> {
        let slot = self.slot(credentials);
        if let Some(token) = slot.fresh(self.clock.now(), self.refresh_after) {
            return Ok(token);
        }
        let _flight = slot.signing.lock().await;
        let now = self.clock.now();
        if let Some(token) = slot.fresh(now, self.refresh_after) {
            return Ok(token);
        }
        let token = sign(credentials, now)?;
        self.signings.fetch_add(1, Ordering::Relaxed);
        *slot.current.write().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Ok(token)
    }

    /// APNs answered `ExpiredProviderToken` to a request sent with `used`. The next send
    /// re-signs only if `used` is still the cached token and is at least 20 minutes old;
    /// otherwise the cached token stays (a newer one, or one too young to replace).
    /// Answers whether the token was dropped.
    pub fn expired(&self, credentials: Credentials<'_>, used: &Token) -> bool {
        let slot = self.slot(credentials);
        let now = self.clock.now();
        let mut current = slot.current.write().unwrap_or_else(PoisonError::into_inner);
        let drop_it = current
            .as_ref()
            .is_some_and(|t| t.jwt == used.jwt && now - t.issued_at >= self.min_age);
        if drop_it {
            *current = None;
        }
        drop_it
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_engine::clock::ManualClock;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKqHQpOS//KQiyTtB\n29lKglN0Y84ANSMkx0DDHA1VC8ShRANCAARZkjy72SwBLHehCao4JmriHNxMT0Ey\nHVeEXO6NfirTpR/8nn+1dtUaws5xHUV5oPUCJ++BjrPLhRI750OBfVbH\n-----END PRIVATE KEY-----\n";
    const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWZI8u9ksASx3oQmqOCZq4hzcTE9B\nMh1XhFzujX4q06Uf/J5/tXbVGsLOcR1FeaD1AifvgY6zy4USO+dDgX1Wxw==\n-----END PUBLIC KEY-----\n";

    fn creds() -> Credentials<'static> {
        Credentials {
            team_id: "TEAM123456",
            key_id: "KEY1234567",
            private_key: PEM,
        }
    }

    fn start() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 10:00 UTC)
    }

    #[test]
    fn the_token_is_es256_with_kid_iss_and_iat() {
        let token = sign(creds(), start()).unwrap();
        let header = jsonwebtoken::decode_header(&*token.jwt).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let key = jsonwebtoken::DecodingKey::from_ec_pem(PUBLIC.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<serde_json::Value>(&*token.jwt, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(
            claims,
            serde_json::json!({"iss": "TEAM123456", "iat": start().unix_timestamp()})
        );
    }

    #[test]
    fn a_bad_key_is_a_clear_error() {
        let mut c = creds();
        c.private_key = "not a key";
        assert!(sign(c, start()).unwrap_err().contains("apns.private_key"));
    }

    #[tokio::test]
    async fn the_cached_token_lives_forty_minutes_and_expiry_answers_respect_twenty() {
        let clock = Arc::new(ManualClock::new(start()));
        let cache = TokenCache::new(clock.clone(), REFRESH_AFTER);
        let first = cache.token(creds()).await.unwrap();
        clock.advance(Duration::minutes(19));
        assert_eq!(cache.token(creds()).await.unwrap(), first);
        assert!(!cache.expired(creds(), &first), "too young to replace");
        assert_eq!(cache.token(creds()).await.unwrap(), first);
        assert_eq!(cache.signings(), 1);
        clock.advance(Duration::minutes(1));
        assert!(cache.expired(creds(), &first));
        let second = cache.token(creds()).await.unwrap();
        assert_ne!(second, first);
        assert!(
            !cache.expired(creds(), &first),
            "an answer to the old token does not drop the new one"
        );
        clock.advance(Duration::minutes(40));
        let third = cache.token(creds()).await.unwrap();
        assert_ne!(third, second);
        assert_eq!(cache.signings(), 3);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_signing() {
        let cache = Arc::new(TokenCache::new(
            Arc::new(ManualClock::new(start())),
            REFRESH_AFTER,
        ));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.token(creds()).await.unwrap() })
            })
            .collect();
        let mut tokens = vec![];
        for t in tasks {
            tokens.push(t.await.unwrap());
        }
        assert!(tokens.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(cache.signings(), 1);
    }
}
