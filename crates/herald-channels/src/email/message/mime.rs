//! The MIME message: headers and both bodies (`multipart/alternative`).

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use super::Rendered;

/// `<herald.{delivery id}@{domain of From}>`: the same on every retry of a delivery, so a
/// receiver that de-duplicates by Message-ID shows a retried email once.
pub fn message_id(delivery_id: &str, from: &Mailbox) -> String {
    let id: String = delivery_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let domain = from.email.domain();
    let domain = if domain.is_ascii() && !domain.is_empty() && !domain.starts_with('[') {
        domain
    } else {
        "herald.invalid"
    };
    format!("<herald.{id}@{domain}>")
}

/// The whole message: headers and both bodies.
pub fn build(
    delivery_id: &str,
    from: &str,
    to: &str,
    rendered: &Rendered,
) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|_| "the app's smtp.from is not an email address".to_string())?;
    let to: Mailbox = to
        .parse()
        .map_err(|_| "the target is not a valid email address".to_string())?;
    let id = message_id(delivery_id, &from);
    Message::builder()
        .message_id(Some(id))
        .from(from)
        .to(to)
        .subject(rendered.subject.clone())
        .date_now()
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|e| format!("the email cannot be built: {e}"))
}
