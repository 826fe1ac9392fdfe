//! Tenants and API keys.

use std::sync::Arc;

use herald_engine::ids::KeyId;
use herald_engine::store::{Store, StoreError};
use herald_engine::tenant::{ApiKey, Tenant, TenantAuth};

use crate::support::{at, tenant};

fn a_tenant(id: &str, name: &str) -> Tenant {
    Tenant {
        id: tenant(id),
        name: name.to_string(),
        created_at: at(0),
    }
}

fn auth(secret: u8) -> TenantAuth {
    TenantAuth {
        sealed_secrets: vec![secret; 40],
        public_key_pem: Some("-----BEGIN PUBLIC KEY-----\n...".into()),
        public_key_alg: Some("ES256".into()),
    }
}

fn key(tenant_id: &str, id: &str) -> ApiKey {
    ApiKey {
        id: KeyId::parse(id).expect("a valid key id"),
        tenant_id: tenant(tenant_id),
        name: format!("key {id}"),
        prefix: "hk_abc".into(),
        created_at: at(1),
        revoked_at: None,
    }
}

pub async fn a_created_tenant_reads_back_with_its_auth(store: Arc<dyn Store>) {
    store
        .create_tenant(&a_tenant("beta", "Beta"), &auth(2))
        .await
        .unwrap();
    store
        .create_tenant(&a_tenant("acme", "Acme"), &auth(1))
        .await
        .unwrap();
    assert_eq!(
        store.get_tenant(&tenant("acme")).await.unwrap(),
        Some((a_tenant("acme", "Acme"), auth(1)))
    );
    assert_eq!(store.get_tenant(&tenant("nobody")).await.unwrap(), None);
    let mut listed = store.list_tenants().await.unwrap();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, [a_tenant("acme", "Acme"), a_tenant("beta", "Beta")]);
}

pub async fn creating_an_existing_tenant_fails_with_already_exists(store: Arc<dyn Store>) {
    store
        .create_tenant(&a_tenant("acme", "Acme"), &auth(1))
        .await
        .unwrap();
    let again = store
        .create_tenant(&a_tenant("acme", "Impostor"), &auth(9))
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");
    assert_eq!(
        store.get_tenant(&tenant("acme")).await.unwrap(),
        Some((a_tenant("acme", "Acme"), auth(1))),
        "the first tenant is unchanged"
    );
}

pub async fn tenant_auth_is_replaced_only_for_known_tenants(store: Arc<dyn Store>) {
    store
        .create_tenant(&a_tenant("acme", "Acme"), &auth(1))
        .await
        .unwrap();
    let replaced = TenantAuth {
        sealed_secrets: vec![7; 12],
        public_key_pem: None,
        public_key_alg: None,
    };
    assert!(
        store
            .set_tenant_auth(&tenant("acme"), &replaced)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_tenant(&tenant("acme")).await.unwrap(),
        Some((a_tenant("acme", "Acme"), replaced.clone()))
    );
    assert!(
        !store
            .set_tenant_auth(&tenant("nobody"), &replaced)
            .await
            .unwrap()
    );
    assert_eq!(store.get_tenant(&tenant("nobody")).await.unwrap(), None);
}

pub async fn only_live_api_keys_are_found(store: Arc<dyn Store>) {
    let k1 = key("acme", "k1");
    store.create_api_key(&k1, [1; 32]).await.unwrap();
    assert_eq!(store.find_api_key([1; 32]).await.unwrap(), Some(k1.clone()));
    assert_eq!(store.find_api_key([2; 32]).await.unwrap(), None);

    assert!(
        store
            .revoke_api_key(&tenant("acme"), &k1.id, at(5))
            .await
            .unwrap()
    );
    assert_eq!(store.find_api_key([1; 32]).await.unwrap(), None, "revoked");
    let revoked = ApiKey {
        revoked_at: Some(at(5)),
        ..k1
    };
    assert_eq!(
        store.list_api_keys(&tenant("acme")).await.unwrap(),
        [revoked],
        "a revoked key is still listed, with its revocation time"
    );
}

pub async fn a_key_is_revoked_only_by_its_own_tenant(store: Arc<dyn Store>) {
    let k1 = key("acme", "k1");
    store.create_api_key(&k1, [1; 32]).await.unwrap();
    assert!(
        !store
            .revoke_api_key(&tenant("other"), &k1.id, at(5))
            .await
            .unwrap(),
        "another tenant's key"
    );
    let unknown = KeyId::parse("k9").unwrap();
    assert!(
        !store
            .revoke_api_key(&tenant("acme"), &unknown, at(5))
            .await
            .unwrap(),
        "an unknown key"
    );
    assert_eq!(store.find_api_key([1; 32]).await.unwrap(), Some(k1));
}

pub async fn creating_an_existing_api_key_fails_with_already_exists(store: Arc<dyn Store>) {
    store
        .create_api_key(&key("acme", "k1"), [1; 32])
        .await
        .unwrap();
    let same_id = store.create_api_key(&key("acme", "k1"), [2; 32]).await;
    assert!(
        matches!(same_id, Err(StoreError::AlreadyExists)),
        "{same_id:?}"
    );
    let same_hash = store.create_api_key(&key("acme", "k2"), [1; 32]).await;
    assert!(
        matches!(same_hash, Err(StoreError::AlreadyExists)),
        "{same_hash:?}"
    );
    assert_eq!(
        store.list_api_keys(&tenant("acme")).await.unwrap(),
        [key("acme", "k1")]
    );
    assert_eq!(store.find_api_key([2; 32]).await.unwrap(), None);
}

pub async fn api_keys_are_listed_per_tenant(store: Arc<dyn Store>) {
    for (t, id, hash) in [("acme", "k1", 1), ("acme", "k2", 2), ("beta", "k3", 3)] {
        store.create_api_key(&key(t, id), [hash; 32]).await.unwrap();
    }
    let mut acme = store.list_api_keys(&tenant("acme")).await.unwrap();
    acme.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(acme, [key("acme", "k1"), key("acme", "k2")]);
    assert_eq!(
        store.list_api_keys(&tenant("beta")).await.unwrap(),
        [key("beta", "k3")]
    );
    assert!(
        store
            .list_api_keys(&tenant("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}
