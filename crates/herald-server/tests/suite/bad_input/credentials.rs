//! Missing, malformed, expired and foreign credentials.

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::table::*;
use super::*;

/// A client token signed with the tenant's own HS256 secret.
fn signed_token(secret: &str, tenant: &str, user: &str, exp_offset_s: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let claims = json!({"sub": user, "tid": tenant, "exp": now + exp_offset_s, "iat": now});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signs")
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused_with_401() {
    let hub = TestHub::builder()
        .configure(|c| c.auth.operator_key = Some(OPERATOR_KEY.into()))
        .start()
        .await;
    let mut creds = Creds::of(&hub).await;
    creds.operator = Some(OPERATOR_KEY.into());
    let (status, body) = hub
        .put(
            "/v1/client-auth",
            &hub.key,
            json!({"hs256_secret": CLIENT_SECRET}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let valid_own = signed_token(CLIENT_SECRET, "default", "alice", 3600);
    let expired = signed_token(CLIENT_SECRET, "default", "alice", -3600);
    let wrong_secret = signed_token(
        "another-secret-0123456789abcdefghij",
        "default",
        "alice",
        3600,
    );
    let unknown_tenant = signed_token(CLIENT_SECRET, "nobody", "alice", 3600);
    let no_user = signed_token(CLIENT_SECRET, "default", "al ice", 3600);
    let bearer = |credential: &str| Cred::Header(format!("Bearer {credential}"));

    let server_routes: Vec<(Method, &str, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/events",
            Some(message("e1", "c1", "hello")),
        ),
        (Method::GET, "/v1/apps", None),
        (Method::PUT, "/v1/apps/app1", Some(json!({"name": "x"}))),
        (Method::GET, "/v1/conversations/c1", None),
        (Method::POST, "/v1/users/alice/tokens", None),
        (Method::GET, "/v1/users/alice/devices", None),
        (Method::GET, "/v1/keys", None),
        (Method::POST, "/v1/keys", None),
    ];
    let server_creds: Vec<(&str, Cred)> = vec![
        ("no credentials", Cred::None),
        ("a garbage bearer", bearer("nonsense")),
        (
            "an hk_ key that does not exist",
            bearer(&format!("hk_{}", "A".repeat(43))),
        ),
        ("an empty bearer", Cred::Header("Bearer ".into())),
        (
            "the key under the Basic scheme",
            Cred::Header(format!("Basic {}", hub.key)),
        ),
        ("the key without a scheme", Cred::Header(hub.key.clone())),
        ("a client token", Cred::Token),
        ("the operator key", Cred::Operator),
        (
            "an oversized bearer",
            bearer(&format!("hk_{}", "A".repeat(10_000))),
        ),
    ];
    let client_routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/v1/me/unread", None),
        (Method::GET, "/v1/me/devices", None),
        (Method::POST, "/v1/me/devices", Some(apns_device())),
        (
            Method::POST,
            "/v1/me/conversations/c1/read",
            Some(json!({"position": 1})),
        ),
        (Method::GET, "/v1/me/conversations/c1/events", None),
        (Method::GET, "/v1/live", None),
    ];
    let client_creds: Vec<(&str, Cred)> = vec![
        ("no credentials", Cred::None),
        ("a garbage bearer", bearer("nonsense")),
        (
            "three garbage JWT segments",
            bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"),
        ),
        ("an expired token", bearer(&expired)),
        ("a token signed with another secret", bearer(&wrong_secret)),
        (
            "a token of a tenant that does not exist",
            bearer(&unknown_tenant),
        ),
        ("a token whose user id is invalid", bearer(&no_user)),
        ("the server key", Cred::Key),
        ("the operator key", Cred::Operator),
        (
            "the token under the Basic scheme",
            Cred::Header(format!("Basic {}", creds.token)),
        ),
    ];
    let operator_routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/v1/admin/tenants", None),
        (
            Method::POST,
            "/v1/admin/tenants",
            Some(json!({"id": "acme"})),
        ),
        (Method::POST, "/v1/admin/tenants/default/keys", None),
        (Method::DELETE, "/v1/admin/tenants/default/keys/key_x", None),
    ];
    let operator_creds: Vec<(&str, Cred)> = vec![
        ("no credentials", Cred::None),
        ("a wrong operator key", bearer("op-key-0123456789abcdeX")),
        (
            "the operator key with a suffix",
            bearer(&format!("{OPERATOR_KEY}x")),
        ),
        ("a server key", Cred::Key),
        ("a client token", Cred::Token),
    ];
    let mut rows = vec![];
    for (routes, credentials) in [
        (&server_routes, &server_creds),
        (&client_routes, &client_creds),
        (&operator_routes, &operator_creds),
    ] {
        for (method, path, body) in routes {
            for (what, cred) in credentials {
                let row = bad(
                    format!("{what} on {method} {path}"),
                    method.clone(),
                    *path,
                    cred.clone(),
                );
                let row = match body {
                    Some(body) => row.json(body.clone()),
                    None => row,
                };
                rows.push(row.unauthorized());
            }
        }
    }
    rows.push(
        bad(
            "a garbage ?token= on the live endpoint",
            Method::GET,
            "/v1/live?token=nonsense",
            Cred::None,
        )
        .unauthorized(),
    );
    rows.push(
        bad(
            "an expired ?token= on the live endpoint",
            Method::GET,
            format!("/v1/live?token={expired}"),
            Cred::None,
        )
        .unauthorized(),
    );
    rows.push(
        bad(
            "?token= is only for the live endpoint",
            Method::GET,
            format!("/v1/me/unread?token={}", creds.token),
            Cred::None,
        )
        .unauthorized(),
    );
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed.
    assert_eq!(last_position(&hub, "c1").await, None);
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
    let (_, tenants) = hub.get("/v1/admin/tenants", OPERATOR_KEY).await;
    assert_eq!(tenants.as_array().map(Vec::len), Some(1), "{tenants}");
    // Each credential, when right, works: the refusals were about the credentials.
    for (token, what) in [
        (&creds.token, "a minted token"),
        (&valid_own, "a token signed with the tenant's secret"),
    ] {
        let (status, body) = hub.get("/v1/me/unread", token).await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
    }
    let (status, _) = hub.get("/v1/apps", &hub.key).await;
    assert_eq!(status, StatusCode::OK);
}
