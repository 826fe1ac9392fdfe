//! App (push configuration) API. Secrets are write-only: stored sealed, read back masked; a PUT
//! that sends the mask keeps the stored secret.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_engine::app::{self, AppConfig};
use herald_engine::ids::{AppId, TenantId};
use herald_engine::store::{Store, StoredApp};
use herald_engine::validate::Invalid;
use serde_json::Value;

use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath, TenantCaller};
use crate::api::ids::parse_id;
use crate::app_state::AppState;
use crate::seal::Sealer;

fn context(tenant: &TenantId, app: &AppId) -> String {
    format!("app:{tenant}:{app}")
}

pub fn open_secrets(
    sealer: &Sealer,
    tenant: &TenantId,
    stored: &StoredApp,
) -> Result<BTreeMap<String, String>, ApiError> {
    let bytes = sealer
        .open(&context(tenant, &stored.app_id), &stored.sealed_secrets)
        .map_err(|e| ApiError::internal("open app secrets", e))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::internal("decode app secrets", e))
}

/// The push-proxy preset brings the failure policy of the system it replaces: one attempt, no
/// retry, and 400/500 answers never open the circuit. Written into the stored document (so a
/// GET shows them) unless the app says otherwise.
fn preset_defaults(document: &mut Value) {
    if document
        .pointer("/connector/preset")
        .and_then(Value::as_str)
        != Some("push_proxy")
    {
        return;
    }
    let Some(root) = document.as_object_mut() else {
        return;
    };
    let delivery = root
        .entry("delivery")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(delivery) = delivery.as_object_mut() {
        delivery.entry("retry").or_insert(Value::Bool(false));
        delivery
            .entry("breaker_statuses")
            .or_insert_with(|| serde_json::json!([408, 429, 502, 503, 504]));
    }
}

/// A `webpush` section without keys gets a fresh VAPID pair; one with only a private key gets
/// its public key, so clients can always subscribe with `vapid_public_key`.
fn vapid_keys(document: &mut Value) {
    let Some(webpush) = document.get_mut("webpush").and_then(Value::as_object_mut) else {
        return;
    };
    match webpush.get("vapid_private_key").and_then(Value::as_str) {
        None => {
            let (public, private) = crate::channels::webpush::generate_vapid_keys();
            webpush.insert("vapid_public_key".into(), Value::from(public));
            webpush.insert("vapid_private_key".into(), Value::from(private));
        }
        Some(private) => {
            if !webpush.contains_key("vapid_public_key")
                && let Ok(public) = crate::channels::webpush::public_key_of(private)
            {
                webpush.insert("vapid_public_key".into(), Value::from(public));
            }
        }
    }
}

/// Checks key material the engine cannot parse without crypto.
fn check_credentials(config: &AppConfig) -> Result<(), Invalid> {
    if let Some(template) = config.connector.as_ref().and_then(|c| c.template.as_ref()) {
        crate::channels::connector::template::validate(template).map_err(|e| {
            Invalid::new(
                herald_engine::validate::join_path("connector.template", &e.path),
                e.message,
            )
        })?;
    }
    if let Some(apns) = &config.apns
        && jsonwebtoken::EncodingKey::from_ec_pem(apns.private_key.as_bytes()).is_err()
    {
        return Err(Invalid::new(
            "apns.private_key",
            "must be the .p8 PKCS#8 PEM of a P-256 key",
        ));
    }
    if let Some(fcm) = &config.fcm
        && jsonwebtoken::EncodingKey::from_rsa_pem(fcm.service_account.private_key.as_bytes())
            .is_err()
    {
        return Err(Invalid::new(
            "fcm.service_account.private_key",
            "must be an RSA private key in PEM",
        ));
    }
    if let Some(smtp) = &config.smtp
        && smtp.from.parse::<lettre::message::Mailbox>().is_err()
    {
        return Err(Invalid::new(
            "smtp.from",
            "must be an address such as chat@example.com or \"Chat\" <chat@example.com>",
        ));
    }
    if let Some(webpush) = &config.webpush
        && let Some(private) = &webpush.vapid_private_key
    {
        let public = crate::channels::webpush::public_key_of(private).map_err(|_| {
            Invalid::new(
                "webpush.vapid_private_key",
                "must be a base64url 32-byte P-256 private key",
            )
        })?;
        if webpush
            .vapid_public_key
            .as_ref()
            .is_some_and(|p| p.trim_end_matches('=') != public)
        {
            return Err(Invalid::new(
                "webpush.vapid_public_key",
                "is not the public key of vapid_private_key (leave it out: Herald derives it)",
            ));
        }
    }
    Ok(())
}

