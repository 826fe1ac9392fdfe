//! Apps (secrets write-only, sealed at rest) and authentication (server keys, client tokens).

use herald_engine::ids::{AppId, TenantId};
use herald_testkit::TestHub;
use herald_testkit::keys::{EC_PRIVATE_PEM, EC_PUBLIC_PEM};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SMTP_PASSWORD: &str = "correct-horse-battery-staple";

fn app_document() -> Value {
    json!({
        "name": "Support chat",
        "rules": {"grace_delay_ms": 0},
        "apns": {"team_id": "TEAM123456", "key_id": "KEY1234567", "private_key": EC_PRIVATE_PEM, "topic": "com.example.chat"},
        "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none", "from": "chat@example.com", "password": SMTP_PASSWORD},
    })
}

#[tokio::test]
async fn secrets_are_masked_on_read_and_a_round_trip_keeps_them() {
    let hub = TestHub::start().await;
    let (status, stored) = hub.put("/v1/apps/chat", &hub.key, app_document()).await;
    assert_eq!(status, 201, "{stored}");
    let (_, read) = hub.get("/v1/apps/chat", &hub.key).await;
    assert_eq!(read["smtp"]["password"], "********");
    assert_eq!(read["apns"]["private_key"], "********");
    assert_eq!(
        read["rules"]["coalesce_window_ms"], 3000,
        "defaults are filled in"
    );
    assert_eq!(read["rules"]["grace_delay_ms"], 0);

    // GET, edit, PUT back with the masks: the stored secrets are kept.
    let mut edited = read.clone();
    edited["name"] = json!("Renamed");
    let (status, _) = hub.put("/v1/apps/chat", &hub.key, edited).await;
    assert_eq!(status, 200);
    let tenant = TenantId::parse("default").unwrap();
    let stored = hub
        .state
        .store
        .get_app(&tenant, &AppId::parse("chat").unwrap())
        .await
        .unwrap()
        .unwrap();
    let secrets = herald_tenancy::apps::open_secrets(&hub.state.sealer, &tenant, &stored).unwrap();
    assert_eq!(secrets["/smtp/password"], SMTP_PASSWORD);
    assert_eq!(stored.document["name"], "Renamed");
}

#[tokio::test]
async fn secrets_never_reach_the_database_file_in_clear() {
    let mut hub = TestHub::start().await;
    hub.put("/v1/apps/chat", &hub.key, app_document()).await;
    hub.shutdown().await;
    for entry in std::fs::read_dir(hub.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("herald.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(SMTP_PASSWORD.len())
                    .any(|w| w == SMTP_PASSWORD.as_bytes()),
                "{} holds the password",
                path.display()
            );
            assert!(
                !bytes
                    .windows(20)
                    .any(|w| w == &EC_PRIVATE_PEM.as_bytes()[28..48]),
                "{} holds the key",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn an_unparseable_key_is_a_422_naming_the_field_and_stores_nothing() {
    let hub = TestHub::start().await;
    let mut doc = app_document();
    doc["apns"]["private_key"] =
        json!("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n");
    let (status, problem) = hub.put("/v1/apps/chat", &hub.key, doc).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["path"], "apns.private_key");
    assert_eq!(hub.get("/v1/apps/chat", &hub.key).await.0, 404);
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

fn in_an_hour() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + 3600
}

#[tokio::test]
async fn client_tokens_signed_by_the_tenants_backend_are_accepted_and_others_are_not() {
    let hub = TestHub::start().await;
    let secret = "s".repeat(40);
    let (status, settings) = hub.put("/v1/client-auth", &hub.key, json!({"hs256_secret": secret, "public_key_pem": EC_PUBLIC_PEM, "public_key_alg": "ES256"})).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["hs256_secret"], "********");

    let hs = EncodingKey::from_secret(secret.as_bytes());
    let es = EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap();
    let good = json!({"sub": "alice", "tid": "default", "exp": in_an_hour()});
    assert_eq!(
        hub.get("/v1/me/unread", &sign(Algorithm::HS256, &hs, good.clone()))
            .await
            .0,
        200,
        "HS256 with the tenant secret"
    );
    assert_eq!(
        hub.get("/v1/me/unread", &sign(Algorithm::ES256, &es, good.clone()))
            .await
            .0,
        200,
        "ES256 with the tenant key"
    );

    let refused = [
        (
            "wrong secret",
            sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(b"another-secret-of-enough-length!!"),
                good.clone(),
            ),
        ),
        (
            "no exp",
            sign(
                Algorithm::HS256,
                &hs,
                json!({"sub": "alice", "tid": "default"}),
            ),
        ),
        (
            "expired",
            sign(
                Algorithm::HS256,
                &hs,
                json!({"sub": "alice", "tid": "default", "exp": in_an_hour() - 7200}),
            ),
        ),
        (
            "no sub",
            sign(
                Algorithm::HS256,
                &hs,
                json!({"tid": "default", "exp": in_an_hour()}),
            ),
        ),
        (
            "unknown tenant",
            sign(
                Algorithm::HS256,
                &hs,
                json!({"sub": "alice", "tid": "other", "exp": in_an_hour()}),
            ),
        ),
        ("not a jwt", "garbage".to_string()),
    ];
    for (why, token) in refused {
        let (status, problem) = hub.get("/v1/me/unread", &token).await;
        assert_eq!(status, 401, "{why}: {problem}");
        assert_eq!(problem["code"], "unauthorized");
    }
}

