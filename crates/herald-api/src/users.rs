//! Server-side views of a user: devices, sign-out everywhere, presence, unread, client tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_engine::device::Device;
use herald_engine::ids::{DeviceId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, OptionalJson, TenantCaller};
use crate::ids::parse_id;
use crate::me::{UnreadView, unread_view};
use crate::state::AppState;
use herald_runtime::live::presence::Presence;
use herald_tenancy::auth::tokens::{self, TenantSecrets};

#[utoipa::path(
    get, path = "/v1/users/{user_id}/devices", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, description = "The user's devices", body = [Object])),
    security(("server_key" = []))
)]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<Json<Vec<Device>>> {
    let user = parse_id::<UserId>("user_id", uid)?;
    Ok(Json(state.store.list_devices(&caller.tenant, &user).await?))
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub removed: u64,
}

#[utoipa::path(
    delete, path = "/v1/users/{user_id}/devices", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, description = "Signed out everywhere: every device removed", body = Removed)),
    security(("server_key" = []))
)]
pub async fn delete_devices(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<Json<Removed>> {
    let user = parse_id::<UserId>("user_id", uid)?;
    let removed = state
        .store
        .delete_user_devices(&caller.tenant, &user)
        .await?;
    tracing::info!(tenant.id = %caller.tenant, user.id = %user, removed, "user signed out everywhere");
    Ok(Json(Removed { removed }))
}

#[utoipa::path(
    delete, path = "/v1/users/{user_id}/devices/{device_id}", tag = "users",
    params(("user_id" = String, Path), ("device_id" = String, Path)),
    responses((status = 204, description = "Deregistered"), (status = 404, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn delete_device(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath((uid, did)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let user = parse_id::<UserId>("user_id", uid)?;
    let device = parse_id::<DeviceId>("device_id", did)?;
    crate::me::delete_owned_device(&state, &caller.tenant, &user, &device).await
}

#[utoipa::path(
    get, path = "/v1/users/{user_id}/presence", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, description = "Whether the user is looking (foreground) or away, and since when", body = Object)),
    security(("server_key" = []))
)]
pub async fn presence(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<Json<Presence>> {
    let user = parse_id::<UserId>("user_id", uid)?;
    Ok(Json(state.presence(&caller.tenant, &user).await))
}

#[utoipa::path(
    get, path = "/v1/users/{user_id}/unread", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, description = "Per-conversation unread counts and the badge total", body = UnreadView)),
    security(("server_key" = []))
)]
pub async fn unread(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<Json<UnreadView>> {
    let user = parse_id::<UserId>("user_id", uid)?;
    unread_view(&state, &caller.tenant, &user).await.map(Json)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// Lifetime in seconds (default 3600, at most the server's `auth.max_minted_ttl_s`).
    #[serde(default)]
    pub ttl_s: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct MintedToken {
    pub token: String,
    pub user_id: String,
    /// RFC 3339.
    pub expires_at: String,
}

#[utoipa::path(
    post, path = "/v1/users/{user_id}/tokens", tag = "users", params(("user_id" = String, Path)),
    request_body = MintRequest,
    responses((status = 201, description = "A short-lived client token for the user", body = MintedToken)),
    security(("server_key" = []))
)]
pub async fn mint_token(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
    OptionalJson(body): OptionalJson<MintRequest>,
) -> ApiResult<(StatusCode, Json<MintedToken>)> {
    let user = parse_id::<UserId>("user_id", uid)?;
    let max = state.config.auth.max_minted_ttl_s;
    let ttl = body.ttl_s.unwrap_or(3600.min(max));
    if ttl == 0 || ttl > max {
        return Err(herald_engine::validate::Invalid::new(
            "ttl_s",
            format!("must be between 1 and {max}"),
        )
        .into());
    }
    let (_, auth) = state
        .store
        .get_tenant(&caller.tenant)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let secrets = TenantSecrets::open(&state.sealer, &caller.tenant, &auth)
        .ok_or_else(|| ApiError::internal("open tenant secrets", "seal"))?;
    let (token, expires_at) = tokens::mint(&secrets, &caller.tenant, &user, state.clock.now(), ttl);
    Ok((
        StatusCode::CREATED,
        Json(MintedToken {
            token,
            user_id: user.to_string(),
            expires_at: herald_engine::event::rfc3339(expires_at),
        }),
    ))
}
