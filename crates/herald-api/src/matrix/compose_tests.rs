use serde_json::{Value, json};

use super::super::request::parse;
use super::*;

fn notification(n: Value) -> Notification {
    parse(
        &serde_json::to_vec(&json!({ "notification": n })).unwrap(),
        20,
    )
    .unwrap()
}

fn message(body: &str) -> Notification {
    notification(json!({
        "event_id": "$ev", "room_id": "!room:x", "type": "m.room.message",
        "sender": "@ann:x", "sender_display_name": "Ann", "room_name": "Support",
        "content": {"msgtype": "m.text", "body": body, "formatted_body": "<b>x</b>"},
        "counts": {"unread": 2, "missed_calls": 1},
        "devices": [{"app_id": "im.app", "pushkey": "a2V5", "data": {"default_payload": {"aps": {"mutable-content": 1}, "extra": "x"}}}]
    }))
}

#[test]
fn an_apns_message_is_a_localised_alert_with_the_badge_and_ids() {
    let n = message("hello");
    let p = apns(&n, &n.devices[0]).unwrap();
    assert_eq!(
        Value::Object(p),
        json!({
            "aps": {"mutable-content": 1, "badge": 3, "alert": {
                "loc-key": "MSG_FROM_USER_IN_ROOM_WITH_CONTENT", "loc-args": ["Ann", "Support", "hello"]}},
            "extra": "x", "room_id": "!room:x", "event_id": "$ev"
        })
    );
}

#[test]
fn event_id_only_carries_ids_and_counts_on_the_default_payload() {
    let n = notification(json!({
        "event_id": "$ev", "room_id": "!room:x", "counts": {"unread": 4},
        "devices": [{"app_id": "im.app", "pushkey": "a2V5", "data": {"format": "event_id_only", "default_payload": {"aps": {"content-available": 1}}}}]
    }));
    let p = apns(&n, &n.devices[0]).unwrap();
    assert_eq!(
        Value::Object(p),
        json!({"aps": {"content-available": 1}, "room_id": "!room:x", "event_id": "$ev", "unread_count": 4})
    );
}

#[test]
fn sygnals_badge_only_notification_is_just_the_badge() {
    let n = notification(
        json!({"id": "", "type": null, "sender": "", "counts": {"unread": 2},
        "devices": [{"app_id": "a", "pushkey": "k", "data": {"default_payload": {"aps": {"sound": "x"}}}}]}),
    );
    assert_eq!(
        Value::Object(apns(&n, &n.devices[0]).unwrap()),
        json!({"aps": {"badge": 2}})
    );
}

#[test]
fn apns_has_nothing_to_send_without_an_alert_or_a_badge() {
    let n = notification(json!({"type": "m.room.member", "membership": "join",
        "devices": [{"app_id": "im.app", "pushkey": "k"}]}));
    assert_eq!(apns(&n, &n.devices[0]), Err(Skip::Nothing));
}

#[test]
fn invitations_and_calls_have_their_own_keys() {
    let invite = notification(
        json!({"type": "m.room.member", "membership": "invite", "user_is_target": true,
        "sender": "@bob:x", "room_alias": "#ops:x", "devices": [{"app_id": "a", "pushkey": "k"}]}),
    );
    let p = apns(&invite, &invite.devices[0]).unwrap();
    assert_eq!(p["aps"]["alert"]["loc-key"], "USER_INVITE_TO_NAMED_ROOM");
    assert_eq!(p["aps"]["alert"]["loc-args"], json!(["@bob:x", "#ops:x"]));
    let call = notification(json!({"type": "m.call.invite", "sender": "@bob:x",
        "content": {"offer": {"sdp": "v=0\r\nm=video 9 UDP"}}, "devices": [{"app_id": "a", "pushkey": "k"}]}));
    assert_eq!(
        apns(&call, &call.devices[0]).unwrap()["aps"]["alert"]["loc-key"],
        "VIDEO_CALL_FROM_USER"
    );
}

