//! Conversations, participants and transcripts (server key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_engine::ids::{ConversationId, EventId, TenantId, UserId};
use herald_engine::participant::{Participant, Role};
use herald_engine::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::events::{EventResult, result};
use crate::extract::{ApiJson, ApiPath, ApiQuery, TenantCaller};
use crate::ids::parse_id;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Return events after this position (default 0: from the start).
    #[serde(default)]
    pub after: u64,
    /// At most this many events (default and maximum: the server's page size).
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

#[utoipa::path(
    get, path = "/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = String, Path)),
    responses((status = 200, description = "The conversation with its participants and read state", body = Object),
              (status = 404, body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn get_conversation(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(cid): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let cid = parse_id::<ConversationId>("conversation_id", cid)?;
    let conversation = state
        .store
        .get_conversation(&caller.tenant, &cid)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    Ok(Json(serde_json::to_value(conversation).map_err(|e| {
        ApiError::internal("serialise conversation", e)
    })?))
}

#[utoipa::path(
    get, path = "/v1/conversations/{conversation_id}/events", tag = "conversations",
    params(("conversation_id" = String, Path), PageQuery),
    responses((status = 200, description = "Transcript page, ascending positions", body = EventsPage)),
    security(("server_key" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath(cid): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<EventsPage>> {
    let cid = parse_id::<ConversationId>("conversation_id", cid)?;
    events_page(&state, &caller.tenant, &cid, page)
        .await
        .map(Json)
}

pub async fn events_page(
    state: &AppState,
    tenant: &TenantId,
    cid: &ConversationId,
    page: PageQuery,
) -> ApiResult<EventsPage> {
    let max = state.config.limits.max_page_events;
    let limit = page.limit.unwrap_or(max).clamp(1, max);
    let events = state
        .store
        .events_after(tenant, cid, page.after, limit)
        .await?;
    // An empty page of a conversation that does not exist (here) is a 404, like the
    // conversation itself; only empty pages pay for the check.
    if events.is_empty() && state.store.get_conversation(tenant, cid).await?.is_none() {
        return Err(ApiError::NotFound("conversation"));
    }
    let next_after = (events.len() == limit)
        .then(|| events.last().map(|e| e.position))
        .flatten();
    Ok(EventsPage {
        events: events.iter().map(|e| e.to_json()).collect(),
        next_after,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutParticipant {
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
    #[serde(default)]
    pub secondary: bool,
    pub name: Option<String>,
    /// Where notification emails go when the user's preferences name no address.
    pub email: Option<String>,
    /// Who added them (the agent who invited them or forwarded the conversation to them).
    /// A participant added by someone else is told with an `invitation` push when away, per
    /// the app's rules; one who joins on their own is not.
    #[schema(example = "agent-7")]
    pub by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipChange {
    /// Whether membership changed (and a transcript event was appended).
    pub changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventResult>,
}

#[utoipa::path(
    put, path = "/v1/conversations/{conversation_id}/participants/{user_id}", tag = "conversations",
    params(("conversation_id" = String, Path), ("user_id" = String, Path)),
    request_body = PutParticipant,
    responses((status = 200, description = "Membership set; `participant.joined` appended if it changed", body = MembershipChange)),
    security(("server_key" = []))
)]
pub async fn put_participant(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath((cid, uid)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutParticipant>,
) -> ApiResult<Json<MembershipChange>> {
    let cid = parse_id::<ConversationId>("conversation_id", cid)?;
    let participant = Participant {
        user_id: parse_id("user_id", uid)?,
        role: body.role,
        secondary: body.secondary,
        name: body.name,
        email: body.email,
    };
    participant.validate()?;
    let by = body.by.map(|by| parse_id::<UserId>("by", by)).transpose()?;
    let appended = state
        .store
        .put_participant(
            &caller.tenant,
            &cid,
            &participant,
            by.as_ref(),
            generated_event_id("membership"),
            state.clock.now(),
        )
        .await?;
    state.committed(&caller.tenant, appended.as_slice());
    Ok(Json(MembershipChange {
        changed: appended.is_some(),
        event: appended.as_ref().map(result),
    }))
}

#[utoipa::path(
    delete, path = "/v1/conversations/{conversation_id}/participants/{user_id}", tag = "conversations",
    params(("conversation_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, description = "Removed; `participant.left` appended", body = MembershipChange),
              (status = 404, description = "Not a participant", body = crate::error::Problem)),
    security(("server_key" = []))
)]
pub async fn delete_participant(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiPath((cid, uid)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<MembershipChange>)> {
    let cid = parse_id::<ConversationId>("conversation_id", cid)?;
    let user = parse_id::<UserId>("user_id", uid)?;
    let store: &dyn Store = state.store.as_ref();
    let appended = store
        .remove_participant(
            &caller.tenant,
            &cid,
            &user,
            generated_event_id("membership"),
            state.clock.now(),
        )
        .await?;
    let Some(appended) = appended else {
        return Err(ApiError::NotFound("participant"));
    };
    state.committed(&caller.tenant, std::slice::from_ref(&appended));
    Ok((
        StatusCode::OK,
        Json(MembershipChange {
            changed: true,
            event: Some(result(&appended)),
        }),
    ))
}

/// Event ids for events Herald appends itself; prefixed so they never collide with callers'.
pub fn generated_event_id(kind: &str) -> EventId {
    EventId::parse(format!("herald-{kind}-{}", uuid::Uuid::now_v7()))
        .expect("generated ids are valid")
}