#[tokio::test]
async fn a_minted_token_acts_as_its_user_and_a_server_key_is_not_a_client_token() {
    let hub = TestHub::start().await;
    let token = hub.token("alice").await;
    assert_eq!(hub.get("/v1/me/unread", &token).await.0, 200);
    assert_eq!(hub.get("/v1/me/unread", &hub.key).await.0, 401);
    assert_eq!(hub.post("/v1/events", &token, json!({})).await.0, 401);
    let (status, problem) = hub
        .post(
            "/v1/users/alice/tokens",
            &hub.key,
            json!({"ttl_s": 10_000_000}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_and_a_revoked_key_stops_at_once() {
    let hub = TestHub::start().await;
    let (status, created) = hub.post("/v1/keys", &hub.key, json!({"name": "ci"})).await;
    assert_eq!(status, 201);
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("hk_"));
    let (_, keys) = hub.get("/v1/keys", &secret).await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        !keys.to_string().contains(&secret),
        "listing never shows secrets"
    );
    let id = created["key"]["id"].as_str().unwrap();
    assert_eq!(hub.delete(&format!("/v1/keys/{id}"), &hub.key).await.0, 204);
    assert_eq!(hub.get("/v1/keys", &secret).await.0, 401);
}

#[tokio::test]
async fn a_webpush_section_gets_vapid_keys_and_clients_can_read_the_public_one() {
    let hub = TestHub::start().await;
    let (status, app) = hub
        .put(
            "/v1/apps/web",
            &hub.key,
            json!({"webpush": {"subject": "mailto:ops@example.com"}}),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let public = app["webpush"]["vapid_public_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app["webpush"]["vapid_private_key"], "********");
    let token = hub.token("alice").await;
    let (status, key) = hub.get("/v1/me/apps/web/webpush", &token).await;
    assert_eq!(status, 200);
    assert_eq!(key["vapid_public_key"], public.as_str());
    // A round trip keeps the generated pair.
    let (_, again) = hub.put("/v1/apps/web", &hub.key, app).await;
    assert_eq!(again["webpush"]["vapid_public_key"], public.as_str());
    let (status, problem) = hub
        .put(
            "/v1/apps/bad",
            &hub.key,
            json!({"webpush": {"subject": "mailto:a@b", "vapid_private_key": "AAAA"}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["path"], "webpush.vapid_private_key");
    assert_eq!(hub.get("/v1/me/apps/nope/webpush", &token).await.0, 404);
}

#[tokio::test]
async fn an_smtp_sender_that_is_not_an_address_is_refused() {
    let hub = TestHub::start().await;
    let smtp = json!({"host": "smtp.example.com", "port": 587, "from": "not an address"});
    let (status, problem) = hub
        .put("/v1/apps/mail", &hub.key, json!({"smtp": smtp}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["path"], "smtp.from");
    let smtp = json!({"host": "smtp.example.com", "port": 587, "from": "\"Support\" <support@example.com>"});
    assert_eq!(
        hub.put("/v1/apps/mail", &hub.key, json!({"smtp": smtp}))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn re_applying_a_web_push_app_without_keys_keeps_its_vapid_pair_until_a_rotation_is_asked_for()
 {
    let hub = TestHub::start().await;
    let document = json!({"webpush": {"subject": "mailto:ops@example.com"}});
    let (status, first) = hub.put("/v1/apps/web", &hub.key, document.clone()).await;
    assert_eq!(status, 201, "{first}");
    let generated = first["webpush"]["vapid_public_key"].clone();
    assert!(generated.is_string(), "a pair is generated: {first}");

    // The same document again (a deploy re-applying its config): browsers keep working.
    let (status, again) = hub.put("/v1/apps/web", &hub.key, document.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["webpush"]["vapid_public_key"], generated);
    let (_, browser_view) = hub
        .get("/v1/me/apps/web/webpush", &hub.token("visitor-1").await)
        .await;
    assert_eq!(
        browser_view["vapid_public_key"], generated,
        "{browser_view}"
    );

    // Only an explicit rotation makes a new pair.
    let (status, rotated) = hub
        .put("/v1/apps/web?rotate_vapid_keys=true", &hub.key, document)
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["webpush"]["vapid_public_key"].is_string());
    assert_ne!(rotated["webpush"]["vapid_public_key"], generated);
}
