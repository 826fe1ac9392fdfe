//! What an SMTP exchange means for the delivery: 2xx delivered, 4xx and connection failures
//! or timeouts retryable, 5xx permanent, with the server's words (addresses masked).

use herald_engine::app::SmtpSecurity;
use herald_engine::push::DeliveryOutcome;
use lettre::transport::smtp::response::Response;

use super::{permanent, redact};

/// Longest SMTP server text kept in an outcome.
const MAX_REASON_BYTES: usize = 300;

/// A 2xx: delivered, with the server's answer (addresses masked) as the provider id.
pub(super) fn delivered(response: &Response) -> DeliveryOutcome {
    let text = response.message().collect::<Vec<_>>().join(" ");
    DeliveryOutcome::Delivered {
        provider_id: Some(redact::redact(
            &format!("{} {text}", u16::from(response.code())),
            MAX_REASON_BYTES,
        )),
    }
}

/// A rustls error somewhere in `e`'s sources.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls);
        }
        source = err.source();
    }
    None
}

/// An SMTP exchange that did not finish in time: retryable.
pub(super) fn timed_out() -> DeliveryOutcome {
    DeliveryOutcome::Retryable {
        after_ms: None,
        reason: "SMTP: timed out".into(),
        status: None,
    }
}

/// The server's words behind `e`, addresses masked, cut short.
fn words(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    e.source()
        .map(|s| redact::redact(&s.to_string(), MAX_REASON_BYTES))
        .unwrap_or_default()
}

/// What a failed SMTP exchange means for the delivery.
pub(super) fn classify(
    e: &lettre::transport::smtp::Error,
    security: SmtpSecurity,
) -> DeliveryOutcome {
    if let Some(code) = e.status() {
        return refused(e, u16::from(code));
    }
    if e.is_timeout() {
        return timed_out();
    }
    if e.is_client() {
        let words = words(e);
        if words.contains("STARTTLS") && security == SmtpSecurity::Starttls {
            return permanent(
                "the SMTP server does not offer STARTTLS, which smtp.security = \"starttls\" requires",
            );
        }
        return permanent(format!("SMTP: {words}"));
    }
    if e.is_tls() {
        return permanent(format!("SMTP TLS: {}", words(e)));
    }
    if let Some(tls) = rustls_error(e) {
        return match tls {
            rustls::Error::InvalidCertificate(why) => permanent(format!(
                "the SMTP server's TLS certificate was refused: {why:?}"
            )),
            other => DeliveryOutcome::Retryable {
                after_ms: None,
                reason: format!("SMTP: the TLS handshake failed: {other}"),
                status: None,
            },
        };
    }
    let what = if e.is_response() {
        "the server's answer could not be read"
    } else if e.is_transport_shutdown() {
        "the transport was shut down"
    } else {
        "the connection failed"
    };
    DeliveryOutcome::Retryable {
        after_ms: None,
        reason: format!("SMTP: {what}: {}", words(e)),
        status: None,
    }
}

/// The SMTP server answered `code` instead of accepting the message: 4xx retryable, 5xx
/// permanent.
fn refused(e: &lettre::transport::smtp::Error, code: u16) -> DeliveryOutcome {
    let words = words(e);
    if e.is_transient() {
        return DeliveryOutcome::Retryable {
            after_ms: None,
            reason: format!("the SMTP server answered {code} (try again later): {words}"),
            // 421: the service is closing the connection; the whole server is in trouble.
            status: (code != 421).then_some(code),
        };
    }
    let what = match code {
        530 | 534 | 535 | 538 => {
            "authentication failed or is required (check smtp.username and smtp.password)"
        }
        _ => "refused",
    };
    DeliveryOutcome::Permanent {
        reason: format!("the SMTP server answered {code}, {what}: {words}"),
        status: Some(code),
    }
}
