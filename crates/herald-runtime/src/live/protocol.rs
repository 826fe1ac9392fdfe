//! Frames of the live protocol. Server frames are built as strings so an event serialised once
//! can be sent to every recipient without re-encoding.

use std::collections::BTreeMap;

use herald_engine::ids::ConversationId;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Foreground,
    Background,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Resume {
        positions: BTreeMap<ConversationId, u64>,
    },
    State {
        state: SessionState,
    },
    Read {
        conversation_id: ConversationId,
        position: u64,
    },
    /// A struct variant so `deny_unknown_fields` applies to it too.
    Ping {},
}

pub fn hello(session_id: &str, heartbeat_ms: u64) -> String {
    json!({"type": "hello", "session_id": session_id, "heartbeat_ms": heartbeat_ms}).to_string()
}

/// `event_json` is the stored event, already serialised.
pub fn event(conversation_id: &ConversationId, position: u64, event_json: &str) -> String {
    let cid = serde_json::to_string(conversation_id.as_str()).expect("strings serialise");
    format!(
        r#"{{"type":"event","conversation_id":{cid},"position":{position},"event":{event_json}}}"#
    )
}

pub fn unread(conversation_id: &ConversationId, count: u64, total: u64) -> String {
    json!({"type": "unread", "conversation_id": conversation_id, "count": count, "total": total})
        .to_string()
}

pub fn caught_up(conversation_id: &ConversationId, position: u64) -> String {
    json!({"type": "caught_up", "conversation_id": conversation_id, "position": position})
        .to_string()
}

pub fn error(code: &str, message: &str) -> String {
    json!({"type": "error", "code": code, "message": message}).to_string()
}

/// A Web Push subscription of this user failed its health check: subscribe again.
pub fn resubscribe(device_id: &str, app_id: &str) -> String {
    json!({"type": "resubscribe", "device_id": device_id, "app_id": app_id}).to_string()
}

pub fn pong() -> String {
    r#"{"type":"pong"}"#.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_frame_embeds_the_serialised_event() {
        let cid = ConversationId::parse("c\"1").unwrap();
        let frame: serde_json::Value =
            serde_json::from_str(&event(&cid, 7, r#"{"type":"message.created"}"#)).unwrap();
        assert_eq!(frame["conversation_id"], "c\"1");
        assert_eq!(frame["position"], 7);
        assert_eq!(frame["event"]["type"], "message.created");
    }

    #[test]
    fn client_frames_parse_and_unknown_ones_do_not() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"resume","positions":{"c1":4}}"#).unwrap();
        assert!(matches!(f, ClientFrame::Resume { positions } if positions.len() == 1));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"explode"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"ping","extra":1}"#).is_err());
    }
}
