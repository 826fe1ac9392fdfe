//! PUT /v1/apps/{app_id}.

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::table::*;
use super::*;

#[tokio::test]
async fn bad_app_documents_are_refused_with_the_field_named_and_nothing_is_stored() {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    let put = |what: &str| bad(what, Method::PUT, "/v1/apps/app1", Cred::Key);
    let not_a_pem = format!("-----BEGIN PRIVATE KEY-----\n{MARKER}\n-----END PRIVATE KEY-----\n");
    let webhook = |url: &str, secret: &str| json!({"webhooks": [{"id": "w1", "url": url, "events": ["push_notification.new_message"], "secrets": [secret]}]});
    let rows = vec![
        put("malformed JSON").raw("application/json", "{\"name\": \"x\"").malformed(),
        put("10,000-deep nested objects").raw("application/json", nested(10_000, "{\"a\":", "}")).rejected(),
        put("10,000-deep nested arrays").raw("application/json", nested(10_000, "[", "]")).rejected(),
        put("text/plain content type").raw("text/plain", "{}").unsupported(),
        put("a JSON array, not an object").json(json!([1, 2])).invalid(""),
        put("a JSON string, not an object").json(json!("app")).invalid(""),
        put("unknown top-level key").json(json!({"name": "x", "colour": "red"})).invalid("colour"),
        put("name is not a string").json(json!({"name": 7})).invalid("name"),
        put("unknown key in rules").json(json!({"rules": {"colour": "red"}})).invalid("rules.colour"),
        put("filter with a non-event type").json(json!({"rules": {"filter": ["message.exploded"]}})).invalid("rules.filter[0]"),
        put("unknown notify role").json(json!({"rules": {"notify_roles": ["boss"]}})).invalid("rules.notify_roles[0]"),
        put("grace delay over a day").json(json!({"rules": {"grace_delay_ms": 86_400_001u64}})).invalid("rules.grace_delay_ms"),
        put("negative grace delay").json(json!({"rules": {"grace_delay_ms": -1}})).invalid("rules.grace_delay_ms"),
        put("unknown content mode").json(json!({"content": {"mode": "everything"}})).invalid("content.mode"),
        put("connector callback_url is not a URL").json(json!({"connector": {"callback_url": "not a url"}})).invalid("connector.callback_url"),
        put("connector callback_url is not http(s)").json(json!({"connector": {"callback_url": "ftp://example.com/push"}})).invalid("connector.callback_url"),
        put("apns private_key is not a PEM").json(json!({"apns": apns_section(MARKER)})).invalid("apns.private_key"),
        put("apns private_key is a PEM of nothing").json(json!({"apns": apns_section(&not_a_pem)})).invalid("apns.private_key"),
        put("apns team_id of the wrong length").json(json!({"apns": set(apns_section(MARKER), "team_id", json!("T1"))})).invalid("apns.team_id"),
        put("apns without a topic").json(json!({"apns": without(apns_section(MARKER), "topic")})).invalid("apns.topic"),
        put("fcm private key is not an RSA PEM")
            .json(json!({"fcm": {"service_account": {"project_id": "p", "client_email": "a@p.iam.gserviceaccount.com", "private_key": MARKER, "token_uri": "https://oauth2.googleapis.com/token"}}}))
            .invalid("fcm.service_account.private_key"),
        put("vapid private key is not 32 bytes").json(json!({"webpush": {"subject": "mailto:ops@example.com", "vapid_private_key": MARKER}})).invalid("webpush.vapid_private_key"),
        put("webpush subject is not a contact").json(json!({"webpush": {"subject": "ops"}})).invalid("webpush.subject"),
        put("webhook url is not a URL").json(webhook("nope", "whsec_abc")).invalid("webhooks[0].url"),
        put("webhook secret is not whsec_").json(webhook("https://hooks.example.com/h", MARKER)).invalid("webhooks[0].secrets[0]"),
        put("a masked secret for an app with no stored secret")
            .json(json!({"smtp": {"host": "smtp.example.com", "port": 587, "from": "push@example.com", "password": "********"}}))
            .invalid("smtp.password"),
        put("a masked apns key for an app with no stored key").json(json!({"apns": apns_section("********")})).invalid("apns.private_key"),
        bad("app id with a space", Method::PUT, "/v1/apps/app%201", Cred::Key).json(json!({})).invalid("app_id"),
        bad("app id with a slash", Method::PUT, "/v1/apps/a%2Fb", Cred::Key).json(json!({})).invalid("app_id"),
        bad("app id of 200 characters", Method::PUT, format!("/v1/apps/{}", "a".repeat(200)), Cred::Key).json(json!({})).invalid("app_id"),
        bad("get an app that does not exist", Method::GET, "/v1/apps/app1", Cred::Key).not_found(),
        bad("delete an app that does not exist", Method::DELETE, "/v1/apps/app1", Cred::Key).not_found(),
    ];
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed.
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        Vec::<Value>::new()
    );
    let (status, _) = hub.get("/v1/apps/app1", &hub.key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And a good document is accepted where the bad ones were refused.
    let (status, body) = hub
        .put(
            "/v1/apps/app1",
            &hub.key,
            json!({"name": "App one", "rules": {"filter": ["notice.typing_started"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
