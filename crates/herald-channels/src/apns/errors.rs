//! What an APNs answer means (Apple's table, "Handling notification responses from APNs"):
//! every status and reason mapped to one of the four delivery outcomes, plus what the channel
//! itself must do about it (refresh the provider token, open a new connection).

use herald_engine::push::DeliveryOutcome;
use time::OffsetDateTime;

/// Besides the outcome: what the channel does before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// 403 `ExpiredProviderToken`: sign a new token, but only if the cached one is at least
    /// 20 minutes old (so `TooManyProviderTokenUpdates` cannot follow).
    RefreshToken,
    /// The connection is bound to something else or going away: open a new one.
    Reconnect,
}

/// APNs' answer to one request, as much as classification needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    pub status: u16,
    /// `reason` of the JSON body, if any.
    pub reason: Option<String>,
    /// `timestamp` of a 410 body: when APNs last confirmed the token was no longer valid
    /// (milliseconds since the epoch).
    pub timestamp_ms: Option<i64>,
    /// `Retry-After`, in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// The `apns-id` APNs echoed.
    pub apns_id: Option<String>,
}

fn permanent(status: u16, reason: &str, why: &str) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: format!("APNs answered {status} {reason}: {why}"),
        status: Some(status),
    }
}

fn retryable(answer: &Answer, reason: &str, why: &str) -> DeliveryOutcome {
    DeliveryOutcome::Retryable {
        after_ms: answer.retry_after_ms,
        reason: format!("APNs answered {} {reason}: {why}", answer.status),
        status: Some(answer.status),
    }
}

fn invalid(status: u16, reason: &str, why: &str) -> DeliveryOutcome {
    DeliveryOutcome::InvalidTarget {
        reason: format!("APNs answered {status} {reason}: {why}"),
    }
}

/// Classifies an answer. `registered_at` is when the device last registered its token
/// (`device.updated_at`): a 410 whose timestamp is older than that says nothing about the
/// token the device holds now.
pub fn classify(answer: &Answer, registered_at: OffsetDateTime) -> (DeliveryOutcome, Action) {
    let status = answer.status;
    let reason = answer.reason.as_deref().unwrap_or("");
    if status == 200 {
        let delivered = DeliveryOutcome::Delivered {
            provider_id: answer.apns_id.clone(),
        };
        return (delivered, Action::Nothing);
    }
    if let Some(outcome) = dead_token(answer, reason, registered_at) {
        return (outcome, Action::Nothing);
    }
    if let Some(transient) = transient(answer, reason) {
        return transient;
    }
    let outcome = configuration(status, reason)
        .or_else(|| malformed(status, reason))
        // Anything Apple adds later: 4xx permanent, with what APNs said.
        .unwrap_or_else(|| permanent(status, reason_or(reason, "(no reason)"), "not retried"));
    (outcome, Action::Nothing)
}

/// The token is dead (unless APNs saw it gone before the device registered it again).
fn dead_token(
    answer: &Answer,
    reason: &str,
    registered_at: OffsetDateTime,
) -> Option<DeliveryOutcome> {
    let status = answer.status;
    Some(match (status, reason) {
        (400, "BadDeviceToken") => invalid(
            status,
            reason,
            "the device token is not valid (or belongs to the other environment)",
        ),
        (400, "DeviceTokenNotForTopic") => invalid(
            status,
            reason,
            "the device token does not belong to the app's topic",
        ),
        (410, "Unregistered" | "ExpiredToken") => {
            let seen_gone = answer.timestamp_ms.and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            });
            match seen_gone {
                Some(at) if at < registered_at => permanent(
                    status,
                    reason,
                    "the device registered a newer token after APNs saw it unregistered; the device is kept",
                ),
                _ => invalid(
                    status,
                    reason,
                    "the device token is no longer active for the topic",
                ),
            }
        }
        _ => return None,
    })
}

