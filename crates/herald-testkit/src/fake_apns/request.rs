//! One request: Apple's header checks in roughly Apple's order, the payload limits, the
//! scripted answer, and recording.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::*;

pub(super) fn answer(
    status: u16,
    apns_id: &str,
    body: Option<Value>,
    extra: &[(&str, String)],
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).expect("status"))
        .header("apns-id", apns_id);
    for (name, value) in extra {
        builder = builder.header(*name, value);
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(&body).expect("JSON"))
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).expect("response")
}

pub(super) fn error(status: u16, reason: &str, apns_id: &str) -> Response<Full<Bytes>> {
    answer(status, apns_id, Some(json!({"reason": reason})), &[])
}

pub(super) fn is_canonical_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

impl Shared {
    pub(super) fn reject(
        &self,
        token: &str,
        status: u16,
        reason: &str,
        apns_id: &str,
    ) -> Response<Full<Bytes>> {
        lock(&self.state).rejections.push(Rejection {
            token: token.to_string(),
            status,
            reason: reason.to_string(),
        });
        error(status, reason, apns_id)
    }

    /// Apple's checks, in roughly Apple's order. `Err` is the rejection to send.
    pub(super) fn check(
        &self,
        connection: &Connection,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(String, String), (u16, &'static str)> {
        let token = device_token(method, path)?;
        for name in [
            "authorization",
            "apns-push-type",
            "apns-topic",
            "apns-priority",
            "apns-expiration",
            "apns-id",
            "apns-collapse-id",
        ] {
            if headers.get_all(name).iter().count() > 1 {
                return Err((400, "DuplicateHeaders"));
            }
        }
        let jwt = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|a| {
                a.strip_prefix("bearer ")
                    .or_else(|| a.strip_prefix("Bearer "))
            })
            .ok_or((403, "MissingProviderToken"))?;
        let verified = self.verify(jwt).map_err(|reason| (403, reason))?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if now - verified.iat > 3600 {
            return Err((403, "ExpiredProviderToken"));
        }
        bind(connection, jwt, &verified)?;
        self.check_headers(headers)?;
        Ok((token.to_string(), jwt.to_string()))
    }

    /// The topic, push type, priority, id, expiration and collapse id.
    fn check_headers(&self, headers: &HeaderMap) -> Result<(), (u16, &'static str)> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let topic = text("apns-topic").ok_or((400, "MissingTopic"))?;
        let push_type = text("apns-push-type").ok_or((400, "InvalidPushType"))?;
        if !PUSH_TYPES.contains(&push_type) {
            return Err((400, "InvalidPushType"));
        }
        if push_type == "voip" && !topic.ends_with(".voip") {
            return Err((400, "BadTopic"));
        }
        if let Some(bundle) = &self.topic {
            let base = topic.strip_suffix(".voip").unwrap_or(topic);
            if base != bundle {
                return Err((400, "TopicDisallowed"));
            }
        }
        let priority = text("apns-priority").unwrap_or("10");
        if !matches!(priority, "1" | "5" | "10") || (push_type == "background" && priority != "5") {
            return Err((400, "BadPriority"));
        }
        if let Some(id) = headers.get("apns-id")
            && !id.to_str().is_ok_and(is_canonical_uuid)
        {
            return Err((400, "BadMessageId"));
        }
        if let Some(expiration) = headers.get("apns-expiration")
            && !expiration.to_str().is_ok_and(|e| e.parse::<u64>().is_ok())
        {
            return Err((400, "BadExpirationDate"));
        }
        if headers
            .get("apns-collapse-id")
            .is_some_and(|c| c.len() > 64)
        {
            return Err((400, "BadCollapseId"));
        }
        Ok(())
    }
}

/// The device token of `POST /3/device/{token}`.
fn device_token<'a>(method: &Method, path: &'a str) -> Result<&'a str, (u16, &'static str)> {
    if method != Method::POST {
        return Err((405, "MethodNotAllowed"));
    }
    let token = path.strip_prefix("/3/device/").ok_or((404, "BadPath"))?;
    if token.is_empty() {
        return Err((400, "MissingDeviceToken"));
    }
    if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((400, "BadDeviceToken"));
    }
    Ok(token)
}

/// Binds the connection to the key of its first token; a newer token is accepted only 20
/// minutes (by `iat`) after the one it replaces.
fn bind(
    connection: &Connection,
    jwt: &str,
    verified: &Verified,
) -> Result<(), (u16, &'static str)> {
    let mut auth = lock(&connection.auth);
    match auth.as_mut() {
        None => *auth = Some((verified.kid.clone(), jwt.to_string(), verified.iat)),
        Some((kid, _, _)) if *kid != verified.kid => {
            return Err((403, "UnrelatedKeyIdInToken"));
        }
        Some((_, current, current_iat)) => {
            if current != jwt && verified.iat > *current_iat {
                if verified.iat - *current_iat < 20 * 60 {
                    return Err((429, "TooManyProviderTokenUpdates"));
                }
                *current = jwt.to_string();
                *current_iat = verified.iat;
            }
        }
    }
    Ok(())
}

