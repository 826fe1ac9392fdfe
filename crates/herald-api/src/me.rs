//! The client API: a client token acts as its own user only.

use axum::Json;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use herald_engine::device::{Device, RegisterDevice, Registered};
use herald_engine::ids::{ConversationId, DeviceId, TenantId, UserId};
use herald_engine::store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::conversations::{EventsPage, PageQuery, events_page, generated_event_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ClientCaller};
use crate::ids::parse_id;
use crate::state::AppState;
use herald_runtime::live::protocol::SessionState;

#[utoipa::path(
    post, path = "/v1/me/devices", tag = "me",
    request_body(content = Object, description = "`{app_id, channel, token | subscription, platform, locale?, installation_id?}`"),
    responses((status = 201, description = "Registered", body = Object),
              (status = 200, description = "Already registered (refreshed, rotated or moved to this user)", body = Object),
              (status = 422, body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn register_device(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiJson(body): ApiJson<RegisterDevice>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    let registration = body.validate(caller.user.clone())?;
    if state
        .store
        .get_app(&caller.tenant, &registration.app_id)
        .await?
        .is_none()
    {
        return Err(
            herald_engine::validate::Invalid::new("app_id", "no app with this id exists").into(),
        );
    }
    let new_id = DeviceId::parse(format!("dev_{}", uuid::Uuid::now_v7().simple()))
        .expect("generated ids are valid");
    let (device, outcome) = state
        .store
        .register_device(&caller.tenant, &registration, new_id, state.clock.now())
        .await?;
    metrics::counter!("herald_device_registrations_total", "outcome" => format!("{outcome:?}").to_lowercase()).increment(1);
    if outcome == Registered::Transferred {
        tracing::info!(tenant.id = %caller.tenant, device.id = %device.id, user.id = %caller.user, "device token moved to another user");
    }
    let status = if outcome == Registered::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(device)))
}

#[utoipa::path(
    get, path = "/v1/me/devices", tag = "me",
    responses((status = 200, description = "My devices", body = [Object])),
    security(("client_token" = []))
)]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: ClientCaller,
) -> ApiResult<Json<Vec<Device>>> {
    Ok(Json(
        state
            .store
            .list_devices(&caller.tenant, &caller.user)
            .await?,
    ))
}

/// Deletes a device only if `user` owns it; anyone else's device is "not found".
pub async fn delete_owned_device(
    state: &AppState,
    tenant: &TenantId,
    user: &UserId,
    device: &DeviceId,
) -> ApiResult<StatusCode> {
    match state.store.get_device(tenant, device).await? {
        Some(d) if &d.user_id == user => {
            state.store.delete_device(tenant, device).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::NotFound("device")),
    }
}

