//! Tenant isolation: two tenants using the very same ids never touch each other's rows.

use std::sync::Arc;

use herald_engine::device::{DeviceChannel, Registered};
use herald_engine::ids::KeyId;
use herald_engine::store::{Store, StoredApp, UnreadCount};
use herald_engine::tenant::ApiKey;
use serde_json::json;

use crate::support::{
    app_id, append, at, conversation, device_id, event_id, from_installation, joined, message,
    positions, registration, tenant, transcript, unread_of, user,
};

pub async fn tenants_never_see_each_others_data(store: Arc<dyn Store>) {
    let (acme, beta) = (tenant("acme"), tenant("beta"));
    let c1 = conversation("c1");
    for (t, hash) in [(&acme, 1), (&beta, 2)] {
        let app = StoredApp {
            app_id: app_id("mobile"),
            document: json!({"tenant": t.as_str()}),
            sealed_secrets: vec![hash],
            created_at: at(0),
            updated_at: at(0),
        };
        assert!(
            store.put_app(t, &app).await.unwrap(),
            "created in each tenant"
        );
        let installed = from_installation(
            registration("mobile", "u1", DeviceChannel::Fcm, "tok-1"),
            "inst-1",
        );
        let (_, registered) = store
            .register_device(t, &installed, device_id("d1"), at(1))
            .await
            .unwrap();
        assert_eq!(registered, Registered::Created, "a token is per tenant");
        let appended = append(
            &store,
            t,
            vec![
                joined("e1", "c1", "v1", "visitor"),
                message("e2", "c1", "a1", "agent", t.as_str()),
            ],
        )
        .await;
        assert_eq!(
            positions(&appended),
            [1, 2],
            "event ids and positions are per tenant"
        );
        assert!(appended.iter().all(|a| !a.duplicate));
        let key = ApiKey {
            id: KeyId::parse("k1").unwrap(),
            tenant_id: t.clone(),
            name: "key".into(),
            prefix: "hk".into(),
            created_at: at(0),
            revoked_at: None,
        };
        store.create_api_key(&key, [hash; 32]).await.unwrap();
    }

    // Writes in beta, with acme's ids.
    let (moved, registered) = store
        .register_device(
            &beta,
            &registration("mobile", "u2", DeviceChannel::Fcm, "tok-1"),
            device_id("d2"),
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(
        (moved.id, registered),
        (device_id("d1"), Registered::Transferred)
    );
    let rotated = from_installation(
        registration("mobile", "u3", DeviceChannel::Fcm, "tok-9"),
        "inst-1",
    );
    let (_, registered) = store
        .register_device(&beta, &rotated, device_id("d3"), at(3))
        .await
        .unwrap();
    assert_eq!(registered, Registered::Rotated, "beta's own installation");
    store
        .mark_read(&beta, &c1, &user("v1"), 2, event_id("m1"), at(4))
        .await
        .unwrap();
    store
        .remove_participant(&beta, &c1, &user("a1"), event_id("m2"), at(5))
        .await
        .unwrap();
    assert!(
        store
            .revoke_api_key(&beta, &KeyId::parse("k1").unwrap(), at(6))
            .await
            .unwrap()
    );

    // acme is untouched.
    let acme_device = store
        .get_device(&acme, &device_id("d1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (acme_device.user_id.clone(), acme_device.token.as_str()),
        (user("u1"), "tok-1")
    );
    assert_eq!(
        store.list_devices(&acme, &user("u1")).await.unwrap(),
        [acme_device]
    );
    assert!(
        store
            .list_devices(&acme, &user("u3"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(unread_of(&store, &acme, "c1", "v1").await, 1);
    assert!(
        store
            .membership(&acme, &c1, &user("a1"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(transcript(&store, &acme, "c1").await.len(), 2);
    assert_eq!(
        store.unread(&acme, &user("v1")).await.unwrap(),
        [UnreadCount {
            conversation_id: c1.clone(),
            count: 1
        }]
    );
    assert!(store.find_api_key([1; 32]).await.unwrap().is_some());
    assert_eq!(store.list_api_keys(&acme).await.unwrap().len(), 1);
    assert_eq!(
        store.list_api_keys(&acme).await.unwrap()[0].revoked_at,
        None
    );

    // Deletes in beta leave acme's rows (beta's only device is d1, now u3's).
    assert_eq!(
        store
            .delete_devices_by_token(&beta, &user("u1"), "tok-1")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.delete_user_devices(&beta, &user("u1")).await.unwrap(),
        0
    );
    assert!(store.delete_app(&beta, &app_id("mobile")).await.unwrap());
    assert!(
        !store.delete_device(&beta, &device_id("d1")).await.unwrap(),
        "gone with its app"
    );
    assert!(
        store
            .get_device(&acme, &device_id("d1"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_app(&acme, &app_id("mobile"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.list_apps(&beta).await.unwrap().is_empty());

    // Reads in beta see only beta.
    assert_eq!(store.get_app(&beta, &app_id("mobile")).await.unwrap(), None);
    assert_eq!(
        store.get_device(&beta, &device_id("d1")).await.unwrap(),
        None
    );
    assert_eq!(transcript(&store, &beta, "c1").await.len(), 4);
    assert!(store.unread(&beta, &user("a1")).await.unwrap().is_empty());
    let unknown = tenant("gamma");
    assert_eq!(store.get_conversation(&unknown, &c1).await.unwrap(), None);
    assert!(
        store
            .events_after(&unknown, &c1, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_devices(&unknown, &user("u1"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_api_keys(&unknown).await.unwrap().is_empty());
}
