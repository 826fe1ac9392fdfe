//! What an email says, and the MIME message that carries it.
//!
//! - **Texts** are built in per kind and locale (`en`, `de`; anything else falls back to
//!   English). The title and body the engine already rendered from the app's templates (in the
//!   user's locale) win where a push has them; the built-in texts fill in the rest: the digest
//!   intro with its count, "open the app to …", the footer.
//! - **Bodies**: a text body and an HTML body (`multipart/alternative`). Every value that goes
//!   into the HTML (message text, sender names, titles, the subject) is HTML-escaped.
//! - **`metadata_only`** apps: no title, body or transcript line is used even if a push
//!   carried one; a digest only says how many messages are unread.
//! - **Headers**: From (the app's `smtp.from`), To, Subject (one line, at most
//!   [`MAX_SUBJECT_BYTES`]), Date, `Message-ID` derived from the delivery id (the same on every
//!   retry) and `Auto-Submitted: auto-generated` (RFC 3834: no auto-replies). No
//!   `List-Unsubscribe`.

use herald_engine::notify::content::shorten;
use herald_engine::push::{Push, PushKind};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

/// Longest subject, before MIME encoding.
pub const MAX_SUBJECT_BYTES: usize = 200;

/// The built-in texts of one language. `{count}` is the only placeholder.
struct Texts {
    lang: &'static str,
    digest_subject_one: &'static str,
    digest_subject_many: &'static str,
    digest_intro_one: &'static str,
    digest_intro_many: &'static str,
    digest_not_shown: &'static str,
    digest_action: &'static str,
    incoming_call_subject: &'static str,
    incoming_call_body: &'static str,
    incoming_call_action: &'static str,
    missed_call_subject: &'static str,
    missed_call_body: &'static str,
    missed_calls_count: &'static str,
    missed_call_action: &'static str,
    proactive_subject: &'static str,
    proactive_body: &'static str,
    proactive_action: &'static str,
    unknown_sender: &'static str,
    footer: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    digest_subject_one: "You have 1 unread message",
    digest_subject_many: "You have {count} unread messages",
    digest_intro_one: "There is 1 unread message in your conversation",
    digest_intro_many: "There are {count} unread messages in your conversation",
    digest_not_shown: "{count} earlier messages are not shown.",
    digest_action: "Open the app to read and reply.",
    incoming_call_subject: "Incoming call",
    incoming_call_body: "You have an incoming call.",
    incoming_call_action: "Open the app to answer.",
    missed_call_subject: "Missed call",
    missed_call_body: "You missed a call.",
    missed_calls_count: "You have {count} missed calls.",
    missed_call_action: "Open the app to call back.",
    proactive_subject: "New notification",
    proactive_body: "You have a new notification.",
    proactive_action: "Open the app to see it.",
    unknown_sender: "Someone",
    footer: "You receive this email because email notifications are on for your account.",
};

const DE: Texts = Texts {
    lang: "de",
    digest_subject_one: "Sie haben 1 ungelesene Nachricht",
    digest_subject_many: "Sie haben {count} ungelesene Nachrichten",
    digest_intro_one: "In Ihrer Unterhaltung gibt es 1 ungelesene Nachricht",
    digest_intro_many: "In Ihrer Unterhaltung gibt es {count} ungelesene Nachrichten",
    digest_not_shown: "{count} ältere Nachrichten werden nicht angezeigt.",
    digest_action: "Öffnen Sie die App, um sie zu lesen und zu antworten.",
    incoming_call_subject: "Eingehender Anruf",
    incoming_call_body: "Sie haben einen eingehenden Anruf.",
    incoming_call_action: "Öffnen Sie die App, um den Anruf anzunehmen.",
    missed_call_subject: "Verpasster Anruf",
    missed_call_body: "Sie haben einen Anruf verpasst.",
    missed_calls_count: "Sie haben {count} verpasste Anrufe.",
    missed_call_action: "Öffnen Sie die App, um zurückzurufen.",
    proactive_subject: "Neue Benachrichtigung",
    proactive_body: "Sie haben eine neue Benachrichtigung.",
    proactive_action: "Öffnen Sie die App, um sie anzusehen.",
    unknown_sender: "Jemand",
    footer: "Sie erhalten diese E-Mail, weil E-Mail-Benachrichtigungen für Ihr Konto aktiviert sind.",
};

