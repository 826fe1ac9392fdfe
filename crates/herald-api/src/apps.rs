//! App (push configuration) API. Secrets are write-only: stored sealed, read back masked; a PUT
//! that sends the mask keeps the stored secret.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_engine::ids::AppId;
use herald_tenancy::apps::{StoreOptions, store_app};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, TenantCaller};
use crate::ids::parse_id;
use crate::state::AppState;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PutAppQuery {
    /// Generate a new VAPID key pair although the app has one (a `webpush` section without
    /// keys otherwise keeps the stored pair). Every existing browser subscription stops
    /// working.
    #[serde(default)]
    pub rotate_vapid_keys: bool,
}

#[utoipa::path(
    put, path = "/v1/apps/{app_id}", tag = "apps",
    params(("app_id" = String, Path), PutAppQuery),
    request_body(content = Object, description = "The app document: `name`, `rules` (`notify_roles`, `bot_message_roles`, `secondary_rule`, `filter`, `grace_delay_ms`, `coalesce_window_ms`, `email_delay_ms`, `chat_ttl_s`, `auto_join_calls`, `left_notice {enabled, text, roles}`), `content`, `delivery`, `templates`, and channel sections `apns`, `fcm`, `webpush`, `smtp`, `webhooks`, `connector`"),
    responses((status = 201, description = "Created; secrets masked", body = Object),
              (status = 200, description = "Replaced; secrets masked", body = Object),
              (status = 422, description = "Invalid, with the field path", body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn put_app(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PutAppQuery>,
    ApiJson(document): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let app_id = parse_id::<AppId>("app_id", app_id)?;
    let (created, masked) = store_app(
        state.store.as_ref(),
        &state.sealer,
        &caller.tenant,
        &app_id,
        document,
        state.clock.now(),
        StoreOptions {
            rotate_vapid_keys: query.rotate_vapid_keys,
        },
    )
    .await?;
    state.app_changed(&caller.tenant);
    tracing::info!(tenant.id = %caller.tenant, app.id = %app_id, created, "app configuration stored");
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(masked),
    ))
}

#[utoipa::path(
    get, path = "/v1/apps/{app_id}", tag = "apps",
    params(("app_id" = String, Path)),
    responses((status = 200, description = "The app document, secrets masked", body = Object),
              (status = 404, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn get_app(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let app_id = parse_id::<AppId>("app_id", app_id)?;
    let stored = state
        .store
        .get_app(&caller.tenant, &app_id)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    Ok(Json(stored.document))
}

#[utoipa::path(
    get, path = "/v1/apps", tag = "apps",
    responses((status = 200, description = "Every app id of the tenant", body = [String])),
    security(("server_key" = []))
)]
pub async fn list_apps(
    State(state): State<AppState>,
    caller: TenantCaller,
) -> ApiResult<Json<Vec<String>>> {
    let apps = state.store.list_apps(&caller.tenant).await?;
    Ok(Json(
        apps.into_iter().map(|a| a.app_id.to_string()).collect(),
    ))
}

#[utoipa::path(
    delete, path = "/v1/apps/{app_id}", tag = "apps",
    params(("app_id" = String, Path)),
    responses((status = 204, description = "Deleted with its devices"), (status = 404, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn delete_app(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let app_id = parse_id::<AppId>("app_id", app_id)?;
    if state.store.delete_app(&caller.tenant, &app_id).await? {
        state.app_changed(&caller.tenant);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("app"))
    }
}

#[utoipa::path(
    get, path = "/v1/apps/{app_id}/endpoints", tag = "apps",
    params(("app_id" = String, Path)),
    responses((status = 200, description = "Health of the app's delivery endpoints on this node: circuit state, failures, disabled", body = [Object]),
              (status = 404, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn endpoints(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<Vec<herald_runtime::delivery::EndpointHealth>>> {
    let app_id = parse_id::<AppId>("app_id", app_id)?;
    state
        .store
        .get_app(&caller.tenant, &app_id)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    Ok(Json(
        state.delivery.endpoint_health(&caller.tenant, &app_id),
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reenable {
    /// As listed by `GET /v1/apps/{app_id}/endpoints`.
    pub endpoint_key: String,
}

#[utoipa::path(
    post, path = "/v1/apps/{app_id}/endpoints/enable", tag = "apps",
    params(("app_id" = String, Path)), request_body = Reenable,
    responses((status = 200, description = "Re-enabled; its waiting deliveries go again", body = Object),
              (status = 404, description = "No such disabled endpoint", body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn reenable(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
    ApiJson(body): ApiJson<Reenable>,
) -> ApiResult<Json<Value>> {
    let app_id = parse_id::<AppId>("app_id", app_id)?;
    if state
        .delivery
        .reenable(&caller.tenant, &app_id, &body.endpoint_key)
    {
        metrics::counter!("herald_endpoints_reenabled_total").increment(1);
        Ok(Json(
            serde_json::json!({"endpoint_key": body.endpoint_key, "enabled": true}),
        ))
    } else {
        Err(ApiError::NotFound("disabled endpoint"))
    }
}
