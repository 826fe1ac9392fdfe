//! Routing and the admin API's availability.

use herald_testkit::TestHub;
use reqwest::Method;
use serde_json::{Value, json};

use super::table::*;
use super::*;

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems_and_the_admin_api_is_off_without_an_operator_key()
 {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    let rows = vec![
        bad("unknown route", Method::GET, "/v1/nope", Cred::Key).not_found(),
        bad(
            "unknown route without credentials",
            Method::GET,
            "/v2/events",
            Cred::None,
        )
        .not_found(),
        bad("the root", Method::GET, "/", Cred::None).not_found(),
        bad(
            "a route with an extra segment",
            Method::GET,
            "/v1/apps/app1/extra",
            Cred::Key,
        )
        .not_found(),
        bad(
            "path traversal",
            Method::GET,
            "/v1/apps/..%2F..%2Fetc%2Fpasswd/x",
            Cred::Key,
        )
        .not_found(),
        bad(
            "GET on the events endpoint",
            Method::GET,
            "/v1/events",
            Cred::Key,
        )
        .not_allowed(),
        bad(
            "DELETE on the events endpoint",
            Method::DELETE,
            "/v1/events",
            Cred::Key,
        )
        .not_allowed(),
        bad("POST on an app", Method::POST, "/v1/apps/app1", Cred::Key)
            .json(json!({}))
            .not_allowed(),
        bad("PATCH on an app", Method::PATCH, "/v1/apps/app1", Cred::Key)
            .json(json!({}))
            .not_allowed(),
        bad("POST on healthz", Method::POST, "/healthz", Cred::None).not_allowed(),
        bad(
            "PUT on a conversation",
            Method::PUT,
            "/v1/conversations/c1",
            Cred::Key,
        )
        .json(json!({}))
        .not_allowed(),
        bad(
            "admin API without an operator key configured",
            Method::GET,
            "/v1/admin/tenants",
            Cred::None,
        )
        .not_found(),
        bad(
            "admin API without an operator key configured, with a server key",
            Method::GET,
            "/v1/admin/tenants",
            Cred::Key,
        )
        .not_found(),
        bad(
            "admin API without an operator key configured, with a guessed key",
            Method::POST,
            "/v1/admin/tenants",
            Cred::Operator,
        )
        .json(json!({"id": "acme"}))
        .not_found(),
        bad(
            "admin key creation without an operator key configured",
            Method::POST,
            "/v1/admin/tenants/default/keys",
            Cred::Operator,
        )
        .not_found(),
    ];
    refuse_all(&hub, &creds, rows).await;
    assert_eq!(last_position(&hub, "c1").await, None);
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
}

#[tokio::test]
async fn bad_admin_requests_are_refused_and_create_nothing() {
    let hub = TestHub::builder()
        .configure(|c| c.auth.operator_key = Some(OPERATOR_KEY.into()))
        .start()
        .await;
    let mut creds = Creds::of(&hub).await;
    creds.operator = Some(OPERATOR_KEY.into());
    let create = |what: &str| bad(what, Method::POST, "/v1/admin/tenants", Cred::Operator);
    let rows = vec![
        create("malformed JSON")
            .raw("application/json", "{\"id\":")
            .malformed(),
        create("text/plain content type")
            .raw("text/plain", r#"{"id":"acme"}"#)
            .unsupported(),
        create("tenant id with a space")
            .json(json!({"id": "ac me"}))
            .invalid("id"),
        create("tenant id of 200 characters")
            .json(json!({"id": "t".repeat(200)}))
            .invalid("id"),
        create("missing tenant id")
            .json(json!({"name": "Acme"}))
            .invalid("id"),
        create("unknown field")
            .json(json!({"id": "acme", "colour": "red"}))
            .invalid("colour"),
        create("name over 256 bytes")
            .json(json!({"id": "acme", "name": "n".repeat(300)}))
            .invalid("name"),
        create("a tenant that exists")
            .json(json!({"id": "default"}))
            .is(409, "already_exists"),
        bad(
            "a key for a tenant that does not exist",
            Method::POST,
            "/v1/admin/tenants/nobody/keys",
            Cred::Operator,
        )
        .not_found(),
        bad(
            "revoke a key that does not exist",
            Method::DELETE,
            "/v1/admin/tenants/default/keys/key_nope",
            Cred::Operator,
        )
        .not_found(),
        bad(
            "a key with an unknown field",
            Method::POST,
            "/v1/admin/tenants/default/keys",
            Cred::Operator,
        )
        .json(json!({"label": "x"}))
        .invalid("label"),
    ];
    refuse_all(&hub, &creds, rows).await;
    let tenants = json_list(&hub, "/v1/admin/tenants", OPERATOR_KEY).await;
    assert_eq!(tenants.len(), 1, "{tenants:?}");
    assert_eq!(tenants[0]["id"], "default");
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
}