/// The texts for `locale` (`de`, `de-AT`, `de_CH` → German; anything else → English).
fn texts(locale: Option<&str>) -> &'static Texts {
    let lang = locale
        .and_then(|l| l.split(['-', '_']).next())
        .unwrap_or("en");
    if lang.eq_ignore_ascii_case("de") {
        &DE
    } else {
        &EN
    }
}

fn with_count(text: &str, count: u64) -> String {
    text.replace("{count}", &count.to_string())
}

/// Whether pushes of `kind` are ever emailed (SPEC §2.5: never reads or revoked calls; new
/// messages go by email only as a digest).
pub fn emailed(kind: PushKind) -> bool {
    match kind {
        PushKind::Digest | PushKind::IncomingCall | PushKind::MissedCall | PushKind::Proactive => {
            true
        }
        PushKind::NewMessage | PushKind::Read | PushKind::RevokedCall | PushKind::HealthCheck => {
            false
        }
    }
}

/// One piece of an email's body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Paragraph(String),
    /// Transcript lines: (sender, text).
    Lines(Vec<(String, String)>),
    /// The small print at the end.
    Footer(String),
}

/// An email's subject and both bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// How many unread messages a digest stands for: what the engine counted, never fewer than
/// the lines it lists.
fn digest_count(push: &Push) -> u64 {
    let counted = if push.message_count > 0 {
        u64::from(push.message_count)
    } else {
        push.unread
    };
    counted.max(push.lines.len() as u64).max(1)
}

