//! What became of a request: the outcome of one that got no answer (transport failures, for
//! every channel) and the usual reading of an answer from a customer endpoint.

use herald_engine::push::DeliveryOutcome;
use reqwest::header::HeaderMap;

use super::Refusal;

/// The answer of a remote endpoint, as much as the classifiers need.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
}

/// A failed request to a customer URL: a refusal by the guarded resolver is permanent
/// (retrying cannot change the address); anything else is [`transport_failure`].
pub(super) fn refused_or_transport_failure(error: &reqwest::Error) -> DeliveryOutcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return DeliveryOutcome::Permanent {
                reason: refusal.to_string(),
                status: None,
            };
        }
        source = e.source();
    }
    transport_failure(error, "")
}

/// What went wrong with a request that got no answer: `timed out`, `could not connect` or
/// `the request failed`. Never the URL (it may carry secrets) nor anything that was sent.
fn transport_failure_words(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    }
}

/// The outcome of a request to `peer` (`APNs`, `FCM`, …; empty for customer URLs) that got no
/// answer: retryable, with the reason `"{peer}: {words}"` (`timed out`, `could not connect` or
/// `the request failed`).
pub fn transport_failure(error: &reqwest::Error, peer: &str) -> DeliveryOutcome {
    let words = transport_failure_words(error);
    let reason = if peer.is_empty() {
        words.to_string()
    } else {
        format!("{peer}: {words}")
    };
    DeliveryOutcome::Retryable {
        after_ms: None,
        reason,
        status: None,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date, in milliseconds from now.
pub fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let ms = (at - time::OffsetDateTime::now_utc()).whole_milliseconds();
    Some(ms.clamp(0, i128::from(u64::MAX)) as u64)
}

/// The usual reading of an HTTP answer from a customer endpoint: 2xx delivered; 408, 429 and
/// 5xx retried (honouring `Retry-After`); redirects (never followed) and other 4xx permanent.
pub fn classify(answer: &Answer) -> DeliveryOutcome {
    match answer.status {
        200..=299 => DeliveryOutcome::Delivered { provider_id: None },
        408 | 425 | 429 | 500..=599 => DeliveryOutcome::Retryable {
            after_ms: retry_after_ms(&answer.headers),
            reason: format!("the endpoint answered {}", answer.status),
            status: Some(answer.status),
        },
        300..=399 => DeliveryOutcome::Permanent {
            reason: format!(
                "the endpoint redirected ({}); redirects are not followed",
                answer.status
            ),
            status: Some(answer.status),
        },
        status => DeliveryOutcome::Permanent {
            reason: format!("the endpoint answered {status}"),
            status: Some(status),
        },
    }
}
