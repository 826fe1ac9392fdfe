//! VAPID (RFC 8292): the application server identifies itself to the push service with an
//! ES256 JWT `{aud: <origin of the endpoint>, exp, sub: <contact>}` and its public key:
//! `Authorization: vapid t=<JWT>, k=<base64url uncompressed public key>`.
//!
//! Keys are an app's `webpush.vapid_private_key` (the base64url 32-byte P-256 scalar) and
//! `vapid_public_key` (base64url 65-byte uncompressed point, the browser's
//! `applicationServerKey`). [`generate_vapid_keys`] makes a pair; [`public_key_of`] derives the
//! public half.
//!
//! One JWT is signed per (key, subject, audience) and reused until an hour before it expires
//! (it is valid for 12 hours; RFC 8292 allows 24).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_engine::app::WebPushSection;
use p256::SecretKey;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// How long a signed JWT is valid.
pub const LIFETIME: Duration = Duration::hours(12);
/// A cached JWT is replaced this long before it expires.
pub const RENEW_BEFORE: Duration = Duration::hours(1);
/// Beyond this many cached JWTs (audiences are user-supplied), stale ones are dropped, and if
/// that is not enough, all of them.
const MAX_CACHED: usize = 4096;

fn decode(b64url: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(b64url.trim().trim_end_matches('='))
        .ok()
}

fn public_b64(secret: &SecretKey) -> String {
    URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes())
}

fn secret_of(private_b64: &str) -> Result<SecretKey, String> {
    decode(private_b64)
        .filter(|b| b.len() == 32)
        .and_then(|b| SecretKey::from_slice(&b).ok())
        .ok_or_else(|| {
            "webpush.vapid_private_key is not a base64url 32-byte P-256 private key".into()
        })
}

/// A new VAPID key pair: `(public, private)`, both base64url without padding — the public key
/// as the 65-byte uncompressed point browsers take as `applicationServerKey`, the private key
/// as the 32-byte scalar.
pub fn generate_vapid_keys() -> (String, String) {
    let secret = super::ece::random_secret_key();
    (
        public_b64(&secret),
        URL_SAFE_NO_PAD.encode(secret.to_bytes()),
    )
}

/// The public key (base64url, uncompressed point) of a base64url private key.
pub fn public_key_of(private_b64: &str) -> Result<String, String> {
    secret_of(private_b64).map(|s| public_b64(&s))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub exp: i64,
    pub sub: String,
}

/// Signs one VAPID JWT with `secret`.
pub fn sign(secret: &SecretKey, claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    let claims =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims always serialise"));
    let input = format!("{header}.{claims}");
    let signature: Signature = SigningKey::from(secret).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Verifies a VAPID JWT against the public key `k` (base64url uncompressed point) and answers
/// its claims. Expiry is not checked here.
pub fn verify(jwt: &str, k: &str) -> Result<Claims, String> {
    let key = decode(k)
        .and_then(|k| VerifyingKey::from_sec1_bytes(&k).ok())
        .ok_or("k is not a P-256 public key")?;
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWS compact serialisation".into());
    };
    let header: serde_json::Value = decode(header)
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("the header is not base64url JSON")?;
    if header["alg"] != "ES256" {
        return Err("alg is not ES256".into());
    }
    let signature = decode(signature)
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or("the signature is not 64 bytes of r || s")?;
    let input = &jwt[..header_and_claims_len(jwt)];
    key.verify(input.as_bytes(), &signature)
        .map_err(|_| "the signature does not verify")?;
    decode(claims)
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or_else(|| "the claims are not base64url JSON with aud, exp and sub".into())
}

fn header_and_claims_len(jwt: &str) -> usize {
    jwt.rfind('.').unwrap_or(jwt.len())
}

/// The origin (`scheme://host[:port]`) of a push endpoint: the JWT's audience.
pub fn audience(endpoint: &str) -> Result<String, String> {
    let url = url::Url::parse(endpoint).map_err(|_| "the endpoint is not an absolute URL")?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err("the endpoint has no origin".into()),
    }
}

