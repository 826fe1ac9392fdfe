//! Who is notified of an event (SPEC §3.2 rules 1–3). Rule 4 (pause, quiet hours) is about
//! *when*, in `quiet`.

use serde::{Deserialize, Serialize};

use crate::app::{Rules, SecondaryRule};
use crate::event::EventBody;
use crate::participant::{Participant, Role};

/// Why a participant is not notified of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Exclusion {
    /// They caused it.
    OwnEvent,
    SystemSender,
    RoleNotNotified {
        role: Role,
    },
    BotMessageNotForRole {
        role: Role,
    },
    Secondary {
        role: Role,
    },
    Filtered {
        event_type: String,
    },
    /// Not a kind of event that pushes (membership changes, reads of others).
    NotPushable,
}

impl Exclusion {
    /// The reason in words a support engineer understands.
    pub fn describe(&self) -> String {
        match self {
            Exclusion::OwnEvent => "the user caused this event".into(),
            Exclusion::SystemSender => "system messages never trigger pushes".into(),
            Exclusion::RoleNotNotified { role } => format!(
                "the app does not notify participants with role {}",
                role.as_str()
            ),
            Exclusion::BotMessageNotForRole { role } => {
                format!(
                    "the app does not notify role {} of bot messages",
                    role.as_str()
                )
            }
            Exclusion::Secondary { role } => format!(
                "the app never notifies secondary participants with role {}",
                role.as_str()
            ),
            Exclusion::Filtered { event_type } => {
                format!("the app filters out {event_type} events")
            }
            Exclusion::NotPushable => "this kind of event does not trigger pushes".into(),
        }
    }
}

