//! Events on the wire: each type parses, round-trips and is refused with the path of the
//! offending field.

use serde_json::json;

use super::*;

fn message(extra: Value) -> Value {
    let mut v = json!({
        "event_id": "e1", "conversation_id": "c1", "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "agent-1", "role": "agent", "name": "Ann"}, "text": "hello"
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

#[test]
fn a_message_round_trips_through_its_wire_form() {
    let event = NewEvent::from_json(message(json!({}))).unwrap();
    assert_eq!(event.body.type_name(), "message.created");
    assert_eq!(NewEvent::from_json(event.to_json()).unwrap(), event);
}

#[test]
fn unknown_fields_and_types_are_refused_with_a_path() {
    let err = NewEvent::from_json(message(json!({"colour": "red"}))).unwrap_err();
    assert!(err.message.contains("colour"), "{err}");
    let err = NewEvent::from_json(message(json!({"type": "message.exploded"}))).unwrap_err();
    assert_eq!(err.path, "type");
}

#[test]
fn oversized_text_is_refused() {
    let err = NewEvent::from_json(message(
        json!({"text": "x".repeat(MAX_EVENT_TEXT_BYTES + 1)}),
    ))
    .unwrap_err();
    assert_eq!(err.path, "text");
}

#[test]
fn a_declined_call_must_say_who_declined() {
    let v = json!({"event_id": "e", "conversation_id": "c", "type": "call.declined",
        "occurred_at": "2026-11-23T10:00:00Z", "call_id": "k"});
    assert_eq!(NewEvent::from_json(v).unwrap_err().path, "by");
}

#[test]
fn every_listed_type_parses() {
    for t in EVENT_TYPES {
        let fields: Map<String, Value> = match *t {
            "message.created" => {
                serde_json::from_value(json!({"sender": {"id": "u", "role": "agent"}, "text": "t"}))
            }
            "message.read" => serde_json::from_value(json!({"reader_id": "u", "position": 1})),
            "participant.joined" => {
                serde_json::from_value(json!({"participant": {"user_id": "u", "role": "visitor"}}))
            }
            "participant.left" => serde_json::from_value(json!({"user_id": "u"})),
            "call.ringing" => serde_json::from_value(
                json!({"call_id": "k", "caller": {"id": "u", "role": "agent"}, "callees": ["v"]}),
            ),
            t if t.starts_with("call.") => {
                serde_json::from_value(json!({"call_id": "k", "by": "u"}))
            }
            _ => serde_json::from_value(json!({})),
        }
        .unwrap();
        let body = EventBody::parse(t, fields).unwrap();
        assert_eq!(body.type_name(), *t);
    }
}

mod paths {
    use serde_json::json;

    use super::super::NewEvent;

    #[test]
    fn envelope_and_body_errors_name_their_field() {
        let base = json!({"event_id": "e", "type": "message.created", "conversation_id": "c",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "u", "role": "agent"}, "text": "t"});
        let cases = [
            ("type", json!(null), "type"),
            ("occurred_at", json!("yesterday"), "occurred_at"),
            ("event_id", json!("a b"), "event_id"),
            ("sender", json!({"id": "u", "role": "boss"}), "sender.role"),
            ("colour", json!("red"), "colour"),
        ];
        for (field, value, path) in cases {
            let mut v = base.clone();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(field);
            } else {
                v[field] = value;
            }
            assert_eq!(NewEvent::from_json(v).unwrap_err().path, path, "{field}");
        }
    }
}
