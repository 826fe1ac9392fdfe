//! Client tokens (SPEC §2.1): JWTs that act as one user of one tenant. The `tid` claim names
//! the tenant; `sub` the user; `exp` is required. A token verifies against either Herald's own
//! per-tenant minting secret (HS256, `iss = "herald"`), the tenant's HS256 secret, or the
//! tenant's ES256/RS256 public key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use herald_engine::ids::{TenantId, UserId};
use herald_engine::store::{Store, StoreError};
use herald_engine::tenant::TenantAuth;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::seal::Sealer;

pub const MINT_ISSUER: &str = "herald";

/// The secrets of a tenant, sealed as one JSON blob.
#[derive(Serialize, Deserialize)]
pub struct TenantSecrets {
    /// Herald's own HS256 secret for tokens it mints.
    pub mint_secret: String,
    /// The tenant's HS256 secret, if its backend signs with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret: Option<String>,
}

impl TenantSecrets {
    pub fn generate() -> Self {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        Self {
            mint_secret: STANDARD.encode(raw),
            hs256_secret: None,
        }
    }

    pub fn seal(&self, sealer: &Sealer, tenant: &TenantId) -> Vec<u8> {
        sealer.seal(
            &context(tenant),
            &serde_json::to_vec(self).expect("plain struct"),
        )
    }

    pub fn open(sealer: &Sealer, tenant: &TenantId, auth: &TenantAuth) -> Option<Self> {
        let bytes = sealer.open(&context(tenant), &auth.sealed_secrets).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn context(tenant: &TenantId) -> String {
    format!("tenant:{tenant}")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tid: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub tenant: TenantId,
    pub user: UserId,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the client token is malformed, expired or not signed by a key of its tenant")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn mint(
    secrets: &TenantSecrets,
    tenant: &TenantId,
    user: &UserId,
    now: OffsetDateTime,
    ttl_s: u64,
) -> (String, OffsetDateTime) {
    let exp = now + time::Duration::seconds(ttl_s as i64);
    let claims = Claims {
        sub: user.to_string(),
        tid: tenant.to_string(),
        exp: exp.unix_timestamp(),
        iat: Some(now.unix_timestamp()),
        iss: Some(MINT_ISSUER.into()),
    };
    let key = EncodingKey::from_secret(secrets.mint_secret.as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .expect("HS256 signing cannot fail");
    (token, exp)
}

/// Reads `tid` before verification; the signature is checked against that tenant's keys next.
fn unverified_tenant(token: &str) -> Option<TenantId> {
    #[derive(Deserialize)]
    struct Tid {
        tid: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    TenantId::parse(serde_json::from_slice::<Tid>(&bytes).ok()?.tid).ok()
}

pub async fn verify(
    store: &dyn Store,
    sealer: &Sealer,
    token: &str,
    leeway_s: u64,
) -> Result<ClientIdentity, TokenError> {
    if token.len() > 8192 {
        return Err(TokenError::Invalid);
    }
    let tenant = unverified_tenant(token).ok_or(TokenError::Invalid)?;
    let (_, auth) = store
        .get_tenant(&tenant)
        .await?
        .ok_or(TokenError::Invalid)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = leeway_s;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.validate_aud = false;
    let candidates: Vec<DecodingKey> = match header.alg {
        Algorithm::HS256 => {
            let secrets = TenantSecrets::open(sealer, &tenant, &auth).ok_or(TokenError::Invalid)?;
            std::iter::once(secrets.mint_secret)
                .chain(secrets.hs256_secret)
                .map(|s| DecodingKey::from_secret(s.as_bytes()))
                .collect()
        }
        Algorithm::ES256 | Algorithm::RS256
            if auth.public_key_alg.as_deref() == Some(alg_name(header.alg)) =>
        {
            let pem = auth.public_key_pem.as_deref().ok_or(TokenError::Invalid)?;
            vec![public_key(header.alg, pem).ok_or(TokenError::Invalid)?]
        }
        _ => return Err(TokenError::Invalid),
    };
    for key in &candidates {
        if let Ok(data) = jsonwebtoken::decode::<Claims>(token, key, &validation)
            && data.claims.tid == tenant.as_str()
        {
            let user = UserId::parse(data.claims.sub).map_err(|_| TokenError::Invalid)?;
            return Ok(ClientIdentity { tenant, user });
        }
    }
    Err(TokenError::Invalid)
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "HS256",
    }
}

/// Parses a PEM public key for the given algorithm.
pub fn public_key(alg: Algorithm, pem: &str) -> Option<DecodingKey> {
    match alg {
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()).ok(),
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()).ok(),
        _ => None,
    }
}
