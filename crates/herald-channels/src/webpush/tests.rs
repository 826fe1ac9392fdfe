use super::*;
use herald_engine::app::WebPushSection;
use herald_engine::clock::ManualClock;
use herald_engine::device::{Platform, SubscriptionKeys, WebPushSubscription};
use herald_engine::ids::DeviceId;
use herald_engine::push::PushKind;
use p256::elliptic_curve::sec1::ToEncodedPoint;

fn setup(kind: PushKind) -> (WebPushChannel, Delivery, Device, AppConfig) {
    let delivery = payload::tests::delivery(kind, "Ann", "Hello");
    let now = delivery.push.created_at;
    let channel = WebPushChannel::new(
        Outbound::new(outbound::Guard::default()),
        Arc::new(ManualClock::new(now + time::Duration::minutes(10))),
        Duration::from_secs(5),
    );
    let ua = ece::random_secret_key()
        .public_key()
        .to_encoded_point(false);
    let device = Device {
        id: DeviceId::parse("dev_1").unwrap(),
        app_id: delivery.app_id.clone(),
        user_id: delivery.push.user_id.clone(),
        channel: DeviceChannel::Webpush,
        token: "https://push.example.net:8443/p/abc".into(),
        subscription: Some(WebPushSubscription {
            endpoint: "https://push.example.net:8443/p/abc".into(),
            keys: SubscriptionKeys {
                p256dh: URL_SAFE_NO_PAD.encode(ua.as_bytes()),
                auth: URL_SAFE_NO_PAD.encode([9u8; 16]),
            },
            expiration_time: None,
        }),
        platform: Platform::Web,
        locale: None,
        installation_id: None,
        created_at: now,
        updated_at: now,
    };
    let (public, private) = generate_vapid_keys();
    let app = AppConfig {
        webpush: Some(WebPushSection {
            vapid_public_key: Some(public),
            vapid_private_key: Some(private),
            subject: "mailto:ops@example.com".into(),
            health_check_interval_s: 0,
            health_check_timeout_s: 300,
        }),
        ..AppConfig::default()
    };
    let delivery = Delivery {
        target: Target::Device {
            device: device.clone(),
        },
        ..delivery
    };
    (channel, delivery, device, app)
}

#[test]
fn the_request_carries_ttl_urgency_topic_vapid_and_one_aes128gcm_record() {
    let (channel, delivery, device, app) = setup(PushKind::NewMessage);
    let (url, headers, body) = channel.request(&delivery, &device, &app).unwrap();
    assert_eq!(url, "https://push.example.net:8443/p/abc");
    let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(h("ttl"), "3000", "the push has 50 of its 60 minutes left");
    assert_eq!(h("urgency"), "normal");
    assert_eq!(h("topic"), payload::topic("conv:c1"));
    assert_eq!(h("content-encoding"), "aes128gcm");
    assert_eq!(h("content-type"), "application/octet-stream");
    let authorization = h("authorization");
    let (t, k) = authorization
        .strip_prefix("vapid t=")
        .unwrap()
        .split_once(", k=")
        .unwrap();
    assert_eq!(
        Some(k),
        app.webpush.as_ref().unwrap().vapid_public_key.as_deref()
    );
    let claims = vapid::verify(t, k).unwrap();
    assert_eq!(claims.aud, "https://push.example.net:8443");
    assert_eq!(claims.sub, "mailto:ops@example.com");
    assert_eq!(&body[16..20], &4096u32.to_be_bytes(), "rs");
    assert_eq!(body[20], 65, "idlen");
    assert_eq!(
        body.len(),
        ece::HEADER_LEN + payload::render(&delivery).len() + 1 + 16
    );

    let (channel, delivery, device, app) = setup(PushKind::Read);
    let (_, headers, _) = channel.request(&delivery, &device, &app).unwrap();
    assert_eq!(headers["urgency"], "low");
    assert_eq!(
        channel.endpoint_key(&delivery, &app),
        "webpush:https://push.example.net:8443:chat"
    );
}

#[test]
fn an_app_without_keys_or_a_device_without_a_subscription_is_not_sent() {
    let (channel, delivery, mut device, mut app) = setup(PushKind::NewMessage);
    app.webpush.as_mut().unwrap().vapid_private_key = None;
    assert!(matches!(
        channel.request(&delivery, &device, &app),
        Err(DeliveryOutcome::Permanent { .. })
    ));
    app.webpush = None;
    assert!(matches!(
        channel.request(&delivery, &device, &app),
        Err(DeliveryOutcome::Permanent { .. })
    ));
    let (_, _, _, app) = setup(PushKind::NewMessage);
    device.subscription = None;
    assert!(matches!(
        channel.request(&delivery, &device, &app),
        Err(DeliveryOutcome::InvalidTarget { .. })
    ));
}

fn answer(status: u16, retry_after: Option<&str>) -> Answer {
    let mut headers = HeaderMap::new();
    if let Some(r) = retry_after {
        headers.insert("retry-after", r.parse().unwrap());
    }
    Answer { status, headers }
}

#[test]
fn answers_are_read_as_rfc_8030_says() {
    for status in [200, 201, 202] {
        assert!(matches!(
            classify(&answer(status, None)),
            DeliveryOutcome::Delivered { .. }
        ));
    }
    for status in [404, 410] {
        assert!(matches!(
            classify(&answer(status, None)),
            DeliveryOutcome::InvalidTarget { .. }
        ));
    }
    for status in [400, 401, 403, 413, 301, 302] {
        assert!(
            matches!(
                classify(&answer(status, None)),
                DeliveryOutcome::Permanent {
                    status: Some(s),
                    ..
                } if s == status
            ),
            "{status}"
        );
    }
    assert!(matches!(
        classify(&answer(429, Some("30"))),
        DeliveryOutcome::Retryable {
            after_ms: Some(30_000),
            status: Some(429),
            ..
        }
    ));
    assert!(matches!(
        classify(&answer(503, None)),
        DeliveryOutcome::Retryable {
            status: Some(503),
            ..
        }
    ));
}
