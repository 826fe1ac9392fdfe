//! What an email says, and the MIME message that carries it.
//!
//! - **Texts** (`texts.rs`) are built in per kind and locale (`en`, `de`; anything else falls
//!   back to English). The title and body the engine already rendered from the app's templates
//!   (in the user's locale) win where a push has them; the built-in texts fill in the rest: the
//!   digest intro with its count, "open the app to …", the footer.
//! - **Blocks** (this file): what a digest, a call or a proactive notification says, as
//!   paragraphs, transcript lines and a footer.
//! - **Bodies** (`body.rs`): a text body and an HTML body (`multipart/alternative`). Every value
//!   that goes into the HTML (message text, sender names, titles, the subject) is HTML-escaped.
//! - **`metadata_only`** apps: no title, body or transcript line is used even if a push
//!   carried one; a digest only says how many messages are unread.
//! - **Headers** (`mime.rs`): From (the app's `smtp.from`), To, Subject (one line, at most
//!   [`MAX_SUBJECT_BYTES`]), Date, `Message-ID` derived from the delivery id (the same on every
//!   retry) and `Auto-Submitted: auto-generated` (RFC 3834: no auto-replies). No
//!   `List-Unsubscribe`.

mod body;
mod mime;
mod texts;

use herald_engine::push::{Push, PushKind};

pub use self::body::escape_html;
pub use self::mime::{build, message_id};
use self::texts::{Texts, texts, with_count};

/// Longest subject, before MIME encoding.
pub const MAX_SUBJECT_BYTES: usize = 200;

/// Whether pushes of `kind` are ever emailed (SPEC §2.5: never reads or revoked calls; new
/// messages go by email only as a digest).
pub fn emailed(kind: PushKind) -> bool {
    match kind {
        PushKind::Digest | PushKind::IncomingCall | PushKind::MissedCall | PushKind::Proactive => {
            true
        }
        PushKind::NewMessage
        | PushKind::Notice
        | PushKind::Invitation
        | PushKind::Read
        | PushKind::RevokedCall
        | PushKind::HealthCheck => false,
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

/// What one email says before it is put into bodies: the texts of the push (none for
/// `metadata_only` apps) and the built-in texts of its language.
struct Says<'a> {
    push: &'a Push,
    t: &'static Texts,
    title: Option<&'a str>,
    body: Option<&'a str>,
    metadata_only: bool,
    blocks: Vec<Block>,
}

impl Says<'_> {
    fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    /// The transcript lines of a digest, senders filled in; none for `metadata_only` apps.
    fn digest_lines(&self) -> Vec<(String, String)> {
        if self.metadata_only {
            return vec![];
        }
        self.push
            .lines
            .iter()
            .map(|l| {
                let sender = l
                    .sender_name
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(self.t.unknown_sender);
                (sender.to_string(), l.text.clone())
            })
            .collect()
    }

    /// A digest's blocks; answers its subject.
    fn digest(&mut self) -> String {
        let t = self.t;
        let count = digest_count(self.push);
        let (subject, intro) = if count == 1 {
            (t.digest_subject_one, t.digest_intro_one)
        } else {
            (t.digest_subject_many, t.digest_intro_many)
        };
        let lines = self.digest_lines();
        if lines.is_empty() {
            self.paragraph(format!("{}.", with_count(intro, count)));
            if let Some(body) = self.body {
                self.paragraph(body);
            }
        } else {
            self.paragraph(format!("{}:", with_count(intro, count)));
            let shown = lines.len() as u64;
            self.blocks.push(Block::Lines(lines));
            if count > shown {
                self.paragraph(with_count(t.digest_not_shown, count - shown));
            }
        }
        self.paragraph(t.digest_action);
        self.title
            .map_or_else(|| with_count(subject, count), str::to_string)
    }

    /// A missed call's blocks; answers its subject.
    fn missed_call(&mut self) -> String {
        let t = self.t;
        self.paragraph(self.body.unwrap_or(t.missed_call_body));
        if self.push.missed_calls > 1 {
            self.paragraph(with_count(t.missed_calls_count, self.push.missed_calls));
        }
        self.paragraph(t.missed_call_action);
        self.title.unwrap_or(t.missed_call_subject).to_string()
    }

    /// The blocks of a push that says `body` (or `default_body`) and asks for `action`; answers
    /// the subject (the push's title or `default_subject`).
    fn simple(&mut self, default_subject: &str, default_body: &str, action: &str) -> String {
        self.paragraph(self.body.unwrap_or(default_body));
        self.paragraph(action);
        self.title.unwrap_or(default_subject).to_string()
    }
}

/// Renders `push` in `locale`. `metadata_only` (the app's content mode) keeps every text of
/// the push out of the email.
pub fn render(push: &Push, metadata_only: bool, locale: Option<&str>) -> Rendered {
    let t = texts(locale);
    let mut says = Says {
        push,
        t,
        title: given(&push.title, metadata_only),
        body: given(&push.body, metadata_only),
        metadata_only,
        blocks: Vec::new(),
    };
    let subject = match push.kind {
        PushKind::Digest => says.digest(),
        PushKind::IncomingCall => says.simple(
            t.incoming_call_subject,
            t.incoming_call_body,
            t.incoming_call_action,
        ),
        PushKind::MissedCall => says.missed_call(),
        // Proactive, and (defensively; the channel refuses them first) the kinds that are
        // never emailed.
        _ => says.simple(t.proactive_subject, t.proactive_body, t.proactive_action),
    };
    let mut blocks = says.blocks;
    blocks.push(Block::Footer(t.footer.to_string()));
    let subject = body::one_line(&subject);
    Rendered {
        text: body::text_body(&blocks),
        html: body::html_body(t.lang, &subject, &blocks),
        subject,
    }
}

#[cfg(test)]
mod tests;
