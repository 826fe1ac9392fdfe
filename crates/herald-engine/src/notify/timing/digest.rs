//! The email digest (SPEC §3.3 rule 6): a pushable message for a user who can get email
//! starts one per conversation, due after `email_delay`; it goes only if something is still
//! unread then, listing it.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::notify::Looking;

use super::Thread;

/// An email digest of a conversation, due when its messages have stayed unread long enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub notification_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// The first message the digest is about.
    pub first_position: u64,
}

/// A pushable message for a user who can get email: starts a digest unless one waits already
/// (it then covers this message too) or the user is looking. Answers the digest it started.
pub fn on_message_email(
    thread: &mut Thread,
    looking: Looking,
    email_delay: Duration,
    position: u64,
    new_id: String,
    now: OffsetDateTime,
) -> Option<Digest> {
    if looking.is_foreground() || thread.digest.is_some() {
        return None;
    }
    let digest = Digest {
        notification_id: new_id,
        due_at: now + email_delay,
        first_position: position,
    };
    thread.digest = Some(digest.clone());
    Some(digest)
}

/// What a due digest does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStep {
    Nothing,
    /// Everything was read meanwhile.
    Cancelled {
        notification_id: String,
    },
    /// Email what is still unread.
    Send(Digest),
}

pub fn on_digest_due(thread: &mut Thread, unread: u64, now: OffsetDateTime) -> DigestStep {
    match &thread.digest {
        Some(d) if d.due_at <= now => {
            let digest = thread.digest.take().expect("checked above");
            if unread == 0 {
                DigestStep::Cancelled {
                    notification_id: digest.notification_id,
                }
            } else {
                DigestStep::Send(digest)
            }
        }
        _ => DigestStep::Nothing,
    }
}
