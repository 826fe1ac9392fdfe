//! The Genesys GMS shape of a chat push (`content.shape = "gms"`): the app's message, the
//! conversation as `serviceId`, and as `lastTranscript` the events the push stands for that
//! another party wrote — less the kinds the app's `rules.filter` excludes (typing, by default)
//! — each as `{"<GMS kind>": "text"}`, oldest first.

use crate::app::{GmsContent, Rules};
use crate::event::{EventBody, StoredEvent};
use crate::ids::{ConversationId, UserId};
use crate::push::{Gms, GmsItem};

use super::shorten;

/// The most `lastTranscript` items a push carries: the latest ones. A push is a nudge to come
/// back, not a transcript, and providers limit its size.
pub const MAX_ITEMS: usize = 20;
/// Longest text of one item before channels fit the whole to their limits.
pub const MAX_ITEM_TEXT_BYTES: usize = 1_000;

/// GMS's name for a Herald event type; `None` for events a chat transcript does not show.
/// The `/_genesys` catch-up names its rows the same way.
pub fn kind(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "message.created" => "Message.Text",
        "notice.typing_started" => "Notice.TypingStarted",
        "notice.typing_stopped" => "Notice.TypingStopped",
        "notice.joined" | "participant.joined" => "Notice.Joined",
        "notice.left" | "participant.left" => "Notice.Left",
        "notice.push_url" => "Notice.PushUrl",
        "notice.custom" => "Notice.Custom",
        _ => return None,
    })
}

/// The GMS content of a push to `recipient` standing for `span` (the events from its first to
/// its latest position, oldest first).
pub fn notification(
    content: &GmsContent,
    rules: &Rules,
    conversation: &ConversationId,
    recipient: &UserId,
    span: &[StoredEvent],
) -> Gms {
    let items: Vec<GmsItem> = span
        .iter()
        .filter_map(|e| item(e, rules, recipient))
        .collect();
    let from = items.len().saturating_sub(MAX_ITEMS);
    Gms {
        message: content.message.clone(),
        service_id: conversation.to_string(),
        last_transcript: items.into_iter().skip(from).collect(),
    }
}

/// One event as an item, if the recipient is to read it: written by someone else, of a kind
/// that pushes (a message or a notice), not filtered out by the app.
fn item(event: &StoredEvent, rules: &Rules, recipient: &UserId) -> Option<GmsItem> {
    let body = &event.event.body;
    if body.actor_id() == Some(recipient) || rules.filter.iter().any(|f| f == body.type_name()) {
        return None;
    }
    let text = match body {
        EventBody::MessageCreated(m) => m.text.as_str(),
        // A notice may carry only a URL (a push_url); typing notices carry nothing.
        EventBody::Notice(_, n) => n.text.as_deref().or(n.url.as_deref()).unwrap_or(""),
        _ => return None,
    };
    Some(GmsItem {
        kind: kind(body.type_name())?.to_string(),
        text: shorten(text, MAX_ITEM_TEXT_BYTES),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::{Actor, MessageCreated, NewEvent, Notice, NoticeKind};
    use crate::ids::EventId;
    use crate::participant::Role;

    fn stored(position: u64, body: EventBody) -> StoredEvent {
        StoredEvent {
            position,
            event: NewEvent {
                event_id: EventId::parse(format!("e{position}")).unwrap(),
                conversation_id: ConversationId::parse("c1").unwrap(),
                occurred_at: time::OffsetDateTime::UNIX_EPOCH,
                body,
            },
            recorded_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn actor(id: &str, role: Role) -> Actor {
        Actor {
            id: UserId::parse(id).unwrap(),
            role,
            name: Some(format!("{id} name")),
        }
    }

    fn message(position: u64, from: &str, role: Role, text: &str) -> StoredEvent {
        let body = EventBody::MessageCreated(MessageCreated {
            sender: actor(from, role),
            text: text.into(),
            attachments: vec![],
        });
        stored(position, body)
    }

    fn notice(
        position: u64,
        kind: NoticeKind,
        text: Option<&str>,
        url: Option<&str>,
    ) -> StoredEvent {
        let body = EventBody::Notice(
            kind,
            Notice {
                actor: Some(actor("agent", Role::Agent)),
                text: text.map(Into::into),
                url: url.map(Into::into),
                data: None,
            },
        );
        stored(position, body)
    }

    fn gms(rules: &Rules, span: &[StoredEvent]) -> serde_json::Value {
        let conversation = ConversationId::parse("c1").unwrap();
        let visitor = UserId::parse("v1").unwrap();
        let n = notification(&GmsContent::default(), rules, &conversation, &visitor, span);
        serde_json::to_value(n).unwrap()
    }

    #[test]
    fn the_agents_events_become_gms_items_less_the_filtered_kinds_and_the_recipients_own() {
        let span = [
            notice(3, NoticeKind::TypingStarted, None, None),
            message(4, "agent", Role::Agent, "hello"),
            message(5, "v1", Role::Visitor, "my own words"),
            notice(6, NoticeKind::TypingStopped, None, None),
            notice(
                7,
                NoticeKind::PushUrl,
                None,
                Some("https://example.com/o/1"),
            ),
            notice(8, NoticeKind::Custom, Some("transfer soon"), None),
            message(9, "agent", Role::Agent, "still there?"),
        ];
        assert_eq!(
            gms(&Rules::default(), &span),
            json!({
                "message": "New message from Agent",
                "serviceId": "c1",
                "lastTranscript": [
                    {"Message.Text": "hello"},
                    {"Notice.PushUrl": "https://example.com/o/1"},
                    {"Notice.Custom": "transfer soon"},
                    {"Message.Text": "still there?"},
                ],
            })
        );
    }

    #[test]
    fn the_apps_filter_decides_what_is_left_out() {
        let span = [
            notice(3, NoticeKind::TypingStarted, None, None),
            message(4, "agent", Role::Agent, "hello"),
            notice(5, NoticeKind::Custom, Some("note"), None),
        ];
        // Typing counts once the app stops filtering it; custom notices go once it filters them.
        let rules = Rules {
            filter: vec!["notice.custom".into()],
            ..Rules::default()
        };
        assert_eq!(
            gms(&rules, &span)["lastTranscript"],
            json!([{"Notice.TypingStarted": ""}, {"Message.Text": "hello"}])
        );
    }

    #[test]
    fn a_long_absence_carries_the_latest_items_and_long_texts_are_cut() {
        let span: Vec<StoredEvent> = (1..=30)
            .map(|p| message(p, "agent", Role::Agent, &format!("line {p}")))
            .chain([message(31, "agent", Role::Agent, &"x".repeat(5_000))])
            .collect();
        let n = gms(&Rules::default(), &span);
        let items = n["lastTranscript"].as_array().unwrap();
        assert_eq!(items.len(), MAX_ITEMS);
        assert_eq!(items[0], json!({"Message.Text": "line 12"}));
        let last = items[MAX_ITEMS - 1]["Message.Text"].as_str().unwrap();
        assert!(last.len() <= MAX_ITEM_TEXT_BYTES && last.ends_with('…'));
    }

    #[test]
    fn items_read_back_as_they_were_written() {
        let item: GmsItem = serde_json::from_value(json!({"Notice.Joined": "Ann"})).unwrap();
        assert_eq!(
            (item.kind.as_str(), item.text.as_str()),
            ("Notice.Joined", "Ann")
        );
        assert!(serde_json::from_value::<GmsItem>(json!({"a": "1", "b": "2"})).is_err());
    }
}
