//! The body size limit, on every JSON endpoint.

use herald_testkit::TestHub;
use reqwest::Method;
use serde_json::{Value, json};

use super::table::*;
use super::*;

#[tokio::test]
async fn a_body_over_the_size_limit_is_refused_with_413_on_every_json_endpoint() {
    let hub = TestHub::builder()
        .configure(|c| c.limits.max_body_bytes = 4096)
        .start()
        .await;
    let creds = Creds::of(&hub).await;
    // Valid JSON made large with whitespace: only the size is wrong.
    let padded = |v: Value| format!("{}{}", v, " ".repeat(8 * 1024)).into_bytes();
    let big = |what: &str, method: Method, path: &str, cred: Cred, body: Value| {
        bad(what, method, path, cred)
            .raw("application/json", padded(body))
            .too_large()
    };
    let rows = vec![
        big(
            "event",
            Method::POST,
            "/v1/events",
            Cred::Key,
            message("e1", "c1", "hello"),
        ),
        bad(
            "event with 8 KiB of text",
            Method::POST,
            "/v1/events",
            Cred::Key,
        )
        .json(message("e2", "c1", &"x".repeat(8 * 1024)))
        .too_large(),
        big(
            "app document",
            Method::PUT,
            "/v1/apps/app1",
            Cred::Key,
            json!({"name": "x"}),
        ),
        big(
            "participant",
            Method::PUT,
            "/v1/conversations/c1/participants/alice",
            Cred::Key,
            json!({"role": "visitor"}),
        ),
        big(
            "device registration",
            Method::POST,
            "/v1/me/devices",
            Cred::Token,
            apns_device(),
        ),
        big(
            "read",
            Method::POST,
            "/v1/me/conversations/c1/read",
            Cred::Token,
            json!({"position": 1}),
        ),
        big(
            "token mint",
            Method::POST,
            "/v1/users/alice/tokens",
            Cred::Key,
            json!({"ttl_s": 60}),
        ),
        big(
            "key creation",
            Method::POST,
            "/v1/keys",
            Cred::Key,
            json!({"name": "k"}),
        ),
        big(
            "client-auth",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
            json!({}),
        ),
    ];
    refuse_all(&hub, &creds, rows).await;

    assert_eq!(last_position(&hub, "c1").await, None);
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        json_list(&hub, "/v1/users/alice/devices", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
    // Under the limit, the same event is fine.
    hub.events(message("e1", "c1", "hello")).await;
}