/// A text the engine wrote, unless the app is `metadata_only` or it is blank.
fn given(text: &Option<String>, metadata_only: bool) -> Option<&str> {
    if metadata_only {
        return None;
    }
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Renders `push` in `locale`. `metadata_only` (the app's content mode) keeps every text of
/// the push out of the email.
pub fn render(push: &Push, metadata_only: bool, locale: Option<&str>) -> Rendered {
    let t = texts(locale);
    let title = given(&push.title, metadata_only);
    let body = given(&push.body, metadata_only);
    let mut blocks = Vec::new();
    let subject = match push.kind {
        PushKind::Digest => {
            let count = digest_count(push);
            let (subject, intro) = if count == 1 {
                (t.digest_subject_one, t.digest_intro_one)
            } else {
                (t.digest_subject_many, t.digest_intro_many)
            };
            let lines: Vec<(String, String)> = if metadata_only {
                vec![]
            } else {
                push.lines
                    .iter()
                    .map(|l| {
                        let sender = l
                            .sender_name
                            .as_deref()
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .unwrap_or(t.unknown_sender);
                        (sender.to_string(), l.text.clone())
                    })
                    .collect()
            };
            if lines.is_empty() {
                blocks.push(Block::Paragraph(format!("{}.", with_count(intro, count))));
                if let Some(body) = body {
                    blocks.push(Block::Paragraph(body.to_string()));
                }
            } else {
                blocks.push(Block::Paragraph(format!("{}:", with_count(intro, count))));
                let shown = lines.len() as u64;
                blocks.push(Block::Lines(lines));
                if count > shown {
                    blocks.push(Block::Paragraph(with_count(
                        t.digest_not_shown,
                        count - shown,
                    )));
                }
            }
            blocks.push(Block::Paragraph(t.digest_action.to_string()));
            title.map_or_else(|| with_count(subject, count), str::to_string)
        }
        PushKind::IncomingCall => {
            blocks.push(Block::Paragraph(
                body.unwrap_or(t.incoming_call_body).to_string(),
            ));
            blocks.push(Block::Paragraph(t.incoming_call_action.to_string()));
            title.unwrap_or(t.incoming_call_subject).to_string()
        }
        PushKind::MissedCall => {
            blocks.push(Block::Paragraph(
                body.unwrap_or(t.missed_call_body).to_string(),
            ));
            if push.missed_calls > 1 {
                blocks.push(Block::Paragraph(with_count(
                    t.missed_calls_count,
                    push.missed_calls,
                )));
            }
            blocks.push(Block::Paragraph(t.missed_call_action.to_string()));
            title.unwrap_or(t.missed_call_subject).to_string()
        }
        // Proactive, and (defensively; the channel refuses them first) the kinds that are
        // never emailed.
        _ => {
            blocks.push(Block::Paragraph(
                body.unwrap_or(t.proactive_body).to_string(),
            ));
            blocks.push(Block::Paragraph(t.proactive_action.to_string()));
            title.unwrap_or(t.proactive_subject).to_string()
        }
    };
    blocks.push(Block::Footer(t.footer.to_string()));
    let subject = one_line(&subject);
    Rendered {
        text: text_body(&blocks),
        html: html_body(t.lang, &subject, &blocks),
        subject,
    }
}

/// A subject: one line without control characters, cut to [`MAX_SUBJECT_BYTES`].
fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = flat.split_whitespace().collect();
    shorten(&words.join(" "), MAX_SUBJECT_BYTES)
}

/// `text` without carriage returns and other control characters except newlines and tabs.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

fn text_body(blocks: &[Block]) -> String {
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            Block::Paragraph(p) => parts.push(clean(p)),
            Block::Lines(lines) => parts.push(
                lines
                    .iter()
                    .map(|(sender, text)| {
                        // Continuation lines are indented so they read as one message.
                        let text = clean(text).replace('\n', "\n    ");
                        format!("{}: {text}", one_line(sender))
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Block::Footer(f) => parts.push(format!("-- \n{}", clean(f))),
        }
    }
    let mut text = parts.join("\n\n");
    text.push('\n');
    text
}

/// Escapes `text` for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped, with its line breaks kept.
fn html_text(text: &str) -> String {
    escape_html(&clean(text)).replace('\n', "<br>\n")
}

fn html_body(lang: &str, subject: &str, blocks: &[Block]) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n</head>\n\
         <body style=\"font-family: sans-serif; line-height: 1.45; color: #222;\">\n",
        escape_html(subject)
    );
    for block in blocks {
        match block {
            Block::Paragraph(p) => {
                html.push_str(&format!("<p>{}</p>\n", html_text(p)));
            }
            Block::Lines(lines) => {
                html.push_str("<ul style=\"list-style: none; padding-left: 0;\">\n");
                for (sender, text) in lines {
                    html.push_str(&format!(
                        "<li style=\"margin-bottom: 0.5em;\"><strong>{}</strong>: {}</li>\n",
                        escape_html(&one_line(sender)),
                        html_text(text)
                    ));
                }
                html.push_str("</ul>\n");
            }
            Block::Footer(f) => {
                html.push_str(&format!(
                    "<p style=\"color: #777; font-size: small;\">{}</p>\n",
                    html_text(f)
                ));
            }
        }
    }
    html.push_str("</body>\n</html>\n");
    html
}

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