/// What identifies an app's VAPID keys and subject in the cache (length-prefixed SHA-256).
fn fingerprint(private: &str, section: &WebPushSection) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [
        private,
        section.vapid_public_key.as_deref().unwrap_or(""),
        &section.subject,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Keeps the cache under [`MAX_CACHED`] entries: expired ones go first, then all of them.
fn make_room<K>(cache: &mut HashMap<K, Cached>, now: OffsetDateTime) {
    if cache.len() >= MAX_CACHED {
        cache.retain(|_, c| now < c.renew_at);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
    }
}

#[derive(Clone)]
struct Cached {
    header: Arc<str>,
    renew_at: OffsetDateTime,
}

/// Signed `Authorization` values, per (app key, subject, audience).
#[derive(Default)]
pub struct Vapid {
    cache: Mutex<HashMap<([u8; 32], String), Cached>>,
}

impl Vapid {
    pub fn new() -> Vapid {
        Vapid::default()
    }

    /// The `Authorization` header for a push to `audience` with the app's `section`, at
    /// wall-clock `now` (push services check `exp` against their own clocks).
    pub fn authorization(
        &self,
        section: &WebPushSection,
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<str>, String> {
        let private = section
            .vapid_private_key
            .as_deref()
            .ok_or("the app's webpush section has no vapid_private_key")?;
        let id = (fingerprint(private, section), audience.to_string());
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hit) = cache.get(&id)
            && now < hit.renew_at
        {
            return Ok(hit.header.clone());
        }
        let secret = secret_of(private)?;
        let k = public_b64(&secret);
        if let Some(configured) = &section.vapid_public_key
            && decode(configured).as_deref() != decode(&k).as_deref()
        {
            return Err(
                "webpush.vapid_public_key is not the public key of webpush.vapid_private_key"
                    .into(),
            );
        }
        let exp = now + LIFETIME;
        let claims = Claims {
            aud: audience.to_string(),
            exp: exp.unix_timestamp(),
            sub: section.subject.clone(),
        };
        let header: Arc<str> = format!("vapid t={}, k={k}", sign(&secret, &claims)).into();
        make_room(&mut cache, now);
        cache.insert(
            id,
            Cached {
                header: header.clone(),
                renew_at: exp - RENEW_BEFORE,
            },
        );
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8292 §2.4 and §3.
    #[test]
    fn the_rfc_8292_example_token_verifies_and_a_changed_one_does_not() {
        let t = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA";
        let k = "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";
        assert_eq!(
            verify(t, k).unwrap(),
            Claims {
                aud: "https://push.example.net".into(),
                exp: 1453523768,
                sub: "mailto:push@example.com".into(),
            }
        );
        let forged = t.replacen(
            "eyJhdWQiOiJodHRwczovL3B1c2gu",
            "eyJhdWQiOiJodHRwczovL3B1c2hh",
            1,
        );
        assert!(verify(&forged, k).is_err());
        let (other, _) = generate_vapid_keys();
        assert!(verify(t, &other).is_err());
    }

    #[test]
    fn generated_keys_sign_tokens_that_verify_with_their_public_key() {
        let (public, private) = generate_vapid_keys();
        assert_eq!(decode(&public).unwrap().len(), 65);
        assert_eq!(decode(&private).unwrap().len(), 32);
        assert_eq!(public_key_of(&private).unwrap(), public);
        assert!(public_key_of("not a key").is_err());
        assert!(public_key_of(&URL_SAFE_NO_PAD.encode([0u8; 32])).is_err());

        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        let section = WebPushSection {
            vapid_public_key: Some(public.clone()),
            vapid_private_key: Some(private),
            subject: "mailto:ops@example.com".into(),
            health_check_interval_s: 0,
            health_check_timeout_s: 300,
        };
        let vapid = Vapid::new();
        let header = vapid
            .authorization(&section, "https://push.example.net", now)
            .unwrap();
        let rest = header.strip_prefix("vapid t=").unwrap();
        let (t, k) = rest.split_once(", k=").unwrap();
        assert_eq!(k, public);
        let claims = verify(t, k).unwrap();
        assert_eq!(claims.aud, "https://push.example.net");
        assert_eq!(claims.sub, "mailto:ops@example.com");
        assert_eq!(claims.exp, (now + Duration::hours(12)).unix_timestamp());
    }

    #[test]
    fn one_token_per_audience_is_reused_until_an_hour_before_it_expires() {
        let (_, private) = generate_vapid_keys();
        let section = WebPushSection {
            vapid_public_key: None,
            vapid_private_key: Some(private),
            subject: "https://example.com/contact".into(),
            health_check_interval_s: 0,
            health_check_timeout_s: 300,
        };
        let vapid = Vapid::new();
        let t0 = time::macros::datetime!(2026-11-23 10:00 UTC);
        let a = vapid
            .authorization(&section, "https://a.example", t0)
            .unwrap();
        let b = vapid
            .authorization(&section, "https://b.example", t0)
            .unwrap();
        assert_ne!(a, b);
        let later = vapid
            .authorization(&section, "https://a.example", t0 + Duration::minutes(659))
            .unwrap();
        assert_eq!(a, later, "reused for 11 hours");
        let renewed = vapid
            .authorization(&section, "https://a.example", t0 + Duration::hours(11))
            .unwrap();
        assert_ne!(a, renewed, "renewed an hour before exp");
    }

    #[test]
    fn a_public_key_that_does_not_match_the_private_key_is_refused() {
        let (_, private) = generate_vapid_keys();
        let (other_public, _) = generate_vapid_keys();
        let section = WebPushSection {
            vapid_public_key: Some(other_public),
            vapid_private_key: Some(private),
            subject: "mailto:ops@example.com".into(),
            health_check_interval_s: 0,
            health_check_timeout_s: 300,
        };
        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        assert!(
            Vapid::new()
                .authorization(&section, "https://a.example", now)
                .unwrap_err()
                .contains("vapid_public_key")
        );
    }

    #[test]
    fn the_audience_is_the_endpoints_origin() {
        assert_eq!(
            audience("https://fcm.googleapis.com/fcm/send/abc:def").unwrap(),
            "https://fcm.googleapis.com"
        );
        assert_eq!(
            audience("http://localhost:8090/notify/x").unwrap(),
            "http://localhost:8090"
        );
        assert_eq!(
            audience("https://push.example.net:443/x").unwrap(),
            "https://push.example.net"
        );
        assert!(audience("nope").is_err());
    }
}
