//! `POST /v1/events`: one event or a batch, idempotent on `event_id`, acknowledged only after
//! the store has committed it.

use axum::Json;
use axum::extract::State;
use herald_engine::event::NewEvent;
use herald_engine::store::Appended;
use herald_engine::validate::Invalid;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, TenantCaller};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct EventResult {
    pub event_id: String,
    pub conversation_id: String,
    pub position: u64,
    /// True when this `event_id` was stored before: the original result, nothing changed.
    pub duplicate: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    pub results: Vec<EventResult>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PostEventsResponse {
    One(EventResult),
    Batch(BatchResult),
}

/// Accepts a single event object, an array of events, or `{"events": [...]}`.
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    request_body(content = Object, description = "An event (`event_id`, `conversation_id`, `type`, `occurred_at` and the type's fields), an array of events, or `{\"events\": [...]}`"),
    responses(
        (status = 200, description = "Stored durably (or recognised as a repeat)", body = PostEventsResponse),
        (status = 409, description = "An event_id was reused with a different body", body = crate::error::Problem),
        (status = 422, description = "Invalid event", body = crate::error::Problem),
    ),
    security(("server_key" = []))
)]
pub async fn post_events(
    State(state): State<AppState>,
    caller: TenantCaller,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<PostEventsResponse>> {
    let (items, batch) = match body {
        Value::Array(items) => (items, true),
        Value::Object(mut map) if map.contains_key("events") && !map.contains_key("type") => {
            match map.remove("events") {
                Some(Value::Array(items)) if map.is_empty() => (items, true),
                _ => {
                    return Err(
                        Invalid::new("events", "must be the only field, and an array").into(),
                    );
                }
            }
        }
        single @ Value::Object(_) => (vec![single], false),
        _ => return Err(Invalid::new("", "expected an event object or an array of events").into()),
    };
    let max = state.config.limits.max_batch_events;
    if items.is_empty() || items.len() > max {
        return Err(Invalid::new("events", format!("a batch holds 1 to {max} events")).into());
    }
    let at = |i: usize| {
        if batch {
            format!("events[{i}]")
        } else {
            String::new()
        }
    };
    let events = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| NewEvent::from_json(item).map_err(|e| e.within(&at(i))))
        .collect::<Result<Vec<_>, _>>()?;
    let started = std::time::Instant::now();
    let appended = state
        .store
        .append_events(&caller.tenant, events, state.clock.now())
        .await
        .map_err(|e| unbatch(e.into(), batch))?;
    metrics::histogram!("herald_events_append_seconds").record(started.elapsed().as_secs_f64());
    let duplicates = appended.iter().filter(|a| a.duplicate).count();
    metrics::counter!("herald_events_accepted_total")
        .increment((appended.len() - duplicates) as u64);
    metrics::counter!("herald_events_duplicate_total").increment(duplicates as u64);
    state.committed(&caller.tenant, &appended);
    let mut results: Vec<EventResult> = appended.iter().map(result).collect();
    Ok(Json(if batch {
        PostEventsResponse::Batch(BatchResult { results })
    } else {
        PostEventsResponse::One(results.remove(0))
    }))
}

/// For a single event, paths are relative to the body, not to `events[0]`.
fn unbatch(error: ApiError, batch: bool) -> ApiError {
    if batch {
        return error;
    }
    let strip = |path: String| {
        path.strip_prefix("events[0]")
            .map(|p| p.trim_start_matches('.').to_string())
            .unwrap_or(path)
    };
    match error {
        ApiError::EventConflict { path } => ApiError::EventConflict { path: strip(path) },
        ApiError::Validation(invalid) => {
            ApiError::Validation(Invalid::new(strip(invalid.path), invalid.message))
        }
        other => other,
    }
}

pub fn result(a: &Appended) -> EventResult {
    EventResult {
        event_id: a.event_id.to_string(),
        conversation_id: a.conversation_id.to_string(),
        position: a.position,
        duplicate: a.duplicate,
    }
}
