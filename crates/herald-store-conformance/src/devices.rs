//! Device registration (SPEC §2.3) and deletion.

use std::sync::Arc;

use herald_engine::device::{
    Device, DeviceChannel, Platform, Registered, SubscriptionKeys, WebPushSubscription,
};
use herald_engine::store::Store;

use crate::support::{at, device_id, from_installation, registration, tenant, user};

pub async fn registering_a_new_token_creates_a_device(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let mut r = from_installation(
        registration("mobile", "u1", DeviceChannel::Apns, "abcd01"),
        "inst-1",
    );
    r.platform = Platform::Ios;
    r.locale = Some("pt-BR".into());
    let (device, registered) = store
        .register_device(&t, &r, device_id("d1"), at(5))
        .await
        .unwrap();
    assert_eq!(registered, Registered::Created);
    let expected = Device {
        id: device_id("d1"),
        app_id: r.app_id.clone(),
        user_id: user("u1"),
        channel: DeviceChannel::Apns,
        token: "abcd01".into(),
        subscription: None,
        platform: Platform::Ios,
        locale: Some("pt-BR".into()),
        installation_id: Some("inst-1".into()),
        created_at: at(5),
        updated_at: at(5),
    };
    assert_eq!(device, expected);
    assert_eq!(
        store.get_device(&t, &device.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.list_devices(&t, &user("u1")).await.unwrap(),
        [expected]
    );
    assert_eq!(store.get_device(&t, &device_id("d2")).await.unwrap(), None);
}

pub async fn a_web_push_subscription_is_kept(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let subscription = WebPushSubscription {
        endpoint: "https://push.example.net/x".into(),
        keys: SubscriptionKeys {
            p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4".into(),
            auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
        },
        expiration_time: None,
    };
    let mut r = registration("web", "u1", DeviceChannel::Webpush, &subscription.endpoint);
    r.subscription = Some(subscription.clone());
    r.platform = Platform::Web;
    let (device, _) = store
        .register_device(&t, &r, device_id("d1"), at(5))
        .await
        .unwrap();
    assert_eq!(device.subscription, Some(subscription.clone()));
    let stored = store.get_device(&t, &device.id).await.unwrap().unwrap();
    assert_eq!(stored.subscription, Some(subscription));
}

pub async fn registering_the_same_token_again_refreshes_it(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let first = registration("mobile", "u1", DeviceChannel::Fcm, "tok-1");
    let (created, _) = store
        .register_device(&t, &first, device_id("d1"), at(5))
        .await
        .unwrap();

    let mut again = from_installation(first, "inst-1");
    again.platform = Platform::Other;
    again.locale = Some("fr".into());
    let (device, registered) = store
        .register_device(&t, &again, device_id("d2"), at(9))
        .await
        .unwrap();
    assert_eq!(registered, Registered::Refreshed);
    assert_eq!(
        device,
        Device {
            platform: Platform::Other,
            locale: Some("fr".into()),
            installation_id: Some("inst-1".into()),
            updated_at: at(9),
            ..created
        }
    );
    assert_eq!(
        store.list_devices(&t, &user("u1")).await.unwrap(),
        std::slice::from_ref(&device)
    );
    assert_eq!(
        store.get_device(&t, &device_id("d2")).await.unwrap(),
        None,
        "new_id unused"
    );

    // A registration that does not say its installation does not forget it.
    let (device, registered) = store
        .register_device(
            &t,
            &registration("mobile", "u1", DeviceChannel::Fcm, "tok-1"),
            device_id("d3"),
            at(12),
        )
        .await
        .unwrap();
    assert_eq!(registered, Registered::Refreshed);
    assert_eq!(device.installation_id.as_deref(), Some("inst-1"));
}

pub async fn registering_another_users_token_moves_it(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let (first, _) = store
        .register_device(
            &t,
            &registration("mobile", "u1", DeviceChannel::Fcm, "tok-1"),
            device_id("d1"),
            at(5),
        )
        .await
        .unwrap();
    let (moved, registered) = store
        .register_device(
            &t,
            &registration("mobile", "u2", DeviceChannel::Fcm, "tok-1"),
            device_id("d2"),
            at(9),
        )
        .await
        .unwrap();
    assert_eq!(registered, Registered::Transferred);
    assert_eq!(moved.id, first.id, "the same device, now another user's");
    assert_eq!(moved.user_id, user("u2"));
    assert!(
        store
            .list_devices(&t, &user("u1"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_devices(&t, &user("u2")).await.unwrap(), [moved]);
}

pub async fn a_new_token_with_the_same_installation_replaces_the_old_one(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let old = from_installation(
        registration("mobile", "u1", DeviceChannel::Fcm, "tok-old"),
        "inst-1",
    );
    let (first, _) = store
        .register_device(&t, &old, device_id("d1"), at(5))
        .await
        .unwrap();
    let new = from_installation(
        registration("mobile", "u1", DeviceChannel::Fcm, "tok-new"),
        "inst-1",
    );
    let (rotated, registered) = store
        .register_device(&t, &new, device_id("d2"), at(9))
        .await
        .unwrap();
    assert_eq!(registered, Registered::Rotated);
    assert_eq!(rotated.id, first.id, "replaced in place");
    assert_eq!(rotated.token, "tok-new");
    assert_eq!(rotated.created_at, at(5));
    assert_eq!(rotated.updated_at, at(9));
    assert_eq!(
        store.list_devices(&t, &user("u1")).await.unwrap(),
        std::slice::from_ref(&rotated)
    );

    // Another user signing in on the same installation takes the device over.
    let other = from_installation(
        registration("mobile", "u2", DeviceChannel::Fcm, "tok-newer"),
        "inst-1",
    );
    let (taken, registered) = store
        .register_device(&t, &other, device_id("d3"), at(12))
        .await
        .unwrap();
    assert_eq!(registered, Registered::Rotated);
    assert_eq!(
        (taken.id.clone(), taken.user_id.clone()),
        (first.id, user("u2"))
    );
    assert!(
        store
            .list_devices(&t, &user("u1"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_devices(&t, &user("u2")).await.unwrap(), [taken]);
}

pub async fn re_registering_a_known_token_removes_the_stale_device_of_its_installation(
    store: Arc<dyn Store>,
) {
    let t = tenant("acme");
    let (stale, _) = store
        .register_device(
            &t,
            &from_installation(
                registration("mobile", "u1", DeviceChannel::Fcm, "tok-1"),
                "inst-1",
            ),
            device_id("d1"),
            at(5),
        )
        .await
        .unwrap();
    let (kept, _) = store
        .register_device(
            &t,
            &registration("mobile", "u1", DeviceChannel::Fcm, "tok-2"),
            device_id("d2"),
            at(6),
        )
        .await
        .unwrap();
    // tok-2 is now known to come from inst-1, whose older token must not be reached too.
    let (device, registered) = store
        .register_device(
            &t,
            &from_installation(
                registration("mobile", "u1", DeviceChannel::Fcm, "tok-2"),
                "inst-1",
            ),
            device_id("d3"),
            at(9),
        )
        .await
        .unwrap();
    assert_eq!(registered, Registered::Refreshed);
    assert_eq!(device.id, kept.id);
    assert_eq!(device.installation_id.as_deref(), Some("inst-1"));
    assert_eq!(store.get_device(&t, &stale.id).await.unwrap(), None);
    assert_eq!(store.list_devices(&t, &user("u1")).await.unwrap(), [device]);
}

pub async fn the_same_token_on_another_app_or_channel_is_another_device(store: Arc<dyn Store>) {
    let t = tenant("acme");
    for (i, (app, channel)) in [
        ("mobile", DeviceChannel::Fcm),
        ("other", DeviceChannel::Fcm),
        ("mobile", DeviceChannel::Connector),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, registered) = store
            .register_device(
                &t,
                &registration(app, "u1", channel, "tok-1"),
                device_id(&format!("d{i}")),
                at(5),
            )
            .await
            .unwrap();
        assert_eq!(registered, Registered::Created);
    }
    assert_eq!(store.list_devices(&t, &user("u1")).await.unwrap().len(), 3);
}

pub async fn deleting_devices_by_token_only_touches_that_users_devices(store: Arc<dyn Store>) {
    let t = tenant("acme");
    for (id, app, owner, token) in [
        ("d1", "mobile", "u1", "tok-1"),
        ("d2", "other", "u1", "tok-1"),
        ("d3", "mobile", "u1", "tok-2"),
        ("d4", "third", "u2", "tok-1"),
    ] {
        store
            .register_device(
                &t,
                &registration(app, owner, DeviceChannel::Fcm, token),
                device_id(id),
                at(5),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .delete_devices_by_token(&t, &user("u1"), "tok-1")
            .await
            .unwrap(),
        2
    );
    let left: Vec<_> = store
        .list_devices(&t, &user("u1"))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(left, [device_id("d3")]);
    assert_eq!(
        store.list_devices(&t, &user("u2")).await.unwrap().len(),
        1,
        "u2's device stays"
    );
    assert_eq!(
        store
            .delete_devices_by_token(&t, &user("u1"), "tok-1")
            .await
            .unwrap(),
        0
    );
}

pub async fn deleting_a_users_devices_counts_them(store: Arc<dyn Store>) {
    let t = tenant("acme");
    for (id, owner, token) in [
        ("d1", "u1", "tok-1"),
        ("d2", "u1", "tok-2"),
        ("d3", "u1", "tok-3"),
        ("d4", "u2", "tok-4"),
    ] {
        store
            .register_device(
                &t,
                &registration("mobile", owner, DeviceChannel::Fcm, token),
                device_id(id),
                at(5),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.delete_user_devices(&t, &user("u1")).await.unwrap(), 3);
    assert!(
        store
            .list_devices(&t, &user("u1"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_devices(&t, &user("u2")).await.unwrap().len(), 1);
    assert_eq!(store.delete_user_devices(&t, &user("u1")).await.unwrap(), 0);
}

pub async fn a_device_is_deleted_by_its_id(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let (device, _) = store
        .register_device(
            &t,
            &registration("mobile", "u1", DeviceChannel::Fcm, "tok-1"),
            device_id("d1"),
            at(5),
        )
        .await
        .unwrap();
    assert!(store.delete_device(&t, &device.id).await.unwrap());
    assert_eq!(store.get_device(&t, &device.id).await.unwrap(), None);
    assert!(
        !store.delete_device(&t, &device.id).await.unwrap(),
        "already deleted"
    );
    // The token is free again: registering it creates a new device.
    let (_, registered) = store
        .register_device(
            &t,
            &registration("mobile", "u1", DeviceChannel::Fcm, "tok-1"),
            device_id("d2"),
            at(6),
        )
        .await
        .unwrap();
    assert_eq!(registered, Registered::Created);
}
