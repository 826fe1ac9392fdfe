use super::*;
use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
use herald_engine::push::Target;

pub(crate) fn delivery(kind: PushKind, title: &str, body: &str) -> Delivery {
    let now = time::macros::datetime!(2026-11-23 10:00 UTC);
    Delivery {
        id: "dlv_1".into(),
        notification_id: "ntf_1".into(),
        tenant_id: TenantId::parse("default").unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        channel: "apns".into(),
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
            title: Some(title.into()),
            body: Some(body.into()),
            lines: vec![],
            sender: None,
            message_count: 1,
            unread: 2,
            badge: 5,
            call_id: None,
            missed_calls: 0,
            collapse_key: "conv:c1".into(),
            high_priority: true,
            data: Default::default(),
            created_at: now,
            expires_at: now + time::Duration::hours(1),
            gateway: None,
            gms: None,
        },
        attempt: 1,
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn an_alert_carries_text_absolute_badge_thread_and_herald_data() {
    let d = delivery(PushKind::NewMessage, "New message from Ann", "Hello");
    let p = json(&render(&d, PushType::Alert));
    assert_eq!(
        p["aps"],
        json!({"alert": {"title": "New message from Ann", "body": "Hello"}, "badge": 5,
            "sound": "default", "thread-id": "c1", "mutable-content": 1})
    );
    assert_eq!(p["herald"]["conversation_id"], "c1");
    assert_eq!(p["herald"]["position"], 7);
    assert_eq!(p["herald"]["unread"], 2);
    assert_eq!(p["herald"]["kind"], "new_message");
    assert_eq!(p["herald"]["notification_id"], "ntf_1");
}

#[test]
fn a_silent_push_is_content_available_with_the_badge_and_no_text() {
    let d = delivery(PushKind::Read, "t", "b");
    let p = json(&render(&d, PushType::Background));
    assert_eq!(p["aps"], json!({"content-available": 1, "badge": 5}));
    assert!(p.get("title").is_none());
    assert_eq!(
        PushType::for_push(DeviceChannel::Apns, PushKind::Read),
        PushType::Background
    );
    assert_eq!(
        PushType::for_push(DeviceChannel::Apns, PushKind::RevokedCall),
        PushType::Background
    );
    assert_eq!(PushType::Background.priority(), "5");
}

#[test]
fn voip_has_its_data_at_the_top_level_and_the_voip_topic() {
    let mut d = delivery(PushKind::IncomingCall, "Ann is calling", "");
    d.push.call_id = Some("call-1".into());
    let p = json(&render(&d, PushType::Voip));
    assert!(p.get("aps").is_none());
    assert_eq!(p["herald"]["call_id"], "call-1");
    assert_eq!(p["herald"]["title"], "Ann is calling");
    assert_eq!(
        PushType::Voip.topic("com.example.chat"),
        "com.example.chat.voip"
    );
    assert_eq!(
        PushType::Voip.topic("com.example.chat.voip"),
        "com.example.chat.voip"
    );
    assert_eq!(
        PushType::Alert.topic("com.example.chat"),
        "com.example.chat"
    );
}

#[test]
fn ten_kilobytes_of_text_are_cut_to_the_limit_on_a_character_boundary() {
    for (push_type, limit) in [(PushType::Alert, 4096), (PushType::Voip, 5120)] {
        // Two-, three- and four-byte characters, and characters JSON escapes.
        let body: String = "é€😀\"\n".repeat(1000);
        assert!(body.len() > 10_000);
        let d = delivery(PushKind::NewMessage, &"T€".repeat(30), &body);
        let bytes = render(&d, push_type);
        assert!(bytes.len() <= limit, "{} > {limit}", bytes.len());
        assert!(
            bytes.len() > limit - 8,
            "not cut more than needed: {}",
            bytes.len()
        );
        let p = json(&bytes);
        let text = match push_type {
            PushType::Voip => p["herald"]["body"].as_str().unwrap().to_string(),
            _ => p["aps"]["alert"]["body"].as_str().unwrap().to_string(),
        };
        assert!(text.ends_with('…'));
        assert!(body.starts_with(text.trim_end_matches('…')));
    }
}

#[test]
fn the_title_is_cut_only_when_the_body_is_gone() {
    let d = delivery(PushKind::NewMessage, &"t".repeat(5000), "short body");
    let p = json(&render(&d, PushType::Alert));
    assert!(p["aps"]["alert"]["title"].as_str().unwrap().len() < 4096);
    assert_eq!(p["aps"]["alert"]["body"], "");
}

#[test]
fn huge_custom_data_never_makes_a_push_fail() {
    let mut d = delivery(PushKind::Proactive, "Offer", "Hi");
    for i in 0..100 {
        d.push.data.insert(format!("k{i}"), "v".repeat(100));
    }
    let bytes = render(&d, PushType::Alert);
    assert!(bytes.len() <= 4096);
    assert_eq!(json(&bytes)["herald"]["notification_id"], "ntf_1");
}

#[test]
fn apns_ids_are_stable_canonical_uuids() {
    let id = apns_id("dlv_0193");
    assert_eq!(id, apns_id("dlv_0193"));
    assert_ne!(id, apns_id("dlv_0194"));
    let parsed = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(parsed.hyphenated().to_string(), id);
    assert_eq!(id, id.to_lowercase());
    assert_eq!(id.len(), 36);
    assert_eq!(parsed.get_version_num(), 8);
}

#[test]
fn collapse_ids_fit_in_64_bytes_and_long_ones_stay_distinct() {
    assert_eq!(collapse_id("conv:c1"), "conv:c1");
    let a = format!("conv:{}a", "é".repeat(40));
    let b = format!("conv:{}b", "é".repeat(40));
    let (ca, cb) = (collapse_id(&a), collapse_id(&b));
    assert!(ca.len() <= 64 && cb.len() <= 64);
    assert_ne!(ca, cb);
    assert!(ca.starts_with("conv:é"));
    assert_eq!(collapse_id(&"x".repeat(64)), "x".repeat(64));
}
