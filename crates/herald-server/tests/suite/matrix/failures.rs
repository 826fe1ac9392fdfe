//! Dead pushkeys, unknown and ambiguous app ids, provider 5xx within the request's budget.

use herald_testkit::fake_apns::Reply;
use herald_testkit::fake_fcm::Reply as FcmReply;
use time::OffsetDateTime;

use super::*;

#[tokio::test]
async fn exactly_the_dead_pushkeys_come_back_rejected_whatever_the_provider() {
    let g = Gateway::start().await;
    let peer = PushService::start().await;
    let (alive, alive_token) = ios_pushkey(10);
    let (gone, gone_token) = ios_pushkey(11);
    let (bad, bad_token) = ios_pushkey(12);
    g.apns.script(
        &gone_token,
        vec![Reply::unregistered(OffsetDateTime::now_utc())],
    );
    g.apns.script(&bad_token, vec![Reply::bad_device_token()]);
    g.fcm.script("fcm-dead", vec![FcmReply::Unregistered]);
    let (web_alive, web_sub) = g.web_device(&peer, json!({})).await;
    let (web_gone, web_gone_sub) = g.web_device(&peer, json!({})).await;
    peer.expire(&web_gone_sub).await;
    let (status, body) = g
        .notify(message(json!([
            {"app_id": IOS, "pushkey": alive}, {"app_id": IOS, "pushkey": gone},
            {"app_id": IOS, "pushkey": bad}, {"app_id": ANDROID, "pushkey": "fcm-alive"},
            {"app_id": ANDROID, "pushkey": "fcm-dead"}, web_alive, web_gone.clone(),
        ])))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut got = rejected(&body);
    got.sort_unstable();
    let mut want = vec![
        gone.as_str(),
        bad.as_str(),
        "fcm-dead",
        web_gone["pushkey"].as_str().unwrap(),
    ];
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(g.apns.requests_for(&alive_token).len(), 1);
    assert_eq!(g.fcm.messages_for("fcm-alive").len(), 1);
    assert_eq!(peer.wait_for(&web_sub, 1).await.len(), 1);
}

#[tokio::test]
async fn an_unknown_app_id_or_an_unusable_pushkey_is_rejected_and_nothing_is_sent() {
    let g = Gateway::start().await;
    let (status, body) = g
        .notify(message(json!([
            {"app_id": "com.example.unknown", "pushkey": "k1"},
            {"app_id": IOS, "pushkey": "not base64 !"},
            {"app_id": IOS, "pushkey": "a2V5", "data": {"default_payload": null}},
            {"app_id": WEB, "pushkey": "p256dh-without-endpoint"},
            {"app_id": IOS, "pushkey": "A".repeat(600)},
        ])))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rejected(&body).len(), 5, "{body}");
    assert!(g.apns.requests().is_empty());
    assert!(g.fcm.messages().is_empty());
}

#[tokio::test]
async fn an_app_id_two_apps_claim_is_ambiguous_and_rejected_as_sygnal_does() {
    let g = Gateway::start().await;
    let (public, private) = generate_vapid_keys();
    let mut twin = element(&g.apns, &g.fcm, &public, &private);
    twin["matrix"] = json!({"app_ids": {IOS: {"channel": "apns"}}});
    let (status, body) = g.hub.put("/v1/apps/element-twin", &g.hub.key, twin).await;
    assert_eq!(status, 201, "{body}");
    let (pushkey, _) = ios_pushkey(13);
    let (status, body) = g
        .notify(message(json!([{"app_id": IOS, "pushkey": pushkey.clone()},
        {"app_id": ANDROID, "pushkey": "fcm-1"}])))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rejected(&body), vec![pushkey.as_str()]);
    assert!(g.apns.requests().is_empty());
    assert_eq!(
        g.fcm.messages_for("fcm-1").len(),
        1,
        "the other app id still works"
    );
}

#[tokio::test]
async fn a_provider_5xx_is_retried_within_the_request_and_never_called_a_rejection() {
    let g = Gateway::with_budget(1_500).await;
    let (flaky, flaky_token) = ios_pushkey(20);
    g.apns.script(
        &flaky_token,
        vec![Reply::internal_server_error(), Reply::Ok],
    );
    g.fcm.script(
        "fcm-flaky",
        vec![
            FcmReply::Unavailable {
                retry_after_s: None,
            },
            FcmReply::Ok,
        ],
    );
    let (status, body) = g
        .notify(message(
            json!([{"app_id": IOS, "pushkey": flaky}, {"app_id": ANDROID, "pushkey": "fcm-flaky"}]),
        ))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"rejected": []})));
    assert_eq!(g.apns.requests_for(&flaky_token).len(), 2, "one retry");
    assert_eq!(g.fcm.messages_for("fcm-flaky").len(), 2);

    let (down, down_token) = ios_pushkey(21);
    g.apns.set_default(Reply::service_unavailable());
    let (status, body) = g
        .notify(message(json!([{"app_id": IOS, "pushkey": down}])))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN");
    assert!(
        body.get("rejected").is_none(),
        "a provider outage never removes pushers"
    );
    let tries = g.apns.requests_for(&down_token).len();
    assert!(tries >= 2, "retried while the budget lasted: {tries}");

    // The homeserver retries later; the provider is back, and the push goes once.
    g.apns.set_default(Reply::Ok);
    let (status, body) = g
        .notify(message(
            json!([{"app_id": IOS, "pushkey": ios_pushkey(21).0}]),
        ))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"rejected": []})));
}
