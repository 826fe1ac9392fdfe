//! A committed event as the hub routes it: the event serialised once, who hears of it, and the
//! unread counts it changed. The same value crosses to the other nodes of a cluster.

use herald_engine::ids::{ConversationId, UserId};
use herald_engine::store::{Appended, UnreadChange};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    pub conversation_id: ConversationId,
    pub position: u64,
    /// The stored event as live frames carry it.
    pub json: String,
    /// Every participant after the event, plus anyone it removed.
    pub recipients: Vec<UserId>,
    pub unread: Vec<Unread>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unread {
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub count: u64,
    pub total: u64,
}

impl Routed {
    /// What an append did that live sessions hear of (repeats of stored events: nothing).
    pub fn of(appended: &[Appended]) -> Vec<Routed> {
        appended
            .iter()
            .filter_map(|a| a.effects.as_ref())
            .map(|effects| Routed {
                conversation_id: effects.event.event.conversation_id.clone(),
                position: effects.event.position,
                json: effects.event.to_json().to_string(),
                recipients: effects.recipients.clone(),
                unread: effects
                    .unread
                    .iter()
                    .map(
                        |UnreadChange {
                             user_id,
                             conversation_id,
                             count,
                             total,
                         }| Unread {
                            user_id: user_id.clone(),
                            conversation_id: conversation_id.clone(),
                            count: *count,
                            total: *total,
                        },
                    )
                    .collect(),
            })
            .collect()
    }
}
