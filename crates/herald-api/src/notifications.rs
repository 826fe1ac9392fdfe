//! The decision log and proactive notifications: what was sent, what was not and why
//! (`GET /v1/notifications/{id}`, `GET /v1/users/{uid}/notifications`), proactive sends with
//! `send_at` that can be cancelled until they go, and users' preferences.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_engine::delivery::DeliveryView;
use herald_engine::ids::{AppId, UserId};
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::record::{NotificationRecord, Proactive, Status};
use herald_engine::push::PushKind;
use herald_engine::validate::{self, Invalid};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, TenantCaller};
use crate::ids::parse_id;
use crate::state::AppState;

pub const MAX_RECIPIENTS: usize = 1000;

#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub record: NotificationRecord,
    /// One per device or webhook endpoint, with every attempt.
    #[schema(value_type = Vec<Object>)]
    pub deliveries: Vec<DeliveryView>,
}

#[utoipa::path(
    get, path = "/v1/notifications/{notification_id}", tag = "notifications",
    params(("notification_id" = String, Path)),
    responses((status = 200, description = "The decision, its log, and its deliveries with their attempts", body = NotificationView),
              (status = 404, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn get_notification(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NotificationView>> {
    let record = state
        .notify
        .notification(&caller.tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("notification"))?;
    let deliveries = state.queue.deliveries_of(&caller.tenant, &id).await?;
    Ok(Json(NotificationView { record, deliveries }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// How many (default 50, at most 500).
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct UserNotifications {
    /// Newest first, including the ones not sent and why.
    #[schema(value_type = Vec<Object>)]
    pub notifications: Vec<NotificationRecord>,
}

#[utoipa::path(
    get, path = "/v1/users/{user_id}/notifications", tag = "notifications",
    params(("user_id" = String, Path), RecentQuery),
    responses((status = 200, description = "Recent decisions about the user: \"why wasn't I notified?\"", body = UserNotifications)),
    security(("server_key" = []))
)]
pub async fn user_notifications(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecentQuery>,
) -> ApiResult<Json<UserNotifications>> {
    let user = parse_id::<UserId>("user_id", uid)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(UserNotifications {
        notifications: state
            .notify
            .user_notifications(&caller.tenant, &user, limit)
            .await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendNotification {
    pub app_id: String,
    /// 1 to 1000 users.
    pub user_ids: Vec<String>,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Only these channels (default: every channel of the users' devices).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Seconds it stays worth sending (default 3600).
    #[serde(default)]
    pub ttl: Option<u64>,
    /// RFC 3339; absent: now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub send_at: Option<OffsetDateTime>,
}

#[derive(Serialize, ToSchema)]
pub struct Scheduled {
    pub user_id: String,
    pub notification_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct SendResult {
    pub notifications: Vec<Scheduled>,
}

fn check(request: &SendNotification) -> Result<(Vec<UserId>, u64), Invalid> {
    if request.user_ids.is_empty() || request.user_ids.len() > MAX_RECIPIENTS {
        return Err(Invalid::new(
            "user_ids",
            format!("must list 1 to {MAX_RECIPIENTS} users"),
        ));
    }
    let users = request
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, u)| UserId::parse(u.as_str()).map_err(|e| e.within(&format!("user_ids[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    validate::text("title", &request.title, 1024)?;
    validate::text("body", &request.body, 4096)?;
    if request.data.len() > 32 {
        return Err(Invalid::new("data", "at most 32 entries"));
    }
    for (k, v) in &request.data {
        validate::text(&format!("data.{k}"), v, 1024)?;
        if k.is_empty()
            || k.len() > 64
            || k.starts_with("google.")
            || k.starts_with("gcm.")
            || k == "from"
            || k == "message_type"
        {
            return Err(Invalid::new(
                format!("data.{k}"),
                "is not a usable key (1-64 bytes; not from, message_type, google.*, gcm.*)",
            ));
        }
    }
    for (i, c) in request.channels.iter().enumerate() {
        if herald_engine::device::DeviceChannel::parse(c).is_none() {
            return Err(Invalid::new(
                format!("channels[{i}]"),
                "is not a channel (apns, apns_voip, fcm, webpush, connector)",
            ));
        }
    }
    let ttl = request.ttl.unwrap_or(3600);
    if !(1..=2_419_200).contains(&ttl) {
        return Err(Invalid::new("ttl", "must be between 1 s and 28 days"));
    }
    Ok((users, ttl))
}

#[utoipa::path(
    post, path = "/v1/notifications", tag = "notifications", request_body = SendNotification,
    responses((status = 201, description = "Scheduled (durably); sent at `send_at` or at once", body = SendResult),
              (status = 422, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn send(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiJson(request): ApiJson<SendNotification>,
) -> ApiResult<(StatusCode, Json<SendResult>)> {
    let app_id = parse_id::<AppId>("app_id", request.app_id.clone())?;
    let (users, ttl_s) = check(&request)?;
    if state
        .store
        .get_app(&caller.tenant, &app_id)
        .await?
        .is_none()
    {
        return Err(Invalid::new("app_id", "no app with this id exists").into());
    }
    let now = state.clock.now();
    let due = request.send_at.unwrap_or(now).max(now);
    let proactive = Proactive {
        title: request.title,
        body: request.body,
        data: request.data,
        channels: request.channels,
        ttl_s,
    };
    let mut commit = herald_engine::notify::store::NotifyCommit::default();
    let mut result = vec![];
    for user in users {
        let id = format!("ntf_{}", uuid::Uuid::now_v7().simple());
        let reason = format!("scheduled for {}", herald_engine::event::rfc3339(due));
        let mut record = NotificationRecord::new(
            id.clone(),
            caller.tenant.clone(),
            user.clone(),
            Some(app_id.clone()),
            None,
            PushKind::Proactive,
            None,
            None,
            Status::Scheduled,
            reason,
            now,
        );
        record.due_at = Some(due);
        record.proactive = Some(proactive.clone());
        commit.records.push(record);
        result.push(Scheduled {
            user_id: user.to_string(),
            notification_id: id,
        });
    }
    state.notify.commit_notify(commit, now).await?;
    state.engine.wake();
    Ok((
        StatusCode::CREATED,
        Json(SendResult {
            notifications: result,
        }),
    ))
}

#[utoipa::path(
    delete, path = "/v1/notifications/{notification_id}", tag = "notifications",
    params(("notification_id" = String, Path)),
    responses((status = 200, description = "Cancelled", body = Object),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "Already sent (or not a proactive notification)", body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NotificationRecord>> {
    let mut record = state
        .notify
        .notification(&caller.tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("notification"))?;
    if record.kind != PushKind::Proactive || record.status != Status::Scheduled {
        return Err(ApiError::Conflict(
            "only a proactive notification that has not been sent yet can be cancelled",
        ));
    }
    let now = state.clock.now();
    record.note(Status::Cancelled, "cancelled through the API", now);
    let commit = herald_engine::notify::store::NotifyCommit {
        records: vec![record.clone()],
        ..Default::default()
    };
    state.notify.commit_notify(commit, now).await?;
    Ok(Json(record))
}

#[utoipa::path(
    put, path = "/v1/users/{user_id}/preferences", tag = "users",
    params(("user_id" = String, Path)),
    request_body(content = Object, description = "`{pause_until?, quiet_hours?: {start: \"22:00\", end: \"07:00\", time_zone: \"Europe/Paris\"}, email?, locale?}`"),
    responses((status = 200, description = "Stored", body = Object), (status = 422, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn put_preferences(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
    ApiJson(preferences): ApiJson<Preferences>,
) -> ApiResult<Json<Preferences>> {
    let user = parse_id::<UserId>("user_id", uid)?;
    preferences.validate()?;
    state
        .notify
        .put_preferences(&caller.tenant, &user, &preferences)
        .await?;
    Ok(Json(preferences))
}

#[utoipa::path(
    get, path = "/v1/users/{user_id}/preferences", tag = "users",
    params(("user_id" = String, Path)),
    responses((status = 200, description = "The user's preferences (empty when none were set)", body = Object)),
    security(("server_key" = []))
)]
pub async fn get_preferences(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<Json<Preferences>> {
    let user = parse_id::<UserId>("user_id", uid)?;
    Ok(Json(
        state
            .notify
            .user_context(&caller.tenant, &user, None)
            .await?
            .preferences,
    ))
}
