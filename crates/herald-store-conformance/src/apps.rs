//! Apps.

use std::sync::Arc;

use herald_engine::device::DeviceChannel;
use herald_engine::store::{Store, StoredApp};
use serde_json::json;

use crate::support::{app_id, at, device_id, registration, tenant, user};

fn app(id: &str, version: u8, seconds: i64) -> StoredApp {
    StoredApp {
        app_id: app_id(id),
        document: json!({"name": id, "version": version, "fcm": {"project_id": "p"}}),
        sealed_secrets: vec![version; 16],
        created_at: at(seconds),
        updated_at: at(seconds),
    }
}

pub async fn putting_an_app_creates_then_replaces_it_keeping_created_at(store: Arc<dyn Store>) {
    let t = tenant("acme");
    assert!(
        store.put_app(&t, &app("mobile", 1, 0)).await.unwrap(),
        "created"
    );
    assert_eq!(
        store.get_app(&t, &app_id("mobile")).await.unwrap(),
        Some(app("mobile", 1, 0))
    );

    assert!(
        !store.put_app(&t, &app("mobile", 2, 60)).await.unwrap(),
        "replaced"
    );
    let expected = StoredApp {
        created_at: at(0),
        ..app("mobile", 2, 60)
    };
    assert_eq!(
        store.get_app(&t, &app_id("mobile")).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.list_apps(&t).await.unwrap(), [expected]);
    assert_eq!(store.get_app(&t, &app_id("web")).await.unwrap(), None);
}

pub async fn apps_are_listed_per_tenant(store: Arc<dyn Store>) {
    let t = tenant("acme");
    store.put_app(&t, &app("web", 1, 0)).await.unwrap();
    store.put_app(&t, &app("mobile", 1, 0)).await.unwrap();
    store
        .put_app(&tenant("beta"), &app("desk", 1, 0))
        .await
        .unwrap();
    let mut listed = store.list_apps(&t).await.unwrap();
    listed.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    assert_eq!(listed, [app("mobile", 1, 0), app("web", 1, 0)]);
}

pub async fn deleting_an_app_deletes_its_devices(store: Arc<dyn Store>) {
    let t = tenant("acme");
    store.put_app(&t, &app("mobile", 1, 0)).await.unwrap();
    store.put_app(&t, &app("web", 1, 0)).await.unwrap();
    let (gone_1, _) = store
        .register_device(
            &t,
            &registration("mobile", "u1", DeviceChannel::Fcm, "tok-1"),
            device_id("d1"),
            at(1),
        )
        .await
        .unwrap();
    let (gone_2, _) = store
        .register_device(
            &t,
            &registration("mobile", "u2", DeviceChannel::Fcm, "tok-2"),
            device_id("d2"),
            at(1),
        )
        .await
        .unwrap();
    let (kept, _) = store
        .register_device(
            &t,
            &registration("web", "u1", DeviceChannel::Fcm, "tok-3"),
            device_id("d3"),
            at(1),
        )
        .await
        .unwrap();

    assert!(store.delete_app(&t, &app_id("mobile")).await.unwrap());
    assert_eq!(store.get_app(&t, &app_id("mobile")).await.unwrap(), None);
    assert_eq!(store.get_device(&t, &gone_1.id).await.unwrap(), None);
    assert_eq!(store.get_device(&t, &gone_2.id).await.unwrap(), None);
    assert!(
        store
            .list_devices(&t, &user("u2"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_devices(&t, &user("u1")).await.unwrap(), [kept]);
    assert!(
        !store.delete_app(&t, &app_id("mobile")).await.unwrap(),
        "already deleted"
    );
    assert_eq!(store.list_apps(&t).await.unwrap().len(), 1);
}
