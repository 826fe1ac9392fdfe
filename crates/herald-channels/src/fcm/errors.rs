//! What an FCM answer means (the `ErrorCode` reference and "FCM error codes"): the error body is
//! `{"error": {"code", "message", "status", "details": [{"@type": "…FcmError", "errorCode"}, …]}}`.
//! `details[].errorCode` is read first; without one, the HTTP status decides.
//!
//! | answer | outcome |
//! |---|---|
//! | `UNREGISTERED` | invalid target: the token is dead |
//! | `INVALID_ARGUMENT` naming the registration token (its message, or a `BadRequest` field violation on `message.token`) | invalid target |
//! | any other `INVALID_ARGUMENT` / 400 | permanent: our message is wrong, the token is fine |
//! | `SENDER_ID_MISMATCH` | invalid target for this credential: the token belongs to another Firebase project |
//! | `QUOTA_EXCEEDED`, any 429 (also `RESOURCE_EXHAUSTED` without an `FcmError`) | retryable after `Retry-After`, else a minute |
//! | `UNAVAILABLE`, `INTERNAL`, 5xx, 408 | retryable, honouring `Retry-After` |
//! | `THIRD_PARTY_AUTH_ERROR` | permanent: the APNs/Web Push credential in Firebase is wrong (configuration, not the token) |
//! | 401 without an `FcmError` | our access token was refused: refresh it and send once more |
//! | 404 without an `FcmError` | permanent: a wrong project or base URL, never a reason to drop devices |
//! | other 4xx | permanent |

use herald_engine::push::DeliveryOutcome;
use serde::Deserialize;

/// What Sygnal and FCM ask for when over quota and no `Retry-After` came.
pub const QUOTA_RETRY_MS: u64 = 60_000;
const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";

/// Besides the outcome: what the channel does before giving up on the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Our access token was refused: fetch a new one and send again (once).
    RefreshToken,
}

/// FCM's answer to one send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub status: u16,
    /// `name` of a success (`projects/p/messages/id`).
    pub name: Option<String>,
    /// `error.status` (a `google.rpc.Code` name such as `NOT_FOUND`).
    pub rpc_status: Option<String>,
    /// `errorCode` of the `FcmError` detail.
    pub error_code: Option<String>,
    /// `error.message`.
    pub message: Option<String>,
    /// A `BadRequest` field violation names `message.token`.
    pub names_token_field: bool,
    /// `Retry-After`, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

#[derive(Deserialize)]
struct Body {
    name: Option<String>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
    status: Option<String>,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

impl Answer {
    /// Reads an answer body (anything unparsable leaves only the status).
    pub fn parse(status: u16, retry_after_ms: Option<u64>, body: &[u8]) -> Answer {
        let mut answer = Answer {
            status,
            retry_after_ms,
            ..Answer::default()
        };
        let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
            return answer;
        };
        answer.name = parsed.name;
        if let Some(error) = parsed.error {
            answer.message = error.message;
            answer.rpc_status = error.status;
            for detail in &error.details {
                match detail["@type"].as_str() {
                    Some(FCM_ERROR_TYPE) => {
                        answer.error_code = detail["errorCode"].as_str().map(str::to_string);
                    }
                    Some(BAD_REQUEST_TYPE) => {
                        answer.names_token_field |= detail["fieldViolations"]
                            .as_array()
                            .is_some_and(|v| v.iter().any(|f| f["field"] == "message.token"));
                    }
                    _ => {}
                }
            }
        }
        answer
    }

    /// The INVALID_ARGUMENT is about the registration token ("The registration token is not
    /// a valid FCM registration token"), not about the rest of the message.
    pub fn names_the_token(&self) -> bool {
        self.names_token_field
            || self
                .message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("registration token"))
    }

    fn said(&self) -> String {
        let code = self
            .error_code
            .as_deref()
            .or(self.rpc_status.as_deref())
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let message = self
            .message
            .as_deref()
            .map(super::auth::excerpt)
            .filter(|m| !m.is_empty())
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        format!("FCM answered {}{code}{message}", self.status)
    }
}