/// Transient: retry, honouring Retry-After; some also need a new token or connection.
fn transient(answer: &Answer, reason: &str) -> Option<(DeliveryOutcome, Action)> {
    let retry = |why: &str| retryable(answer, reason, why);
    Some(match (answer.status, reason) {
        (400, "IdleTimeout") => (
            retry("the connection was idle too long; reconnecting"),
            Action::Reconnect,
        ),
        (403, "ExpiredProviderToken") => (
            retry("the provider token is older than an hour"),
            Action::RefreshToken,
        ),
        (403, "UnrelatedKeyIdInToken") => (
            retry("the connection is bound to another key; reconnecting"),
            Action::Reconnect,
        ),
        (429, "TooManyProviderTokenUpdates") => (
            retry("the provider token changed too often; the cached token is reused"),
            Action::Nothing,
        ),
        (429, _) => (
            retryable(
                answer,
                reason_or(reason, "TooManyRequests"),
                "too many requests for this device token",
            ),
            Action::Nothing,
        ),
        (503, "Shutdown") => (
            retry("the APNs server is shutting down; reconnecting"),
            Action::Reconnect,
        ),
        (500..=599, _) => (
            retryable(
                answer,
                reason_or(reason, "(no reason)"),
                "APNs is unavailable",
            ),
            Action::Nothing,
        ),
        _ => return None,
    })
}

/// Configuration errors: fix the app's apns section.
fn configuration(status: u16, reason: &str) -> Option<DeliveryOutcome> {
    let why = match (status, reason) {
        (400, "TopicDisallowed") => "pushing to this topic is not allowed; check apns.topic",
        (403, "InvalidProviderToken") => {
            "the provider token does not verify; check apns.team_id, apns.key_id and apns.private_key"
        }
        (403, "BadEnvironmentKeyIdInToken") => {
            "the key is restricted to the other environment; check apns.base_url and the key"
        }
        (403, "BadCertificate" | "BadCertificateEnvironment") => {
            "certificate authentication failed"
        }
        (403, "Forbidden") => "APNs refused the request; Apple says not to retry",
        (413, _) => {
            return Some(permanent(
                status,
                reason_or(reason, "PayloadTooLarge"),
                "the payload is too large",
            ));
        }
        _ => return None,
    };
    Some(permanent(status, reason, why))
}

/// Our own bugs: retrying sends the same request again.
fn malformed(status: u16, reason: &str) -> Option<DeliveryOutcome> {
    let (reason, why) = match (status, reason) {
        (
            400,
            "BadCollapseId" | "BadExpirationDate" | "BadMessageId" | "BadPriority" | "BadTopic"
            | "DuplicateHeaders" | "InvalidPushType" | "MissingDeviceToken" | "MissingTopic"
            | "PayloadEmpty",
        ) => (reason, "the request was malformed"),
        (403, "MissingProviderToken") => (reason, "the request carried no provider token"),
        (404, _) => (reason_or(reason, "BadPath"), "the request path is wrong"),
        (405, _) => (
            reason_or(reason, "MethodNotAllowed"),
            "the request method is wrong",
        ),
        _ => return None,
    };
    Some(permanent(status, reason, why))
}