#[utoipa::path(
    delete, path = "/v1/me/devices/{device_id}", tag = "me", params(("device_id" = String, Path)),
    responses((status = 204, description = "Deregistered"), (status = 404, body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn delete_device(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiPath(did): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let device = parse_id::<DeviceId>("device_id", did)?;
    delete_owned_device(&state, &caller.tenant, &caller.user, &device).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The device token (or Web Push endpoint) to deregister.
    pub token: String,
}

#[utoipa::path(
    delete, path = "/v1/me/devices", tag = "me", params(TokenQuery),
    responses((status = 204, description = "Deregistered"), (status = 404, body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn delete_device_by_token(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> ApiResult<StatusCode> {
    if q.token.is_empty() || q.token.len() > herald_engine::device::MAX_TOKEN_BYTES {
        return Err(
            herald_engine::validate::Invalid::new("token", "must be 1 to 4096 bytes").into(),
        );
    }
    match state
        .store
        .delete_devices_by_token(&caller.tenant, &caller.user, &q.token)
        .await?
    {
        0 => Err(ApiError::NotFound("device")),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConversationUnread {
    pub conversation_id: String,
    pub count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct UnreadView {
    pub conversations: Vec<ConversationUnread>,
    /// The badge: the sum over conversations.
    pub total: u64,
}

pub async fn unread_view(
    state: &AppState,
    tenant: &TenantId,
    user: &UserId,
) -> ApiResult<UnreadView> {
    let counts = state.store.unread(tenant, user).await?;
    let total = counts.iter().map(|c| c.count).sum();
    let conversations = counts
        .into_iter()
        .map(|c| ConversationUnread {
            conversation_id: c.conversation_id.to_string(),
            count: c.count,
        })
        .collect();
    Ok(UnreadView {
        conversations,
        total,
    })
}

#[utoipa::path(
    get, path = "/v1/me/unread", tag = "me",
    responses((status = 200, description = "Per-conversation unread counts and the badge total", body = UnreadView)),
    security(("client_token" = []))
)]
pub async fn unread(
    State(state): State<AppState>,
    caller: ClientCaller,
) -> ApiResult<Json<UnreadView>> {
    unread_view(&state, &caller.tenant, &caller.user)
        .await
        .map(Json)
}

async fn require_participant(
    state: &AppState,
    caller: &ClientCaller,
    cid: &ConversationId,
) -> ApiResult<()> {
    match state
        .store
        .membership(&caller.tenant, cid, &caller.user)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound("conversation")),
    }
}

#[utoipa::path(
    get, path = "/v1/me/conversations/{conversation_id}/events", tag = "me",
    params(("conversation_id" = String, Path), PageQuery),
    responses((status = 200, description = "Catch-up page (only conversations I take part in)", body = EventsPage),
              (status = 404, body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiPath(cid): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<EventsPage>> {
    let cid = parse_id::<ConversationId>("conversation_id", cid)?;
    require_participant(&state, &caller, &cid).await?;
    events_page(&state, &caller.tenant, &cid, page)
        .await
        .map(Json)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// Everything up to and including this position is read.
    pub position: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ReadResult {
    pub conversation_id: String,
    pub read_position: u64,
    pub unread: u64,
    pub total: u64,
}

#[utoipa::path(
    post, path = "/v1/me/conversations/{conversation_id}/read", tag = "me",
    params(("conversation_id" = String, Path)), request_body = ReadRequest,
    responses((status = 200, description = "Read position moved (never backwards)", body = ReadResult),
              (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiPath(cid): ApiPath<String>,
    ApiJson(body): ApiJson<ReadRequest>,
) -> ApiResult<Json<ReadResult>> {
    let cid = parse_id::<ConversationId>("conversation_id", cid)?;
    require_participant(&state, &caller, &cid).await?;
    let appended = state
        .store
        .mark_read(
            &caller.tenant,
            &cid,
            &caller.user,
            body.position,
            generated_event_id("read"),
            state.clock.now(),
        )
        .await
        .map_err(|e| match e {
            StoreError::EventInvalid { invalid, .. } => ApiError::Validation(invalid),
            other => other.into(),
        })?;
    state.committed(&caller.tenant, appended.as_slice());
    let membership = state
        .store
        .membership(&caller.tenant, &cid, &caller.user)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let total = state
        .store
        .unread(&caller.tenant, &caller.user)
        .await?
        .iter()
        .map(|c| c.count)
        .sum();
    Ok(Json(ReadResult {
        conversation_id: cid.to_string(),
        read_position: membership.read_position,
        unread: membership.unread,
        total,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// The initial session state (default `foreground`).
    pub state: Option<SessionState>,
    /// The client token, for clients that cannot set headers on an upgrade.
    pub token: Option<String>,
}

/// A live session's read buffer. tungstenite allocates it up front (128 KiB by default), and
/// most sessions sit idle holding it: that default alone was ~150 KB of the process per
/// session. Client frames are small; a larger one is still read whole, only in more reads.
const LIVE_READ_BUFFER: usize = 1024;

#[utoipa::path(
    get, path = "/v1/live", tag = "me", params(LiveQuery),
    responses((status = 101, description = "WebSocket live session (JSON text frames; see the live protocol)"),
              (status = 401, body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn live(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiQuery(q): ApiQuery<LiveQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let max = state.config.limits.max_frame_bytes;
    let initial = q.state.unwrap_or(SessionState::Foreground);
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(LIVE_READ_BUFFER)
        .on_upgrade(move |socket| {
            crate::live::session::run(state, socket, caller.tenant, caller.user, initial)
        })
}

#[derive(Serialize, ToSchema)]
pub struct WebPushKey {
    /// The app's VAPID public key (base64url): the `applicationServerKey` to subscribe with.
    pub vapid_public_key: String,
}

#[utoipa::path(
    get, path = "/v1/me/apps/{app_id}/webpush", tag = "me",
    params(("app_id" = String, Path)),
    responses((status = 200, description = "What a browser needs to subscribe for this app", body = WebPushKey),
              (status = 404, description = "No such app, or it has no webpush section", body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn webpush_key(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<WebPushKey>> {
    let app_id = parse_id::<herald_engine::ids::AppId>("app_id", app_id)?;
    let stored = state
        .store
        .get_app(&caller.tenant, &app_id)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    let key = stored
        .document
        .pointer("/webpush/vapid_public_key")
        .and_then(|k| k.as_str())
        .ok_or(ApiError::NotFound("webpush section"))?;
    Ok(Json(WebPushKey {
        vapid_public_key: key.to_string(),
    }))
}

#[utoipa::path(
    post, path = "/v1/me/devices/{device_id}/health/{check_id}", tag = "me",
    params(("device_id" = String, Path), ("check_id" = String, Path)),
    responses((status = 204, description = "Acknowledged: the subscription is healthy"),
              (status = 404, description = "No such outstanding check for my device", body = crate::error::Problem)),
    security(("client_token" = []))
)]
pub async fn acknowledge_health_check(
    State(state): State<AppState>,
    caller: ClientCaller,
    ApiPath((device_id, check_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let device = parse_id::<DeviceId>("device_id", device_id)?;
    herald_engine::validate::text("check_id", &check_id, 128)?;
    if state
        .notify
        .acknowledge_check(
            &caller.tenant,
            &caller.user,
            &device,
            &check_id,
            state.clock.now(),
        )
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("health check"))
    }
}
