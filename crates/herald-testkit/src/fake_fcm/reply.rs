//! How the fake answers one message, as FCM's error bodies.

use serde_json::{Value, json};

use super::*;

/// How the fake answers one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with the message name.
    Ok,
    /// 404 `NOT_FOUND`, `UNREGISTERED`.
    Unregistered,
    /// 400 `INVALID_ARGUMENT` about the registration token.
    InvalidToken,
    /// 400 `INVALID_ARGUMENT` about something else (the message text).
    InvalidArgument(String),
    /// 403 `PERMISSION_DENIED`, `SENDER_ID_MISMATCH`.
    SenderIdMismatch,
    /// 429 `RESOURCE_EXHAUSTED` with `QUOTA_EXCEEDED`, and `Retry-After` (seconds) if given.
    QuotaExceeded { retry_after_s: Option<u64> },
    /// 429 `RESOURCE_EXHAUSTED` without an `FcmError` (firebase-admin-go #719).
    RateLimited { retry_after_s: Option<u64> },
    /// 500 `INTERNAL`.
    Internal,
    /// 503 `UNAVAILABLE`, with `Retry-After` if given.
    Unavailable { retry_after_s: Option<u64> },
    /// 401 `UNAUTHENTICATED` with `THIRD_PARTY_AUTH_ERROR`.
    ThirdPartyAuthError,
    /// 401 `UNAUTHENTICATED` without an `FcmError` (a refused access token).
    Unauthenticated,
}

impl Reply {
    /// Status, error body and `Retry-After` of an error reply.
    pub(super) fn error(&self) -> Option<(u16, Value, Option<u64>)> {
        let fcm = |status: u16, rpc: &str, message: &str, code: &str| {
            json!({"error": {"code": status, "message": message, "status": rpc,
                "details": [{"@type": FCM_ERROR, "errorCode": code}]}})
        };
        Some(match self {
            Reply::Ok => return None,
            Reply::Unregistered => (
                404,
                fcm(
                    404,
                    "NOT_FOUND",
                    "Requested entity was not found.",
                    "UNREGISTERED",
                ),
                None,
            ),
            Reply::InvalidToken => {
                let mut body = fcm(
                    400,
                    "INVALID_ARGUMENT",
                    INVALID_TOKEN_MESSAGE,
                    "INVALID_ARGUMENT",
                );
                body["error"]["details"]
                    .as_array_mut()
                    .expect("details")
                    .push(json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": "message.token", "description": INVALID_TOKEN_MESSAGE}]}));
                (400, body, None)
            }
            Reply::InvalidArgument(message) => (
                400,
                fcm(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT"),
                None,
            ),
            Reply::SenderIdMismatch => (
                403,
                fcm(
                    403,
                    "PERMISSION_DENIED",
                    "SenderId mismatch",
                    "SENDER_ID_MISMATCH",
                ),
                None,
            ),
            Reply::QuotaExceeded { retry_after_s } => (
                429,
                fcm(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Send requests'",
                    "QUOTA_EXCEEDED",
                ),
                *retry_after_s,
            ),
            Reply::RateLimited { retry_after_s } => (
                429,
                json!({"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com"}]}}),
                *retry_after_s,
            ),
            Reply::Internal => (
                500,
                fcm(500, "INTERNAL", "Internal error encountered.", "INTERNAL"),
                None,
            ),
            Reply::Unavailable { retry_after_s } => (
                503,
                fcm(
                    503,
                    "UNAVAILABLE",
                    "The service is currently unavailable.",
                    "UNAVAILABLE",
                ),
                *retry_after_s,
            ),
            Reply::ThirdPartyAuthError => (
                401,
                fcm(
                    401,
                    "UNAUTHENTICATED",
                    "Auth error from APNS or Web Push Service",
                    "THIRD_PARTY_AUTH_ERROR",
                ),
                None,
            ),
            Reply::Unauthenticated => (401, unauthenticated(), None),
        })
    }
}

pub(super) fn unauthenticated() -> Value {
    json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}})
}