/// `alice@example.com` → `a***@example.com`: enough to tell addresses apart in a log,
/// never the whole address.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// An SMTP server's words with every email address in them masked and at most `max` bytes.
pub fn redact(text: &str, max: usize) -> String {
    let masked: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            if !word.contains('@') {
                return word.to_string();
            }
            let start = word
                .find(|c: char| !matches!(c, '<' | '(' | '[' | '"' | '\''))
                .unwrap_or(0);
            let end = word
                .rfind(|c: char| !matches!(c, '>' | ')' | ']' | '"' | '\'' | ',' | ';' | ':' | '.'))
                .map_or(word.len(), |i| {
                    i + word[i..].chars().next().map_or(1, char::len_utf8)
                });
            if start >= end {
                return word.to_string();
            }
            format!(
                "{}{}{}",
                &word[..start],
                mask(&word[start..end]),
                &word[end..]
            )
        })
        .collect();
    shorten(&masked.join(" "), max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_engine::ids::{AppId, TenantId, UserId};
    use herald_engine::push::Line;
    use time::OffsetDateTime;

    fn push(kind: PushKind) -> Push {
        Push {
            kind,
            tenant_id: TenantId::parse("t1").unwrap(),
            app_id: AppId::parse("chat").unwrap(),
            user_id: UserId::parse("alice").unwrap(),
            conversation_id: None,
            position: Some(3),
            event_id: None,
            event_at: None,
            title: None,
            body: None,
            lines: vec![],
            sender: None,
            message_count: 0,
            unread: 0,
            badge: 0,
            call_id: None,
            missed_calls: 0,
            collapse_key: "conv:c1".into(),
            high_priority: false,
            data: Default::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn line(sender: Option<&str>, text: &str) -> Line {
        Line {
            sender_name: sender.map(str::to_string),
            text: text.to_string(),
        }
    }

    const NASTY: &str = "<script>alert('x')</script> & \"quotes\"";

    #[test]
    fn html_escaping_covers_the_five_characters() {
        assert_eq!(
            escape_html(NASTY),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
        );
        assert_eq!(escape_html("plain äöü"), "plain äöü");
    }

    #[test]
    fn a_digest_lists_the_lines_and_escapes_every_value_in_html() {
        let mut p = push(PushKind::Digest);
        p.message_count = 2;
        p.lines = vec![
            line(Some(NASTY), "first\nsecond line"),
            line(Some("Bob"), "<b>&\"quotes\"</b>"),
        ];
        p.title = Some(format!("2 new messages from {NASTY}"));
        let r = render(&p, false, None);

        assert_eq!(r.subject, format!("2 new messages from {NASTY}"));
        assert!(
            r.text
                .contains("There are 2 unread messages in your conversation:"),
            "{}",
            r.text
        );
        assert!(r.text.contains(&format!("{NASTY}: first\n    second line")));
        assert!(r.text.contains("Bob: <b>&\"quotes\"</b>"));
        assert!(r.text.contains("Open the app to read and reply."));

        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(!r.html.contains("<b>"), "{}", r.html);
        assert!(r.html.contains(
            "<strong>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;</strong>: first<br>\nsecond line"
        ));
        assert!(
            r.html
                .contains("<strong>Bob</strong>: &lt;b&gt;&amp;&quot;quotes&quot;&lt;/b&gt;")
        );
        assert!(r.html.contains("<title>2 new messages from &lt;script&gt;"));
    }

    #[test]
    fn a_digest_counts_what_it_does_not_show_and_uses_the_built_in_subject() {
        let mut p = push(PushKind::Digest);
        p.message_count = 5;
        p.lines = vec![line(None, "latest")];
        let r = render(&p, false, None);
        assert_eq!(r.subject, "You have 5 unread messages");
        assert!(r.text.contains("Someone: latest"), "{}", r.text);
        assert!(r.text.contains("4 earlier messages are not shown."));

        p.message_count = 1;
        assert_eq!(render(&p, false, None).subject, "You have 1 unread message");
        // No count at all: the lines are the count.
        p.message_count = 0;
        p.lines = vec![line(None, "a"), line(None, "b")];
        assert_eq!(
            render(&p, false, None).subject,
            "You have 2 unread messages"
        );
    }

    #[test]
    fn metadata_only_emails_carry_no_content_even_if_the_push_had_some() {
        let mut p = push(PushKind::Digest);
        p.message_count = 3;
        p.title = Some("secret title".into());
        p.body = Some("secret body".into());
        p.lines = vec![line(Some("Ann"), "secret text")];
        let r = render(&p, true, None);
        assert_eq!(r.subject, "You have 3 unread messages");
        for body in [&r.text, &r.html] {
            assert!(body.contains("There are 3 unread messages in your conversation."));
            assert!(!body.contains("secret"), "{body}");
            assert!(!body.contains("Ann"), "{body}");
        }

        let mut call = push(PushKind::IncomingCall);
        call.title = Some("secret".into());
        let r = render(&call, true, None);
        assert_eq!(r.subject, "Incoming call");
        assert!(!r.text.contains("secret"));
    }

    #[test]
    fn calls_use_the_engines_texts_and_fall_back_to_the_built_in_ones() {
        let mut p = push(PushKind::IncomingCall);
        p.title = Some("Incoming call".into());
        p.body = Some("Ann & Co is calling".into());
        let r = render(&p, false, None);
        assert_eq!(r.subject, "Incoming call");
        assert!(
            r.text
                .contains("Ann & Co is calling\n\nOpen the app to answer.")
        );
        assert!(r.html.contains("<p>Ann &amp; Co is calling</p>"));

        let mut p = push(PushKind::MissedCall);
        p.missed_calls = 3;
        let r = render(&p, false, None);
        assert_eq!(r.subject, "Missed call");
        assert!(r.text.contains("You missed a call."));
        assert!(r.text.contains("You have 3 missed calls."));

        let mut p = push(PushKind::Proactive);
        p.title = Some("Your order\r\nBcc: evil@example.com".into());
        let r = render(&p, false, None);
        assert_eq!(r.subject, "Your order Bcc: evil@example.com", "one line");
        assert!(r.text.contains("You have a new notification."));
    }

    #[test]
    fn german_texts_for_de_locales() {
        let mut p = push(PushKind::Digest);
        p.message_count = 2;
        p.lines = vec![line(Some("Ann"), "Hallo")];
        let r = render(&p, false, Some("de-AT"));
        assert_eq!(r.subject, "Sie haben 2 ungelesene Nachrichten");
        assert!(
            r.text
                .contains("In Ihrer Unterhaltung gibt es 2 ungelesene Nachrichten:")
        );
        assert!(
            r.text
                .contains("1 ältere Nachrichten werden nicht angezeigt.")
        );
        assert!(r.html.starts_with("<!DOCTYPE html>\n<html lang=\"de\">"));
        assert_eq!(
            render(&push(PushKind::MissedCall), false, Some("de")).subject,
            "Verpasster Anruf"
        );
        assert_eq!(
            render(&push(PushKind::MissedCall), false, Some("ja")).subject,
            "Missed call"
        );
    }

    #[test]
    fn only_digests_calls_and_proactive_notifications_are_emailed() {
        assert!(emailed(PushKind::Digest));
        assert!(emailed(PushKind::IncomingCall));
        assert!(emailed(PushKind::MissedCall));
        assert!(emailed(PushKind::Proactive));
        assert!(!emailed(PushKind::NewMessage));
        assert!(!emailed(PushKind::Read));
        assert!(!emailed(PushKind::RevokedCall));
    }

    #[test]
    fn the_message_id_is_derived_from_the_delivery_id() {
        let from: Mailbox = "Herald <noreply@example.com>".parse().unwrap();
        assert_eq!(
            message_id("dlv_0190abc", &from),
            "<herald.dlv_0190abc@example.com>"
        );
        assert_eq!(
            message_id("d 1<>@x.y", &from),
            "<herald.d-1---x-y@example.com>"
        );
    }

    #[test]
    fn the_message_has_both_bodies_and_the_headers() {
        let mut p = push(PushKind::Digest);
        p.message_count = 1;
        p.lines = vec![line(Some("Ann"), "Grüße <3")];
        let r = render(&p, false, None);
        let message = build(
            "dlv_1",
            "Herald <noreply@example.com>",
            "bob@example.org",
            &r,
        )
        .expect("built");
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.is_ascii(), "7-bit safe: {raw}");
        for header in [
            "From: Herald <noreply@example.com>\r\n",
            "To: bob@example.org\r\n",
            "Subject: You have 1 unread message\r\n",
            "Message-ID: <herald.dlv_1@example.com>\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "Content-Type: multipart/alternative;",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html; charset=utf-8",
        ] {
            assert!(raw.contains(header), "{header:?} missing in\n{raw}");
        }
        assert!(raw.contains("\r\nDate: "));
        assert!(!raw.contains("List-Unsubscribe"));

        assert_eq!(
            build("d", "not an address", "bob@example.org", &r).unwrap_err(),
            "the app's smtp.from is not an email address"
        );
        assert_eq!(
            build("d", "noreply@example.com", "bob", &r).unwrap_err(),
            "the target is not a valid email address"
        );
    }

    #[test]
    fn addresses_are_masked_in_logs_and_server_replies() {
        assert_eq!(mask("alice@example.com"), "a***@example.com");
        assert_eq!(mask("nope"), "***");
        assert_eq!(
            redact("5.1.1 <bob@example.org>: Recipient address rejected", 200),
            "5.1.1 <b***@example.org>: Recipient address rejected"
        );
        assert_eq!(
            redact("user bob@example.org.", 200),
            "user b***@example.org."
        );
        assert!(redact(&"x".repeat(500), 100).len() <= 100);
    }
}