pub(super) async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    mut stopped: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_flight = InFlight::start(&shared);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let token = path.strip_prefix("/3/device/").unwrap_or("").to_string();
    let apns_id = parts
        .headers
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_canonical_uuid(id))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(shared.reject(&token, 413, "PayloadTooLarge", &apns_id)),
    };
    let (token, jwt) = match shared.check(&connection, &parts.method, &path, &parts.headers) {
        Ok(checked) => checked,
        Err((status, reason)) => return Ok(shared.reject(&token, status, reason, &apns_id)),
    };
    let payload = match shared.payload(&parts.headers, &body) {
        Ok(payload) => payload,
        Err((status, reason)) => return Ok(shared.reject(&token, status, reason, &apns_id)),
    };
    let (reply, latency) = shared.next_reply(&token);
    let status = reply.status();
    shared.remember(&token, status, || ApnsRequest {
        token: token.clone(),
        headers: parts.headers.clone(),
        raw: body,
        payload,
        jwt,
        connection: connection.id,
        status,
    });
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    Ok(respond(reply, &apns_id, &connection, &mut stopped).await)
}

impl Shared {
    /// The payload limits (5120 bytes for VoIP, else 4096) and a JSON object. `Err` is the
    /// rejection to send.
    fn payload(&self, headers: &HeaderMap, body: &Bytes) -> Result<Value, (u16, &'static str)> {
        let voip = headers.get("apns-push-type").is_some_and(|t| t == "voip");
        let limit = if voip { MAX_VOIP_PAYLOAD } else { MAX_PAYLOAD };
        if body.is_empty() {
            return Err((400, "PayloadEmpty"));
        }
        if body.len() > limit {
            return Err((413, "PayloadTooLarge"));
        }
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            // APNs has no reason for a payload that is not a JSON dictionary; it is empty to it.
            _ => Err((400, "PayloadEmpty")),
        }
    }

    /// The token's next scripted reply (else the default, else 200), and the latency to add.
    fn next_reply(&self, token: &str) -> (Reply, Duration) {
        let mut state = lock(&self.state);
        let scripted = state.scripts.get_mut(token).and_then(VecDeque::pop_front);
        let reply = scripted
            .or_else(|| state.default.clone())
            .unwrap_or(Reply::Ok);
        (reply, state.latency)
    }

    /// Keeps the arrival, and the request itself when recording is on; wakes `wait_for`.
    fn remember(&self, token: &str, status: u16, request: impl FnOnce() -> ApnsRequest) {
        let arrival = Arrival {
            token: token.to_string(),
            at: std::time::SystemTime::now(),
            status,
        };
        let n = {
            let mut state = lock(&self.state);
            state.arrivals.push(arrival);
            if self.record {
                state.requests.push(request());
                state.requests.len()
            } else {
                state.arrivals.len()
            }
        };
        self.recorded.send_replace(n);
    }
}

impl Reply {
    /// The status recorded for this reply (0 for a stall, which is never answered).
    fn status(&self) -> u16 {
        match self {
            Reply::Ok => 200,
            Reply::Reason { status, .. } => *status,
            Reply::Gone { .. } => 410,
            Reply::TooManyRequests { .. } => 429,
            Reply::GoAway => 503,
            Reply::Stall => 0,
        }
    }
}

/// The response a reply stands for; a GOAWAY reply also closes the connection, a stall waits
/// until the fake stops.
async fn respond(
    reply: Reply,
    apns_id: &str,
    connection: &Connection,
    stopped: &mut watch::Receiver<bool>,
) -> Response<Full<Bytes>> {
    match reply {
        Reply::Ok => answer(200, apns_id, None, &[]),
        Reply::Reason { status, reason } => error(status, &reason, apns_id),
        Reply::Gone {
            reason,
            timestamp_ms,
        } => answer(
            410,
            apns_id,
            Some(json!({"reason": reason, "timestamp": timestamp_ms})),
            &[],
        ),
        Reply::TooManyRequests { retry_after_s } => {
            let extra: Vec<(&str, String)> = retry_after_s
                .map(|s| vec![("retry-after", s.to_string())])
                .unwrap_or_default();
            answer(
                429,
                apns_id,
                Some(json!({"reason": "TooManyRequests"})),
                &extra,
            )
        }
        Reply::GoAway => {
            connection.goaway.notify_one();
            error(503, "Shutdown", apns_id)
        }
        Reply::Stall => {
            // Until the fake stops; a client that gives up resets the stream and hyper drops
            // this future.
            let _ = stopped.wait_for(|s| *s).await;
            error(503, "Shutdown", apns_id)
        }
    }
}
