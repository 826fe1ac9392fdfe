//! `POST /v1/projects/{project}/messages:send`: the access token, the message checks, the
//! scripted answer, and recording.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, Version};
use axum::response::Response;
use serde_json::{Value, json};

use super::*;

pub(super) fn reject(
    shared: &Shared,
    path: &str,
    status: u16,
    why: String,
    body: Value,
) -> Response {
    shared.lock().rejections.push(Rejection {
        path: path.into(),
        status,
        why,
    });
    json_response(status, &body)
}

pub(super) fn invalid_argument(message: &str) -> Value {
    json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT",
        "details": [{"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"}]}})
}

/// `POST /v1/projects/{project}/messages:send` (and 404 for anything else).
pub(super) async fn send(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let (project, access_token) = match authorize(&shared, &method, &path, &headers) {
        Ok(authorized) => authorized,
        Err((status, why, body)) => return reject(&shared, &path, status, why, body),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let Some(message) = parsed.as_ref().and_then(|b| b.get("message")).cloned() else {
        let why = "Invalid JSON payload received: no message".to_string();
        return reject(&shared, &path, 400, why.clone(), invalid_argument(&why));
    };
    if let Err(why) = check_message(&message) {
        return reject(&shared, &path, 400, why.clone(), invalid_argument(&why));
    }
    let token = message["token"].as_str().unwrap_or_default().to_string();
    let (status, response) = scripted_answer(&shared, &project, &token);
    shared.lock().messages.push(FcmMessage {
        project,
        token,
        message,
        raw: body,
        access_token,
        version,
        headers,
        status,
        at: std::time::SystemTime::now(),
    });
    response
}

/// The route, then an access token this fake issued and that has not expired, then a known
/// project; answers the project and the access token. `Err` is the rejection to send: status,
/// why, body.
fn authorize(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(String, String), (u16, String, Value)> {
    let project = path
        .strip_prefix("/v1/projects/")
        .and_then(|p| p.strip_suffix("/messages:send"))
        .filter(|p| !p.contains('/'));
    let not_found = json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}});
    let (Some(project), true) = (project, *method == Method::POST) else {
        return Err((404, "no such route".into(), not_found));
    };
    let project = project.to_string();
    let access_token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let now = shared.config.clock.now();
    let valid = shared
        .lock()
        .issued
        .get(&access_token)
        .is_some_and(|t| !t.revoked && now < t.expires_at);
    if !valid {
        let why = "access token not issued or expired".into();
        return Err((401, why, unauthenticated()));
    }
    if project != shared.config.project_id {
        return Err((404, format!("unknown project {project}"), not_found));
    }
    Ok((project, access_token))
}

/// The token's next scripted reply (else the default, else success), as the status and the
/// response sent.
fn scripted_answer(shared: &Shared, project: &str, token: &str) -> (u16, Response) {
    let reply = {
        let mut inner = shared.lock();
        inner
            .scripts
            .get_mut(token)
            .and_then(VecDeque::pop_front)
            .or_else(|| inner.default.clone())
            .unwrap_or(Reply::Ok)
    };
    match reply.error() {
        None => {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            let name = format!("projects/{project}/messages/{id}");
            (200, json_response(200, &json!({"name": name})))
        }
        Some((status, body, retry_after_s)) => (
            status,
            with_retry_after(json_response(status, &body), retry_after_s),
        ),
    }
}
