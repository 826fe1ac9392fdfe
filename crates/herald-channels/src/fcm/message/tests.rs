use super::*;
use herald_engine::device::DeviceChannel;
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::push::{PushSender, Target};

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-11-23 10:00 UTC)
}

fn device(platform: Platform) -> Device {
    Device {
        id: DeviceId::parse("dev_1").unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        user_id: UserId::parse("visitor-1").unwrap(),
        channel: DeviceChannel::Fcm,
        token: "fcm-token-1".into(),
        subscription: None,
        platform,
        locale: None,
        installation_id: None,
        created_at: now(),
        updated_at: now(),
    }
}

fn delivery(kind: PushKind, title: &str, body: &str) -> Delivery {
    let silent = kind.is_silent();
    Delivery {
        id: "dlv_1".into(),
        notification_id: "ntf_1".into(),
        tenant_id: TenantId::parse("default").unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        channel: "fcm".into(),
        target: Target::Webhook {
            endpoint_id: "x".into(),
            devices: vec![],
        },
        push: Push {
            kind,
            tenant_id: TenantId::parse("default").unwrap(),
            app_id: AppId::parse("chat").unwrap(),
            user_id: UserId::parse("visitor-1").unwrap(),
            conversation_id: Some(ConversationId::parse("c1").unwrap()),
            position: Some(7),
            event_id: None,
            event_at: None,
            title: (!silent).then(|| title.to_string()),
            body: (!silent).then(|| body.to_string()),
            lines: vec![],
            sender: Some(PushSender {
                id: UserId::parse("agent-7").unwrap(),
                role: herald_engine::participant::Role::Agent,
                name: Some("Ann".into()),
            }),
            message_count: 1,
            unread: 2,
            badge: 5,
            call_id: None,
            missed_calls: 0,
            collapse_key: "conv:c1".into(),
            high_priority: !silent,
            data: BTreeMap::new(),
            created_at: now(),
            expires_at: now() + time::Duration::hours(1),
            gateway: None,
            gms: None,
        },
        attempt: 1,
    }
}

fn message(d: &Delivery, platform: Platform) -> Value {
    let r = render(d, &device(platform), now());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["message"].clone()
}

#[test]
fn a_new_message_to_android_is_a_notification_with_tag_count_priority_and_ttl() {
    let m = message(
        &delivery(PushKind::NewMessage, "Ann", "Hello"),
        Platform::Android,
    );
    assert_eq!(m["token"], "fcm-token-1");
    assert_eq!(m["android"]["priority"], "HIGH");
    assert_eq!(m["android"]["ttl"], "3600s");
    assert_eq!(
        m["android"]["notification"],
        json!({"title": "Ann", "body": "Hello", "tag": "conv:c1", "notification_count": 5})
    );
    assert!(m.get("apns").is_none() && m["android"].get("collapse_key").is_none());
    assert_eq!(m["data"]["badge"], "5");
    assert_eq!(m["data"]["position"], "7");
    assert!(
        m["data"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string)
    );
}

#[test]
fn a_read_is_data_only_and_normal_priority_with_the_same_tag() {
    let m = message(&delivery(PushKind::Read, "", ""), Platform::Android);
    assert!(m["android"].get("notification").is_none());
    assert_eq!(m["android"]["priority"], "NORMAL");
    assert_eq!(m["android"]["collapse_key"], "conv:c1");
    assert_eq!(m["data"]["kind"], "read");
    assert_eq!(m["data"]["tag"], "conv:c1");
    assert_eq!(m["data"]["conversation_id"], "c1");
}

#[test]
fn a_call_is_high_priority_data_with_its_texts() {
    let mut d = delivery(PushKind::IncomingCall, "Ann is calling", "Tap to answer");
    d.push.call_id = Some("call-9".into());
    d.push.collapse_key = "call:call-9".into();
    let m = message(&d, Platform::Android);
    assert_eq!(m["android"]["priority"], "HIGH");
    assert!(m["android"].get("notification").is_none());
    assert_eq!(m["data"]["call_id"], "call-9");
    assert_eq!(m["data"]["title"], "Ann is calling");
    assert_eq!(m["data"]["kind"], "incoming_call");
}

#[test]
fn ios_devices_get_an_apns_block() {
    let m = message(
        &delivery(PushKind::NewMessage, "Ann", "Hello"),
        Platform::Ios,
    );
    assert!(m.get("android").is_none());
    let apns = &m["apns"];
    assert_eq!(apns["headers"]["apns-priority"], "10");
    assert_eq!(apns["headers"]["apns-push-type"], "alert");
    assert_eq!(apns["headers"]["apns-collapse-id"], "conv:c1");
    assert_eq!(
        apns["headers"]["apns-expiration"],
        (now() + time::Duration::hours(1))
            .unix_timestamp()
            .to_string()
    );
    let aps = &apns["payload"]["aps"];
    assert_eq!(aps["alert"], json!({"title": "Ann", "body": "Hello"}));
    assert_eq!(aps["badge"], 5);
    assert_eq!(aps["thread-id"], "c1");

    let read = message(&delivery(PushKind::Read, "", ""), Platform::Ios);
    assert_eq!(
        read["apns"]["headers"]["apns-priority"], "5",
        "FCM's rule for data-only to iOS"
    );
    assert_eq!(read["apns"]["headers"]["apns-push-type"], "background");
    assert_eq!(
        read["apns"]["payload"]["aps"],
        json!({"content-available": 1, "badge": 5})
    );
}

