//! Participants, reads, transcript pages.

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::table::*;
use super::*;

#[tokio::test]
async fn bad_participant_read_and_page_requests_are_refused_and_change_nothing() {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    // c-r: alice joins (1), an agent writes (2).
    let (status, body) = hub
        .put(
            "/v1/conversations/c-r/participants/alice",
            &hub.key,
            json!({"role": "visitor", "name": "Alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.events(message("setup-1", "c-r", "hello alice")).await;
    let (_, before) = hub.get("/v1/conversations/c-r", &hub.key).await;
    assert_eq!(before["last_position"], 2, "{before}");

    let participant = |what: &str, user: &str| {
        bad(
            what,
            Method::PUT,
            format!("/v1/conversations/c-r/participants/{user}"),
            Cred::Key,
        )
    };
    let read = |what: &str| {
        bad(
            what,
            Method::POST,
            "/v1/me/conversations/c-r/read",
            Cred::Token,
        )
    };
    let rows = vec![
        participant("unknown role", "bob")
            .json(json!({"role": "boss"}))
            .invalid("role"),
        participant("role is a number", "bob")
            .json(json!({"role": 3}))
            .invalid("role"),
        participant("missing role", "bob")
            .json(json!({"name": "Bob"}))
            .invalid("role"),
        participant("unknown field", "bob")
            .json(json!({"role": "agent", "colour": "red"}))
            .invalid("colour"),
        participant("secondary is not a boolean", "bob")
            .json(json!({"role": "agent", "secondary": "yes"}))
            .invalid("secondary"),
        participant("name over 256 bytes", "bob")
            .json(json!({"role": "agent", "name": "n".repeat(300)}))
            .invalid("name"),
        participant("malformed JSON", "bob")
            .raw("application/json", "{\"role\":")
            .malformed(),
        participant("text/plain content type", "bob")
            .raw("text/plain", r#"{"role":"agent"}"#)
            .unsupported(),
        participant("user id with a space", "b%20ob")
            .json(json!({"role": "agent"}))
            .invalid("user_id"),
        participant("user id of 200 characters", &"u".repeat(200))
            .json(json!({"role": "agent"}))
            .invalid("user_id"),
        bad(
            "conversation id with a space",
            Method::PUT,
            "/v1/conversations/c%20r/participants/bob",
            Cred::Key,
        )
        .json(json!({"role": "agent"}))
        .invalid("conversation_id"),
        bad(
            "remove someone who is not a participant",
            Method::DELETE,
            "/v1/conversations/c-r/participants/bob",
            Cred::Key,
        )
        .not_found(),
        read("negative position")
            .json(json!({"position": -1}))
            .invalid("position"),
        read("position as a string")
            .json(json!({"position": "1"}))
            .invalid("position"),
        read("fractional position")
            .json(json!({"position": 1.5}))
            .invalid("position"),
        read("missing position").json(json!({})).invalid("position"),
        read("unknown field")
            .json(json!({"position": 1, "colour": "red"}))
            .invalid("colour"),
        read("position beyond the transcript")
            .json(json!({"position": 99}))
            .invalid("position"),
        read("malformed JSON")
            .raw("application/json", "{\"position\":")
            .malformed(),
        read("text/plain content type")
            .raw("text/plain", r#"{"position":1}"#)
            .unsupported(),
        bad(
            "read in a conversation I am not in",
            Method::POST,
            "/v1/me/conversations/c-other/read",
            Cred::Token,
        )
        .json(json!({"position": 1}))
        .not_found(),
        bad(
            "server page with after=abc",
            Method::GET,
            "/v1/conversations/c-r/events?after=abc",
            Cred::Key,
        )
        .malformed(),
        bad(
            "server page with a negative after",
            Method::GET,
            "/v1/conversations/c-r/events?after=-1",
            Cred::Key,
        )
        .malformed(),
        bad(
            "server page with limit=many",
            Method::GET,
            "/v1/conversations/c-r/events?limit=many",
            Cred::Key,
        )
        .malformed(),
        bad(
            "client page with after=abc",
            Method::GET,
            "/v1/me/conversations/c-r/events?after=abc",
            Cred::Token,
        )
        .malformed(),
        bad(
            "conversation that does not exist",
            Method::GET,
            "/v1/conversations/c-none",
            Cred::Key,
        )
        .not_found(),
        bad(
            "client page of a conversation I am not in",
            Method::GET,
            "/v1/me/conversations/c-none/events",
            Cred::Token,
        )
        .not_found(),
        bad(
            "mint a token with ttl_s 0",
            Method::POST,
            "/v1/users/alice/tokens",
            Cred::Key,
        )
        .json(json!({"ttl_s": 0}))
        .invalid("ttl_s"),
        bad(
            "mint a token with an unknown field",
            Method::POST,
            "/v1/users/alice/tokens",
            Cred::Key,
        )
        .json(json!({"ttl": 60}))
        .invalid("ttl"),
        bad(
            "client-auth secret too short",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
        )
        .json(json!({"hs256_secret": "short"}))
        .invalid("hs256_secret"),
        bad(
            "client-auth public key that is not a PEM",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
        )
        .json(json!({"public_key_pem": MARKER, "public_key_alg": "ES256"}))
        .invalid("public_key_pem"),
        bad(
            "client-auth with an unknown algorithm",
            Method::PUT,
            "/v1/client-auth",
            Cred::Key,
        )
        .json(json!({"public_key_pem": "x", "public_key_alg": "HS512"}))
        .invalid("public_key_alg"),
        bad(
            "revoke a key that does not exist",
            Method::DELETE,
            "/v1/keys/key_nope",
            Cred::Key,
        )
        .not_found(),
        bad(
            "create a key with an unknown field",
            Method::POST,
            "/v1/keys",
            Cred::Key,
        )
        .json(json!({"label": "x"}))
        .invalid("label"),
    ];
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed: the same conversation, the same read state, no new participant.
    let (_, after) = hub.get("/v1/conversations/c-r", &hub.key).await;
    assert_eq!(after, before);
    assert_eq!(last_position(&hub, "c-other").await, None);
    let (_, unread) = hub.get("/v1/me/unread", &creds.token).await;
    assert_eq!(unread["total"], 1, "{unread}");
    assert_eq!(json_list(&hub, "/v1/keys", &hub.key).await.len(), 1);
    let (_, client_auth) = hub.get("/v1/client-auth", &hub.key).await;
    assert_eq!(client_auth, json!({}), "client-auth settings unchanged");
    // The good versions work.
    let (status, body) = hub
        .post(
            "/v1/me/conversations/c-r/read",
            &creds.token,
            json!({"position": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unread"], 0, "{body}");
}