fn reason_or<'a>(reason: &'a str, fallback: &'a str) -> &'a str {
    if reason.is_empty() { fallback } else { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Class {
        Delivered,
        Retryable,
        Invalid,
        Permanent,
    }

    fn class(o: &DeliveryOutcome) -> Class {
        match o {
            DeliveryOutcome::Delivered { .. } => Class::Delivered,
            DeliveryOutcome::Retryable { .. } | DeliveryOutcome::Unsent { .. } => Class::Retryable,
            DeliveryOutcome::InvalidTarget { .. } => Class::Invalid,
            DeliveryOutcome::Permanent { .. } => Class::Permanent,
        }
    }

    fn answer(status: u16, reason: &str) -> Answer {
        Answer {
            status,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            timestamp_ms: None,
            retry_after_ms: None,
            apns_id: None,
        }
    }

    fn registered() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 10:00 UTC)
    }

    /// Apple's whole table (protocols.md §1.5), row by row.
    #[test]
    fn every_reason_in_apples_table_has_an_outcome_and_an_action() {
        use Action::*;
        use Class::*;
        let table: &[(u16, &str, Class, Action)] = &[
            (200, "", Delivered, Nothing),
            (400, "BadCollapseId", Permanent, Nothing),
            (400, "BadDeviceToken", Invalid, Nothing),
            (400, "BadExpirationDate", Permanent, Nothing),
            (400, "BadMessageId", Permanent, Nothing),
            (400, "BadPriority", Permanent, Nothing),
            (400, "BadTopic", Permanent, Nothing),
            (400, "DeviceTokenNotForTopic", Invalid, Nothing),
            (400, "DuplicateHeaders", Permanent, Nothing),
            (400, "IdleTimeout", Retryable, Reconnect),
            (400, "InvalidPushType", Permanent, Nothing),
            (400, "MissingDeviceToken", Permanent, Nothing),
            (400, "MissingTopic", Permanent, Nothing),
            (400, "PayloadEmpty", Permanent, Nothing),
            (400, "TopicDisallowed", Permanent, Nothing),
            (403, "BadCertificate", Permanent, Nothing),
            (403, "BadCertificateEnvironment", Permanent, Nothing),
            (403, "ExpiredProviderToken", Retryable, RefreshToken),
            (403, "Forbidden", Permanent, Nothing),
            (403, "InvalidProviderToken", Permanent, Nothing),
            (403, "MissingProviderToken", Permanent, Nothing),
            (403, "UnrelatedKeyIdInToken", Retryable, Reconnect),
            (403, "BadEnvironmentKeyIdInToken", Permanent, Nothing),
            (404, "BadPath", Permanent, Nothing),
            (405, "MethodNotAllowed", Permanent, Nothing),
            (410, "ExpiredToken", Invalid, Nothing),
            (410, "Unregistered", Invalid, Nothing),
            (413, "PayloadTooLarge", Permanent, Nothing),
            (429, "TooManyProviderTokenUpdates", Retryable, Nothing),
            (429, "TooManyRequests", Retryable, Nothing),
            (500, "InternalServerError", Retryable, Nothing),
            (503, "ServiceUnavailable", Retryable, Nothing),
            (503, "Shutdown", Retryable, Reconnect),
            // Not in the table: unknown 4xx are permanent, unknown 5xx transient.
            (400, "SomethingNew", Permanent, Nothing),
            (502, "", Retryable, Nothing),
        ];
        for (status, reason, expected, action) in table {
            let (outcome, got_action) = classify(&answer(*status, reason), registered());
            assert_eq!(class(&outcome), *expected, "{status} {reason}: {outcome:?}");
            assert_eq!(got_action, *action, "{status} {reason}");
            match outcome {
                DeliveryOutcome::Permanent {
                    status: s,
                    reason: r,
                } => {
                    assert_eq!(s, Some(*status));
                    assert!(r.contains(reason), "{r} keeps {reason}");
                }
                DeliveryOutcome::Retryable {
                    status: s,
                    reason: r,
                    ..
                } => {
                    assert_eq!(s, Some(*status));
                    assert!(r.contains(reason), "{r} keeps {reason}");
                }
                DeliveryOutcome::InvalidTarget { reason: r } => assert!(r.contains(reason)),
                DeliveryOutcome::Delivered { .. } | DeliveryOutcome::Unsent { .. } => {}
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_and_the_apns_id_is_kept() {
        let mut a = answer(429, "TooManyRequests");
        a.retry_after_ms = Some(7_000);
        assert!(matches!(
            classify(&a, registered()).0,
            DeliveryOutcome::Retryable {
                after_ms: Some(7_000),
                status: Some(429),
                ..
            }
        ));
        let mut ok = answer(200, "");
        ok.apns_id = Some("0a0b".into());
        assert_eq!(
            classify(&ok, registered()).0,
            DeliveryOutcome::Delivered {
                provider_id: Some("0a0b".into())
            }
        );
    }

    #[test]
    fn a_410_older_than_the_registration_keeps_the_device() {
        let ms = |at: OffsetDateTime| (at.unix_timestamp_nanos() / 1_000_000) as i64;
        let mut gone = answer(410, "Unregistered");
        gone.timestamp_ms = Some(ms(registered() - time::Duration::minutes(5)));
        assert_eq!(class(&classify(&gone, registered()).0), Class::Permanent);
        gone.timestamp_ms = Some(ms(registered() + time::Duration::minutes(5)));
        assert_eq!(class(&classify(&gone, registered()).0), Class::Invalid);
        gone.timestamp_ms = None;
        assert_eq!(class(&classify(&gone, registered()).0), Class::Invalid);
    }
}
