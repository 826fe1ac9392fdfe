//! A tenant's own credentials: server keys and client-token settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_engine::ids::KeyId;
use herald_engine::tenant::{ApiKey, TenantAuth};
use herald_engine::validate::Invalid;
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, OptionalJson, TenantCaller};
use crate::ids::parse_id;
use crate::state::AppState;
use herald_tenancy::auth::keys;
use herald_tenancy::auth::tokens::{self, TenantSecrets};

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label for operators.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[schema(value_type = Object)]
    pub key: ApiKey,
    /// The secret, shown this once.
    pub secret: String,
}

pub fn key_name(name: Option<String>) -> Result<String, Invalid> {
    let name = name.unwrap_or_else(|| "unnamed".into());
    herald_engine::validate::text("name", &name, 128)?;
    Ok(name)
}

#[utoipa::path(
    post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedKey)),
    security(("server_key" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: TenantCaller,
    OptionalJson(body): OptionalJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let new = keys::create(
        state.store.as_ref(),
        &caller.tenant,
        &key_name(body.name)?,
        state.clock.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: new.key,
            secret: new.secret,
        }),
    ))
}

#[utoipa::path(
    get, path = "/v1/keys", tag = "keys",
    responses((status = 200, description = "Keys (never their secrets)", body = [Object])),
    security(("server_key" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: TenantCaller,
) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(state.store.list_api_keys(&caller.tenant).await?))
}

#[utoipa::path(
    delete, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let key_id = parse_id::<KeyId>("key_id", key_id)?;
    if state
        .store
        .revoke_api_key(&caller.tenant, &key_id, state.clock.now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("key"))
    }
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthSettings {
    /// HS256 secret the tenant's backend signs client tokens with (write-only; masked on read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret: Option<String>,
    /// PEM public key for ES256/RS256 client tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
    /// `ES256` or `RS256`; required with `public_key_pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_alg: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/client-auth", tag = "keys",
    responses((status = 200, description = "How client tokens are verified (secrets masked)", body = ClientAuthSettings)),
    security(("server_key" = []))
)]
pub async fn get_client_auth(
    State(state): State<AppState>,
    caller: TenantCaller,
) -> ApiResult<Json<ClientAuthSettings>> {
    let (_, auth) = state
        .store
        .get_tenant(&caller.tenant)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let secrets = TenantSecrets::open(&state.sealer, &caller.tenant, &auth)
        .ok_or_else(|| ApiError::internal("open tenant secrets", "seal"))?;
    Ok(Json(ClientAuthSettings {
        hs256_secret: secrets
            .hs256_secret
            .map(|_| herald_engine::app::SECRET_MASK.to_string()),
        public_key_pem: auth.public_key_pem,
        public_key_alg: auth.public_key_alg,
    }))
}

#[utoipa::path(
    put, path = "/v1/client-auth", tag = "keys", request_body = ClientAuthSettings,
    responses((status = 200, description = "Stored (secrets masked)", body = ClientAuthSettings),
              (status = 422, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn put_client_auth(
    State(state): State<AppState>,
    caller: TenantCaller,
    crate::extract::ApiJson(body): crate::extract::ApiJson<ClientAuthSettings>,
) -> ApiResult<Json<ClientAuthSettings>> {
    let (_, auth) = state
        .store
        .get_tenant(&caller.tenant)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let mut secrets = TenantSecrets::open(&state.sealer, &caller.tenant, &auth)
        .ok_or_else(|| ApiError::internal("open tenant secrets", "seal"))?;
    match body.hs256_secret.as_deref() {
        Some(herald_engine::app::SECRET_MASK) => {}
        Some(s) if s.len() < 32 => {
            return Err(Invalid::new("hs256_secret", "must be at least 32 bytes").into());
        }
        Some(s) => secrets.hs256_secret = Some(s.to_string()),
        None => secrets.hs256_secret = None,
    }
    let alg = match (&body.public_key_pem, body.public_key_alg.as_deref()) {
        (None, None) => None,
        (Some(pem), Some(name @ ("ES256" | "RS256"))) => {
            let alg = if name == "ES256" {
                Algorithm::ES256
            } else {
                Algorithm::RS256
            };
            tokens::public_key(alg, pem).ok_or_else(|| {
                Invalid::new(
                    "public_key_pem",
                    format!("is not a {name} public key in PEM"),
                )
            })?;
            Some(name.to_string())
        }
        (Some(_), _) => return Err(Invalid::new("public_key_alg", "must be ES256 or RS256").into()),
        (None, Some(_)) => {
            return Err(Invalid::new("public_key_pem", "is required with public_key_alg").into());
        }
    };
    let updated = TenantAuth {
        sealed_secrets: secrets.seal(&state.sealer, &caller.tenant),
        public_key_pem: body.public_key_pem.clone(),
        public_key_alg: alg.clone(),
    };
    state
        .store
        .set_tenant_auth(&caller.tenant, &updated)
        .await?;
    Ok(Json(ClientAuthSettings {
        hs256_secret: secrets
            .hs256_secret
            .map(|_| herald_engine::app::SECRET_MASK.to_string()),
        public_key_pem: body.public_key_pem,
        public_key_alg: alg,
    }))
}
