//! Tenants and their credentials.

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::{KeyId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// How a tenant's client tokens are verified. The secrets (Herald's own minting secret, and the
/// tenant's HS256 secret if it uses one) are sealed by the server before they reach the store;
/// the store keeps the bytes without understanding them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantAuth {
    pub sealed_secrets: Vec<u8>,
    /// PEM public key for ES256/RS256 client tokens signed by the tenant's backend.
    pub public_key_pem: Option<String>,
    /// `ES256` or `RS256` when a public key is set.
    pub public_key_alg: Option<String>,
}

/// A server API key. Only its hash is stored; `prefix` is shown to help operators tell keys
/// apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
}
