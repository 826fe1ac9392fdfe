//! Telling the others that a user left (an app's `rules.left_notice`; GMS's "customer is not
//! online"): when the user goes away, a `notice.custom` from them goes into each of their
//! conversations. It is an ordinary event — stored, sent to live sessions, and decided like
//! any notice — so the other side hears of it however they are reachable.

use serde_json::json;
use time::OffsetDateTime;

use crate::event::{Actor, EventBody, NewEvent, Notice, NoticeKind};
use crate::ids::{ConversationId, EventId, UserId};
use crate::participant::Participant;

use super::plan::Apps;

/// Whether any app posts left notices: only then are the user's conversations worth reading.
pub fn any(apps: &Apps) -> bool {
    apps.iter().any(|(_, app)| {
        let notice = &app.rules.left_notice;
        notice.enabled && !notice.roles.is_empty()
    })
}

/// The notices to post for `user`, away since `since`, given their place in each of their
/// conversations: one per conversation where their role is one an app tells of, with the text
/// of the first such app. `event_id` names each new event.
pub fn notices(
    apps: &Apps,
    user: &UserId,
    memberships: &[(ConversationId, Participant)],
    since: OffsetDateTime,
    mut event_id: impl FnMut() -> EventId,
) -> Vec<NewEvent> {
    let mut posted = Vec::new();
    for (conversation, participant) in memberships {
        debug_assert_eq!(&participant.user_id, user);
        let role = participant.role;
        let Some(text) = apps.iter().find_map(|(_, app)| {
            let notice = &app.rules.left_notice;
            (notice.enabled && notice.roles.contains(&role)).then(|| notice.text.clone())
        }) else {
            continue;
        };
        let notice = Notice {
            actor: Some(Actor {
                id: user.clone(),
                role,
                name: participant.name.clone(),
            }),
            text: Some(text),
            url: None,
            data: Some(json!({"herald": "user_left"})),
        };
        posted.push(NewEvent {
            event_id: event_id(),
            conversation_id: conversation.clone(),
            occurred_at: since,
            body: EventBody::Notice(NoticeKind::Custom, notice),
        });
    }
    posted
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::app::{AppConfig, LeftNotice};
    use crate::ids::AppId;
    use crate::participant::Role;

    fn apps(notice: LeftNotice) -> Apps {
        let mut app = AppConfig::default();
        app.rules.left_notice = notice;
        vec![(AppId::parse("chat").unwrap(), Arc::new(app))]
    }

    fn places(user: &UserId) -> Vec<(ConversationId, Participant)> {
        [("c1", Role::Visitor), ("c2", Role::Agent)]
            .into_iter()
            .map(|(c, role)| {
                let participant = Participant {
                    user_id: user.clone(),
                    role,
                    secondary: false,
                    name: Some("Vera".into()),
                    email: None,
                };
                (ConversationId::parse(c).unwrap(), participant)
            })
            .collect()
    }

    #[test]
    fn a_visitor_who_leaves_is_announced_in_the_conversations_where_they_are_a_visitor() {
        let user = UserId::parse("v1").unwrap();
        let on = apps(LeftNotice {
            enabled: true,
            ..LeftNotice::default()
        });
        assert!(any(&on));
        let since = datetime!(2026-11-23 10:00 UTC);
        let mut n = 0;
        let posted = notices(&on, &user, &places(&user), since, || {
            n += 1;
            EventId::parse(format!("left-{n}")).unwrap()
        });
        assert_eq!(posted.len(), 1, "{posted:#?}");
        let event = &posted[0];
        assert_eq!(event.conversation_id.as_str(), "c1");
        assert_eq!(event.occurred_at, since);
        let json = event.to_json();
        assert_eq!(json["type"], "notice.custom");
        assert_eq!(json["text"], "customer is not online");
        assert_eq!(json["data"], json!({"herald": "user_left"}));
        assert_eq!(json["actor"]["id"], "v1");
        assert!(event.validate().is_ok());
    }

    #[test]
    fn nothing_is_posted_when_the_option_is_off() {
        let user = UserId::parse("v1").unwrap();
        let off = apps(LeftNotice::default());
        assert!(!any(&off));
        let since = datetime!(2026-11-23 10:00 UTC);
        let posted = notices(&off, &user, &places(&user), since, || unreachable!());
        assert!(posted.is_empty());
    }
}