#[utoipa::path(
    put, path = "/v1/apps/{app_id}", tag = "apps",
    params(("app_id" = String, Path)),
    request_body(content = Object, description = "The app document: `name`, `rules`, `content`, and channel sections `apns`, `fcm`, `webpush`, `smtp`, `webhooks`, `connector`"),
    responses((status = 201, description = "Created; secrets masked", body = Object),
              (status = 200, description = "Replaced; secrets masked", body = Object),
              (status = 422, description = "Invalid, with the field path", body = crate::api::error::Problem)),
    security(("server_key" = []))
)]
pub async fn put_app(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
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
    )
    .await?;
    state.engine.app_changed(&caller.tenant);
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

/// Validates and stores an app document (shared by the API and the CLI). Answers whether it
/// was created, and the stored document with secrets masked.
pub async fn store_app(
    store: &dyn Store,
    sealer: &Sealer,
    tenant: &TenantId,
    app_id: &AppId,
    mut document: Value,
    now: time::OffsetDateTime,
) -> ApiResult<(bool, Value)> {
    if !document.is_object() {
        return Err(Invalid::new("", "the app document must be a JSON object").into());
    }
    let existing = store.get_app(tenant, app_id).await?;
    let previous = match &existing {
        Some(stored) => open_secrets(sealer, tenant, stored)?,
        None => BTreeMap::new(),
    };
    app::restore_secrets(&mut document, &previous)?;
    preset_defaults(&mut document);
    vapid_keys(&mut document);
    let config: AppConfig = crate::api::extract::parse_json(
        &serde_json::to_vec(&document).expect("a Value serialises"),
    )?;
    config.validate()?;
    check_credentials(&config)?;
    let mut canonical =
        serde_json::to_value(&config).map_err(|e| ApiError::internal("serialise app", e))?;
    let secrets = app::take_secrets(&mut canonical);
    let stored = StoredApp {
        app_id: app_id.clone(),
        document: canonical.clone(),
        sealed_secrets: sealer.seal(
            &context(tenant, app_id),
            &serde_json::to_vec(&secrets).expect("a map serialises"),
        ),
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let created = store.put_app(tenant, &stored).await?;
    Ok((created, canonical))
}

#[utoipa::path(
    get, path = "/v1/apps/{app_id}", tag = "apps",
    params(("app_id" = String, Path)),
    responses((status = 200, description = "The app document, secrets masked", body = Object),
              (status = 404, body = crate::api::error::Problem)),
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
    responses((status = 204, description = "Deleted with its devices"), (status = 404, body = crate::api::error::Problem)),
    security(("server_key" = []))
)]
pub async fn delete_app(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let app_id = parse_id::<AppId>("app_id", app_id)?;
    if state.store.delete_app(&caller.tenant, &app_id).await? {
        state.engine.app_changed(&caller.tenant);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("app"))
    }
}

#[utoipa::path(
    get, path = "/v1/apps/{app_id}/endpoints", tag = "apps",
    params(("app_id" = String, Path)),
    responses((status = 200, description = "Health of the app's delivery endpoints on this node: circuit state, failures, disabled", body = [Object]),
              (status = 404, body = crate::api::error::Problem)),
    security(("server_key" = []))
)]
pub async fn endpoints(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<Vec<crate::delivery::EndpointHealth>>> {
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
              (status = 404, description = "No such disabled endpoint", body = crate::api::error::Problem)),
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
