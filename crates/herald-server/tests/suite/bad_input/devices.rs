//! POST /v1/me/devices, DELETE /v1/me/devices…

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::table::*;
use super::*;

#[tokio::test]
async fn bad_device_registrations_are_refused_with_the_field_named_and_nothing_is_registered() {
    let hub = TestHub::start().await;
    let creds = Creds::of(&hub).await;
    let (status, body) = hub
        .put("/v1/apps/app1", &hub.key, json!({"name": "App one"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let register = |what: &str| bad(what, Method::POST, "/v1/me/devices", Cred::Token);
    let apns = apns_device();
    let webpush = webpush_device();
    let keys = |p256dh: &str, auth: &str| json!({"endpoint": "https://push.example.net/sub/1", "keys": {"p256dh": p256dh, "auth": auth}});
    let rows = vec![
        register("malformed JSON")
            .raw("application/json", "{\"app_id\": ")
            .malformed(),
        register("10,000-deep nested arrays")
            .raw("application/json", nested(10_000, "[", "]"))
            .rejected(),
        register("10,000-deep nested objects")
            .raw("application/json", nested(10_000, "{\"app_id\":", "}"))
            .rejected(),
        register("text/plain content type")
            .raw("text/plain", apns.to_string())
            .unsupported(),
        register("a JSON number").json(json!(42)).invalid(""),
        register("unknown field")
            .json(set(apns.clone(), "colour", json!("red")))
            .invalid("colour"),
        register("apns token is not hex")
            .json(set(apns.clone(), "token", json!("not-hex-at-all!")))
            .invalid("token"),
        register("apns token of odd length")
            .json(set(apns.clone(), "token", json!("abc")))
            .invalid("token"),
        register("apns token empty")
            .json(set(apns.clone(), "token", json!("")))
            .invalid("token"),
        register("apns without a token")
            .json(without(apns.clone(), "token"))
            .invalid("token"),
        register("apns with a subscription as well as a token")
            .json(set(apns.clone(), "subscription", keys(P256DH, AUTH)))
            .invalid("token"),
        register("webpush without a subscription")
            .json(without(webpush.clone(), "subscription"))
            .invalid("subscription"),
        register("webpush with a token instead of a subscription")
            .json(set(
                without(webpush.clone(), "subscription"),
                "token",
                json!("abcdef"),
            ))
            .invalid("subscription"),
        register("webpush with both a token and a subscription")
            .json(set(webpush.clone(), "token", json!("abcdef")))
            .invalid("subscription"),
        register("p256dh of the wrong length")
            .json(set(
                webpush.clone(),
                "subscription",
                keys("BCVxsr7N_eNgVRqvHtD0zQ", AUTH),
            ))
            .invalid("subscription.keys.p256dh"),
        register("p256dh not base64url")
            .json(set(
                webpush.clone(),
                "subscription",
                keys("!!!not base64!!!", AUTH),
            ))
            .invalid("subscription.keys.p256dh"),
        register("auth secret of the wrong length")
            .json(set(
                webpush.clone(),
                "subscription",
                keys(P256DH, "c2hvcnQ"),
            ))
            .invalid("subscription.keys.auth"),
        register("subscription endpoint is not a URL")
            .json(set(
                webpush.clone(),
                "subscription",
                json!({"endpoint": "not a url", "keys": {"p256dh": P256DH, "auth": AUTH}}),
            ))
            .invalid("subscription.endpoint"),
        register("subscription keys missing")
            .json(set(
                webpush.clone(),
                "subscription",
                json!({"endpoint": "https://push.example.net/x"}),
            ))
            .invalid("subscription.keys"),
        register("unknown app_id")
            .json(set(apns.clone(), "app_id", json!("no-such-app")))
            .invalid("app_id"),
        register("app_id with a space")
            .json(set(apns.clone(), "app_id", json!("app 1")))
            .invalid("app_id"),
        register("unknown channel")
            .json(set(apns.clone(), "channel", json!("pigeon")))
            .invalid("channel"),
        register("unknown platform")
            .json(set(apns.clone(), "platform", json!("toaster")))
            .invalid("platform"),
        register("missing platform")
            .json(without(apns.clone(), "platform"))
            .invalid("platform"),
        register("locale with a space")
            .json(set(apns.clone(), "locale", json!("en GB")))
            .invalid("locale"),
        register("installation_id of 300 characters")
            .json(set(apns.clone(), "installation_id", json!("i".repeat(300))))
            .invalid("installation_id"),
        register("connector token over 4 KiB")
            .json(set(
                set(apns.clone(), "channel", json!("connector")),
                "token",
                json!("t".repeat(4097)),
            ))
            .invalid("token"),
        bad(
            "deregister by an empty token",
            Method::DELETE,
            "/v1/me/devices?token=",
            Cred::Token,
        )
        .invalid("token"),
        bad(
            "deregister without a token",
            Method::DELETE,
            "/v1/me/devices",
            Cred::Token,
        )
        .malformed(),
        bad(
            "deregister a device id with a space",
            Method::DELETE,
            "/v1/me/devices/dev%201",
            Cred::Token,
        )
        .invalid("device_id"),
        bad(
            "deregister a device that does not exist",
            Method::DELETE,
            "/v1/me/devices/dev_nope",
            Cred::Token,
        )
        .not_found(),
        bad(
            "server deregister of a device id with a slash",
            Method::DELETE,
            "/v1/users/alice/devices/a%2Fb",
            Cred::Key,
        )
        .invalid("device_id"),
        bad(
            "devices of a user id with a space",
            Method::GET,
            "/v1/users/al%20ice/devices",
            Cred::Key,
        )
        .invalid("user_id"),
    ];
    refuse_all(&hub, &creds, rows).await;

    // Nothing changed.
    assert_eq!(
        json_list(&hub, "/v1/users/alice/devices", &hub.key).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        json_list(&hub, "/v1/me/devices", &creds.token).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        json_list(&hub, "/v1/apps", &hub.key).await,
        vec![json!("app1")]
    );
    // The bodies the rows were made from are good: each row failed for its own reason.
    let (status, body) = hub.post("/v1/me/devices", &creds.token, apns).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = hub.post("/v1/me/devices", &creds.token, webpush).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