#[test]
fn a_long_message_is_cut_to_apns_limit_and_marked() {
    let n = message(&"é".repeat(5000));
    let p = apns(&n, &n.devices[0]).unwrap();
    let bytes = serde_json::to_vec(&p).unwrap().len();
    assert!(bytes <= APNS_MAX_PAYLOAD, "{bytes}");
    assert!(
        bytes > APNS_MAX_PAYLOAD - 200,
        "cut far more than needed: {bytes}"
    );
    let text = p["aps"]["alert"]["loc-args"][2].as_str().unwrap();
    assert!(text.ends_with('…') && text.starts_with("éé"));
}

#[test]
fn a_default_payload_that_is_not_an_object_rejects_the_pushkey() {
    for bad in [json!("x"), json!(null), json!([1])] {
        let n = notification(
            json!({"type": "m.room.message", "devices": [{"app_id": "a", "pushkey": "k", "data": {"default_payload": bad}}]}),
        );
        assert!(matches!(apns(&n, &n.devices[0]), Err(Skip::Reject(_))));
        assert!(matches!(fcm(&n, &n.devices[0]), Err(Skip::Reject(_))));
    }
}

#[test]
fn fcm_data_is_flat_strings_with_content_fields_and_priority() {
    let mut n = message("hello");
    n.low_priority = true;
    let d = fcm(&n, &n.devices[0]).unwrap();
    assert_eq!(d["event_id"], "$ev");
    assert_eq!(d["type"], "m.room.message");
    assert_eq!(d["content_body"], "hello");
    assert_eq!(d["content_msgtype"], "m.text");
    assert_eq!(d["prio"], "normal");
    assert_eq!(d["unread"], "2");
    assert_eq!(d["missed_calls"], "1");
    assert_eq!(d["extra"], "x");
    assert!(!d.contains_key("content"));
}

#[test]
fn fcm_fields_are_cut_to_1024_bytes() {
    let n = message(&"x".repeat(3000));
    let d = fcm(&n, &n.devices[0]).unwrap();
    let body = d["content_body"].as_str().unwrap();
    assert_eq!(body.len(), 1024);
    assert!(body.ends_with('…'));
    assert!(serde_json::to_vec(&d).unwrap().len() <= FCM_MAX_DATA);
}

#[test]
fn webpush_takes_keys_from_the_pushkey_and_data() {
    let n = notification(json!({"event_id": "$e", "devices": [
        {"app_id": "a", "pushkey": "P256", "data": {"endpoint": "https://push.example/x", "auth": "AUTH", "only_last_per_room": true}},
        {"app_id": "a", "pushkey": "P256", "data": {"auth": "AUTH"}}]}));
    let s = subscription(&n.devices[0]).unwrap();
    assert_eq!(
        (s.endpoint.as_str(), s.p256dh.as_str(), s.auth.as_str()),
        ("https://push.example/x", "P256", "AUTH")
    );
    assert!(matches!(subscription(&n.devices[1]), Err(Skip::Reject(_))));
}

#[test]
fn webpush_payload_drops_formatted_body_and_cuts_the_body() {
    let n = message(&"y".repeat(1500));
    let p = webpush(&n, &n.devices[0]).unwrap();
    assert!(p["content"].get("formatted_body").is_none());
    assert_eq!(p["content"]["body"].as_str().unwrap().chars().count(), 1000);
    assert_eq!(p["unread"], 2);
    assert_eq!(p["sender_display_name"], "Ann");
}

#[test]
fn webpush_events_only_skips_count_updates_and_last_per_room_collapses() {
    let n = notification(json!({"counts": {"unread": 1}, "room_id": "!r",
        "devices": [{"app_id": "a", "pushkey": "k", "data": {"endpoint": "https://p/x", "auth": "a", "events_only": true, "only_last_per_room": true}}]}));
    assert_eq!(webpush(&n, &n.devices[0]), Err(Skip::Nothing));
    assert_eq!(webpush_collapse_key(&n, &n.devices[0]), "room:!r");
    let plain =
        notification(json!({"room_id": "!r", "devices": [{"app_id": "a", "pushkey": "k"}]}));
    assert_eq!(webpush_collapse_key(&plain, &plain.devices[0]), "");
}