fn permanent(answer: &Answer, why: &str) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: format!("{}: {why}", answer.said()),
        status: Some(answer.status),
    }
}

fn retryable(answer: &Answer, default_ms: Option<u64>, why: &str) -> DeliveryOutcome {
    DeliveryOutcome::Retryable {
        after_ms: answer.retry_after_ms.or(default_ms),
        reason: format!("{}: {why}", answer.said()),
        status: Some(answer.status),
    }
}

fn invalid(answer: &Answer, why: &str) -> DeliveryOutcome {
    DeliveryOutcome::InvalidTarget {
        reason: format!("{}: {why}", answer.said()),
    }
}

fn invalid_argument(answer: &Answer) -> DeliveryOutcome {
    if answer.names_the_token() {
        invalid(answer, "the registration token is not valid")
    } else {
        permanent(
            answer,
            "the message was refused; the token is kept (this is Herald's or the app's mistake)",
        )
    }
}

/// Classifies an answer.
pub fn classify(answer: &Answer) -> (DeliveryOutcome, Action) {
    let nothing = |o| (o, Action::Nothing);
    if (200..300).contains(&answer.status) {
        return nothing(DeliveryOutcome::Delivered {
            provider_id: answer.name.clone(),
        });
    }
    match answer.error_code.as_deref() {
        Some("UNREGISTERED") => {
            return nothing(invalid(
                answer,
                "the app instance is unregistered or its token expired",
            ));
        }
        Some("INVALID_ARGUMENT") => return nothing(invalid_argument(answer)),
        Some("SENDER_ID_MISMATCH") => {
            return nothing(invalid(
                answer,
                "the token belongs to another Firebase project than this app's service account; \
                 check fcm.service_account if every token fails this way",
            ));
        }
        Some("QUOTA_EXCEEDED") => {
            return nothing(retryable(
                answer,
                Some(QUOTA_RETRY_MS),
                "over the FCM sending quota",
            ));
        }
        Some("UNAVAILABLE") => {
            return nothing(retryable(answer, None, "FCM is overloaded"));
        }
        Some("INTERNAL") => {
            return nothing(retryable(answer, None, "FCM had an internal error"));
        }
        Some("THIRD_PARTY_AUTH_ERROR" | "APNS_AUTH_ERROR") => {
            return nothing(permanent(
                answer,
                "the APNs or Web Push credential configured in the Firebase project is invalid \
                 (configuration, not the token; the device is kept)",
            ));
        }
        _ => {}
    }
    match answer.status {
        400 => nothing(invalid_argument(answer)),
        401 => (
            permanent(
                answer,
                "FCM refused the access token (also after fetching a new one)",
            ),
            Action::RefreshToken,
        ),
        403 => nothing(permanent(
            answer,
            "the service account may not send with this project; check its roles and fcm.service_account.project_id",
        )),
        404 => nothing(permanent(
            answer,
            "not found without an FCM error code; check fcm.service_account.project_id and fcm.base_url",
        )),
        429 => nothing(retryable(
            answer,
            Some(QUOTA_RETRY_MS),
            "rate limited by FCM",
        )),
        408 | 500..=599 => nothing(retryable(answer, None, "FCM is unavailable")),
        _ => nothing(permanent(answer, "the message was refused")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(
        status: u16,
        code: Option<&str>,
        message: &str,
        retry_after_ms: Option<u64>,
    ) -> Answer {
        let mut details = vec![];
        if let Some(code) = code {
            details.push(json!({"@type": FCM_ERROR_TYPE, "errorCode": code}));
        }
        let body = json!({"error": {"code": status, "message": message, "status": "X", "details": details}});
        Answer::parse(status, retry_after_ms, body.to_string().as_bytes())
    }

    fn outcome(a: &Answer) -> DeliveryOutcome {
        classify(a).0
    }

    #[test]
    fn success_carries_the_message_name() {
        let a = Answer::parse(200, None, br#"{"name": "projects/p/messages/1"}"#);
        assert_eq!(
            classify(&a),
            (
                DeliveryOutcome::Delivered {
                    provider_id: Some("projects/p/messages/1".into())
                },
                Action::Nothing
            )
        );
    }

    #[test]
    fn dead_tokens_are_invalid_targets() {
        assert!(matches!(
            outcome(&answer(
                404,
                Some("UNREGISTERED"),
                "Requested entity was not found.",
                None
            )),
            DeliveryOutcome::InvalidTarget { .. }
        ));
        assert!(matches!(
            outcome(&answer(
                400,
                Some("INVALID_ARGUMENT"),
                "The registration token is not a valid FCM registration token",
                None
            )),
            DeliveryOutcome::InvalidTarget { .. }
        ));
        assert!(matches!(
            outcome(&answer(
                403,
                Some("SENDER_ID_MISMATCH"),
                "SenderId mismatch",
                None
            )),
            DeliveryOutcome::InvalidTarget { .. }
        ));
        let violation = json!({"error": {"code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT",
            "details": [{"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": "message.token", "description": "bad"}]}]}});
        assert!(matches!(
            outcome(&Answer::parse(400, None, violation.to_string().as_bytes())),
            DeliveryOutcome::InvalidTarget { .. }
        ));
    }

    #[test]
    fn other_invalid_arguments_and_auth_errors_keep_the_token() {
        for a in [
            answer(
                400,
                Some("INVALID_ARGUMENT"),
                "Invalid value at 'message.android.ttl'",
                None,
            ),
            answer(400, None, "Request contains an invalid argument.", None),
            answer(
                401,
                Some("THIRD_PARTY_AUTH_ERROR"),
                "Auth error from APNS or Web Push Service",
                None,
            ),
            answer(404, None, "Requested entity was not found.", None),
            answer(403, None, "Permission denied", None),
        ] {
            let (outcome, action) = classify(&a);
            assert!(
                matches!(outcome, DeliveryOutcome::Permanent { status: Some(s), .. } if s == a.status),
                "{a:?} → {outcome:?}"
            );
            assert_eq!(action, Action::Nothing);
        }
    }

    #[test]
    fn quota_and_outages_are_retried_honouring_retry_after() {
        let quota = outcome(&answer(429, Some("QUOTA_EXCEEDED"), "quota", Some(120_000)));
        assert!(matches!(
            quota,
            DeliveryOutcome::Retryable {
                after_ms: Some(120_000),
                status: Some(429),
                ..
            }
        ));
        let body = json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"}]}});
        assert!(matches!(
            outcome(&Answer::parse(429, None, body.to_string().as_bytes())),
            DeliveryOutcome::Retryable {
                after_ms: Some(QUOTA_RETRY_MS),
                ..
            }
        ));
        for (status, code) in [
            (503, Some("UNAVAILABLE")),
            (500, Some("INTERNAL")),
            (502, None),
        ] {
            assert!(matches!(
                outcome(&answer(status, code, "oops", Some(7000))),
                DeliveryOutcome::Retryable {
                    after_ms: Some(7000),
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_bare_401_asks_for_a_new_access_token() {
        let body = json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}});
        let (outcome, action) = classify(&Answer::parse(401, None, body.to_string().as_bytes()));
        assert_eq!(action, Action::RefreshToken);
        assert!(matches!(outcome, DeliveryOutcome::Permanent { .. }));
    }

    #[test]
    fn reasons_are_short_and_printable() {
        let a = answer(400, None, &format!("line\n{}", "x".repeat(1000)), None);
        let DeliveryOutcome::Permanent { reason, .. } = outcome(&a) else {
            panic!()
        };
        assert!(reason.len() < 400 && !reason.contains('\n'), "{reason}");
    }
}
