//! Operator API: tenants and their keys. Enabled only when an operator key is configured.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_engine::ids::{KeyId, TenantId};
use herald_engine::tenant::Tenant;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, OperatorCaller, OptionalJson};
use crate::ids::parse_id;
use crate::keys::{CreateKey, CreatedKey, key_name};
use crate::state::AppState;
use herald_tenancy::auth::keys;
use herald_tenancy::tenants;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[utoipa::path(
    post, path = "/v1/admin/tenants", tag = "admin", request_body = CreateTenant,
    responses((status = 201, description = "Created with a first key, shown once", body = CreatedKey),
              (status = 409, body = crate::error::Problem)),
    security(("operator_key" = []))
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    _: OperatorCaller,
    ApiJson(body): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let id = parse_id::<TenantId>("id", body.id)?;
    let name = body.name.unwrap_or_else(|| id.to_string());
    herald_engine::validate::text("name", &name, 256)?;
    let new = tenants::create_tenant(
        state.store.as_ref(),
        &state.sealer,
        &id,
        &name,
        state.clock.now(),
    )
    .await?;
    tracing::info!(tenant.id = %id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: new.key,
            secret: new.secret,
        }),
    ))
}

#[utoipa::path(
    get, path = "/v1/admin/tenants", tag = "admin",
    responses((status = 200, description = "Every tenant", body = [Object])),
    security(("operator_key" = []))
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    _: OperatorCaller,
) -> ApiResult<Json<Vec<Tenant>>> {
    Ok(Json(state.store.list_tenants().await?))
}

#[utoipa::path(
    post, path = "/v1/admin/tenants/{tenant_id}/keys", tag = "admin", params(("tenant_id" = String, Path)),
    request_body = CreateKey,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedKey),
              (status = 404, body = crate::error::Problem)),
    security(("operator_key" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    _: OperatorCaller,
    ApiPath(tenant): ApiPath<String>,
    OptionalJson(body): OptionalJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let tenant = parse_id::<TenantId>("tenant_id", tenant)?;
    state
        .store
        .get_tenant(&tenant)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let new = keys::create(
        state.store.as_ref(),
        &tenant,
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
    delete, path = "/v1/admin/tenants/{tenant_id}/keys/{key_id}", tag = "admin",
    params(("tenant_id" = String, Path), ("key_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::error::Problem)),
    security(("operator_key" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    _: OperatorCaller,
    ApiPath((tenant, key)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = parse_id::<TenantId>("tenant_id", tenant)?;
    let key = parse_id::<KeyId>("key_id", key)?;
    if state
        .store
        .revoke_api_key(&tenant, &key, state.clock.now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("key"))
    }
}