/// Whether `recipient` is to be told about a message, a notice or being added to a
/// conversation under `rules`.
pub fn check(event: &EventBody, recipient: &Participant, rules: &Rules) -> Result<(), Exclusion> {
    let sender_role = match event {
        EventBody::MessageCreated(m) => Some(m.sender.role),
        EventBody::Notice(_, n) => n.actor.as_ref().map(|a| a.role),
        // Added by someone else (an invitation, a forward): the one added may be told.
        EventBody::ParticipantJoined(j) if j.by.is_some() => None,
        _ => return Err(Exclusion::NotPushable),
    };
    if event.actor_id() == Some(&recipient.user_id) {
        return Err(Exclusion::OwnEvent);
    }
    if sender_role == Some(Role::System) && matches!(event, EventBody::MessageCreated(_)) {
        return Err(Exclusion::SystemSender);
    }
    if rules.filter.iter().any(|t| t == event.type_name()) {
        return Err(Exclusion::Filtered {
            event_type: event.type_name().into(),
        });
    }
    if !rules.notify_roles.contains(&recipient.role) {
        return Err(Exclusion::RoleNotNotified {
            role: recipient.role,
        });
    }
    if sender_role == Some(Role::Bot) && !rules.bot_message_roles.contains(&recipient.role) {
        return Err(Exclusion::BotMessageNotForRole {
            role: recipient.role,
        });
    }
    if recipient.secondary && rules.secondary_rule.for_role(recipient.role) == SecondaryRule::Never
    {
        return Err(Exclusion::Secondary {
            role: recipient.role,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::UserId;

    fn event(type_name: &str, fields: serde_json::Value) -> EventBody {
        EventBody::parse(type_name, serde_json::from_value(fields).unwrap()).unwrap()
    }

    fn message(sender: &str, role: &str) -> EventBody {
        event(
            "message.created",
            json!({"sender": {"id": sender, "role": role}, "text": "hi"}),
        )
    }

    fn visitor() -> Participant {
        Participant {
            user_id: UserId::parse("v").unwrap(),
            role: Role::Visitor,
            secondary: false,
            name: None,
            email: None,
        }
    }

    fn agent(secondary: bool) -> Participant {
        Participant {
            user_id: UserId::parse("a2").unwrap(),
            role: Role::Agent,
            secondary,
            name: None,
            email: None,
        }
    }

    #[test]
    fn an_agents_message_notifies_the_visitor() {
        assert_eq!(
            check(&message("a", "agent"), &visitor(), &Rules::default()),
            Ok(())
        );
    }

    #[test]
    fn system_senders_never_trigger_pushes() {
        assert_eq!(
            check(&message("s", "system"), &visitor(), &Rules::default()),
            Err(Exclusion::SystemSender)
        );
    }

    #[test]
    fn nobody_is_notified_of_their_own_message() {
        assert_eq!(
            check(&message("v", "visitor"), &visitor(), &Rules::default()),
            Err(Exclusion::OwnEvent)
        );
    }

    #[test]
    fn only_the_apps_notify_roles_are_notified() {
        let rules = Rules {
            notify_roles: vec![Role::Agent],
            ..Rules::default()
        };
        assert_eq!(
            check(&message("a", "agent"), &visitor(), &rules),
            Err(Exclusion::RoleNotNotified {
                role: Role::Visitor
            })
        );
    }

    #[test]
    fn bot_messages_notify_only_the_bot_message_roles() {
        let rules = Rules {
            bot_message_roles: vec![Role::Agent],
            ..Rules::default()
        };
        assert_eq!(
            check(&message("b", "bot"), &visitor(), &rules),
            Err(Exclusion::BotMessageNotForRole {
                role: Role::Visitor
            })
        );
        assert_eq!(check(&message("b", "bot"), &agent(false), &rules), Ok(()));
    }

    #[test]
    fn secondary_participants_follow_the_secondary_rule() {
        assert_eq!(
            check(&message("v", "visitor"), &agent(true), &Rules::default()),
            Ok(())
        );
        let never = Rules {
            secondary_rule: SecondaryRule::Never.into(),
            ..Rules::default()
        };
        assert_eq!(
            check(&message("v", "visitor"), &agent(true), &never),
            Err(Exclusion::Secondary { role: Role::Agent })
        );
    }

    #[test]
    fn secondary_agents_and_secondary_visitors_can_have_different_rules() {
        let rules: Rules = serde_json::from_value(
            json!({"secondary_rule": {"agent": "never", "visitor": "always"}}),
        )
        .unwrap();
        assert_eq!(
            check(&message("v", "visitor"), &agent(true), &rules),
            Err(Exclusion::Secondary { role: Role::Agent })
        );
        let secondary_visitor = Participant {
            secondary: true,
            ..visitor()
        };
        assert_eq!(
            check(&message("a", "agent"), &secondary_visitor, &rules),
            Ok(())
        );
        let only_visitors: Rules =
            serde_json::from_value(json!({"secondary_rule": {"visitor": "never"}})).unwrap();
        assert_eq!(
            check(&message("v", "visitor"), &agent(true), &only_visitors),
            Ok(()),
            "a role left out keeps always"
        );
        assert_eq!(
            check(&message("a", "agent"), &secondary_visitor, &only_visitors),
            Err(Exclusion::Secondary {
                role: Role::Visitor
            })
        );
    }

    #[test]
    fn filtered_event_types_never_push_and_typing_is_filtered_by_default() {
        let typing = event(
            "notice.typing_started",
            json!({"actor": {"id": "a", "role": "agent"}}),
        );
        assert!(matches!(
            check(&typing, &visitor(), &Rules::default()),
            Err(Exclusion::Filtered { .. })
        ));
        let custom = event(
            "notice.custom",
            json!({"actor": {"id": "a", "role": "agent"}, "text": "x"}),
        );
        assert_eq!(check(&custom, &visitor(), &Rules::default()), Ok(()));
        let rules = Rules {
            filter: vec!["notice.custom".into()],
            ..Rules::default()
        };
        assert!(matches!(
            check(&custom, &visitor(), &rules),
            Err(Exclusion::Filtered { .. })
        ));
    }

    #[test]
    fn membership_changes_and_reads_do_not_push() {
        let read = event("message.read", json!({"reader_id": "a", "position": 1}));
        assert_eq!(
            check(&read, &visitor(), &Rules::default()),
            Err(Exclusion::NotPushable)
        );
    }
}
