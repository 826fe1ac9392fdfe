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
/// answer. One the server refused unprocessed ([`refused_unprocessed`]) is
/// [`DeliveryOutcome::Unsent`] (`"{peer}: the connection was recycled before the request was
/// processed"`): not the endpoint's failure. Anything else is retryable, with the reason
/// `"{peer}: {words}"` (`timed out`, `could not connect` or `the request failed`).
pub fn transport_failure(error: &reqwest::Error, peer: &str) -> DeliveryOutcome {
    let with_peer = |words: &str| {
        if peer.is_empty() {
            words.to_string()
        } else {
            format!("{peer}: {words}")
        }
    };
    if refused_unprocessed(error) {
        return DeliveryOutcome::Unsent {
            reason: with_peer("the connection was recycled before the request was processed"),
        };
    }
    DeliveryOutcome::Retryable {
        after_ms: None,
        reason: with_peer(transport_failure_words(error)),
        status: None,
    }
}

/// How many times a request the server refused unprocessed is sent again within one attempt
/// ([`send_until_processed`]), on top of reqwest's own retries of such refusals.
pub const REFUSED_RETRIES: u32 = 2;

/// The pause before sending a refused request again ([`send_until_processed`]).
pub const REFUSED_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Whether the server refused `error`'s request without processing it, so that sending it
/// again cannot duplicate it. Read from the error's source chain (hyper 1, h2 0.4):
/// - an HTTP/2 GOAWAY from the server (`h2::Error::is_go_away() && is_remote()`, any error
///   code): h2 gives it only to the streams above the GOAWAY's last stream id and to streams
///   opened after it, which the server did not process (RFC 9113 §6.8). Streams at or below
///   that id are answered, or fail with an I/O error when the connection breaks first: those
///   were processed, or may have been;
/// - a `REFUSED_STREAM` reset from the server (RFC 9113 §8.7: not processed);
/// - a request hyper gave back without sending it (`hyper::Error::is_canceled()`: its
///   connection closed, or was not ready, before the request was written).
///
/// A timeout, a connect error or a connection that broke after the request went out is
/// ambiguous: not this.
pub fn refused_unprocessed(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        }
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// Sends a request (`send` makes and sends a fresh copy each time) and sends it again, at
/// most [`REFUSED_RETRIES`] times, while the server refuses it unprocessed
/// ([`refused_unprocessed`]). Each time after [`REFUSED_PAUSE`] (× the retry): reqwest has
/// already sent it again twice at once, and the client's pool needs a moment to drop the
/// connection the server is closing, so the next copy goes on a fresh one. Any other error is
/// answered at once — a request that may have been processed is never sent twice here.
pub async fn send_until_processed<T, F, Fut>(mut send: F) -> Result<T, reqwest::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, reqwest::Error>>,
{
    let mut retries = 0;
    loop {
        match send().await {
            Err(e) if retries < REFUSED_RETRIES && refused_unprocessed(&e) => {
                retries += 1;
                tracing::debug!(
                    retries,
                    "refused unprocessed on a recycled connection; sending again"
                );
                tokio::time::sleep(REFUSED_PAUSE * retries).await;
            }
            answer => return answer,
        }
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