#[test]
fn metadata_only_pushes_to_android_are_data_for_the_app_to_show() {
    let mut d = delivery(PushKind::NewMessage, "", "");
    d.push.title = None;
    d.push.body = None;
    let m = message(&d, Platform::Android);
    assert!(m["android"].get("notification").is_none());
    assert_eq!(m["android"]["priority"], "HIGH");
}

#[test]
fn custom_data_is_strings_without_reserved_or_clashing_keys() {
    let mut d = delivery(PushKind::Proactive, "Offer", "10% off");
    d.push.data = BTreeMap::from(
        [
            ("from", "x"),
            ("google.x", "y"),
            ("gcm.notification.a", "z"),
            ("coupon", "ABC"),
            ("kind", "hijack"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let m = message(&d, Platform::Android);
    let data = m["data"].as_object().unwrap();
    assert_eq!(data["coupon"], "ABC");
    assert_eq!(data["kind"], "proactive");
    assert!(data.keys().all(|k| !reserved(k)));
}

#[test]
fn the_ttl_is_what_is_left_and_at_most_four_weeks() {
    let mut d = delivery(PushKind::NewMessage, "a", "b");
    assert_eq!(ttl(&d.push, now() + time::Duration::seconds(1877)), "1723s");
    d.push.expires_at = now() + time::Duration::days(60);
    assert_eq!(ttl(&d.push, now()), "2419200s");
    assert_eq!(ttl(&d.push, now() + time::Duration::days(90)), "0s");
}

#[test]
fn ten_kilobytes_are_cut_on_a_character_boundary_to_fit() {
    for platform in [Platform::Android, Platform::Ios] {
        let long = "é".repeat(5000);
        let mut d = delivery(PushKind::Proactive, &"t".repeat(3000), &long);
        d.push.data = BTreeMap::from([("k".to_string(), "v".repeat(500))]);
        let r = render(&d, &device(platform), now());
        assert!(r.message_bytes <= MAX_MESSAGE_BYTES, "{}", r.message_bytes);
        assert!(
            r.message_bytes > MAX_MESSAGE_BYTES - 64,
            "not cut more than needed"
        );
        let m: Value = serde_json::from_slice(&r.body).unwrap();
        let body = match platform {
            Platform::Ios => m["message"]["apns"]["payload"]["aps"]["alert"]["body"].clone(),
            _ => m["message"]["android"]["notification"]["body"].clone(),
        };
        let body = body.as_str().unwrap();
        assert!(body.ends_with('…') && long.starts_with(body.trim_end_matches('…')));
        assert_eq!(
            m["message"]["data"]["k"],
            "v".repeat(500),
            "data is kept while text can give"
        );
    }
}

#[test]
fn long_collapse_keys_are_hashed_into_sixty_four_bytes() {
    let key = format!("conv:{}", "ü".repeat(60));
    let id = collapse_id(&key);
    assert!(id.len() <= 64);
    assert_ne!(collapse_id(&format!("{key}x")), id);
    assert_eq!(collapse_id("conv:c1"), "conv:c1");
}

fn gms_delivery(items: usize) -> Delivery {
    let mut d = delivery(PushKind::NewMessage, "New message from Ann", "still there?");
    d.push.gms = Some(herald_engine::push::Gms {
        message: "New message from Agent".into(),
        service_id: "c1".into(),
        last_transcript: (1..=items)
            .map(|i| herald_engine::push::GmsItem {
                kind: "Message.Text".into(),
                text: format!("line {i} {}", "x".repeat(300)),
            })
            .collect(),
    });
    d
}

#[test]
fn a_gms_push_to_android_is_data_only_with_message_service_id_transcript_and_tag() {
    let mut d = gms_delivery(0);
    let gms = d.push.gms.as_mut().unwrap();
    gms.last_transcript = vec![
        herald_engine::push::GmsItem {
            kind: "Notice.Custom".into(),
            text: "transferring you".into(),
        },
        herald_engine::push::GmsItem {
            kind: "Message.Text".into(),
            text: "still there?".into(),
        },
    ];
    let r = render(&d, &device(Platform::Android), now());
    assert_eq!(r.shape, Shape::DataOnly);
    let expected = json!({"message": {
        "data": {
            "kind": "new_message", "notification_id": "ntf_1", "conversation_id": "c1",
            "position": "7", "unread": "2", "badge": "5", "message_count": "1",
            "sender_id": "agent-7",
            "title": "New message from Ann", "body": "still there?",
            "message": "New message from Agent",
            "serviceId": "c1",
            "lastTranscript": "[{\"Notice.Custom\":\"transferring you\"},{\"Message.Text\":\"still there?\"}]",
            "tag": "chat.newagentmessage",
        },
        "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "conv:c1"},
        "token": "fcm-token-1",
    }});
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), expected);
}

#[test]
fn a_gms_push_too_big_for_fcm_keeps_its_latest_items() {
    let r = render(&gms_delivery(30), &device(Platform::Android), now());
    assert!(r.message_bytes <= MAX_MESSAGE_BYTES);
    let m: Value = serde_json::from_slice(&r.body).unwrap();
    let items: Vec<Value> =
        serde_json::from_str(m["message"]["data"]["lastTranscript"].as_str().unwrap()).unwrap();
    assert!(items.len() > 1 && items.len() < 30);
    let last = items.last().unwrap()["Message.Text"].as_str().unwrap();
    assert!(last.starts_with("line 30 "), "the latest item stays");
}

#[test]
fn ios_devices_get_the_usual_alert_without_the_gms_transcript() {
    let m = message(&gms_delivery(2), Platform::Ios);
    assert_eq!(m["apns"]["payload"]["aps"]["alert"]["body"], "still there?");
    assert!(m["data"].get("lastTranscript").is_none());
}
