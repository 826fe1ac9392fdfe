//! Which events count towards a user's unread count (SPEC §3.4). An unread count is the number
//! of counted messages after the user's read position; the badge is the sum over the user's
//! conversations.

use crate::event::EventBody;
use crate::ids::UserId;
use crate::participant::Role;

/// A message counts for a recipient when someone else wrote it and it is not a system line.
pub fn counts_as_unread(body: &EventBody, recipient: &UserId) -> bool {
    match body {
        EventBody::MessageCreated(m) => &m.sender.id != recipient && m.sender.role != Role::System,
        _ => false,
    }
}

/// The same rule in terms of stored columns, for backends that recount with a query.
pub fn counts_as_unread_row(
    type_name: &str,
    sender_id: Option<&str>,
    sender_role: Option<&str>,
    recipient: &str,
) -> bool {
    type_name == "message.created"
        && sender_id != Some(recipient)
        && sender_role != Some(Role::System.as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(sender: &str, role: &str) -> EventBody {
        EventBody::parse(
            "message.created",
            serde_json::from_value(json!({"sender": {"id": sender, "role": role}, "text": "hi"}))
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn another_participants_message_counts() {
        let visitor = UserId::parse("v").unwrap();
        assert!(counts_as_unread(&message("a", "agent"), &visitor));
    }

    #[test]
    fn own_messages_and_system_lines_do_not_count() {
        let visitor = UserId::parse("v").unwrap();
        assert!(!counts_as_unread(&message("v", "visitor"), &visitor));
        assert!(!counts_as_unread(&message("sys", "system"), &visitor));
    }

    #[test]
    fn the_row_rule_agrees_with_the_event_rule() {
        for (sender, role) in [
            ("a", "agent"),
            ("v", "visitor"),
            ("s", "system"),
            ("b", "bot"),
        ] {
            let body = message(sender, role);
            assert_eq!(
                counts_as_unread(&body, &UserId::parse("v").unwrap()),
                counts_as_unread_row("message.created", Some(sender), Some(role), "v")
            );
        }
    }
}
