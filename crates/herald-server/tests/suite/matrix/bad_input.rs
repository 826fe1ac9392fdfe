//! Bad input gets a Matrix error and sends nothing; other paths and methods are
//! `M_UNRECOGNIZED`.

use super::*;

#[tokio::test]
async fn bad_bodies_get_matrix_errors_and_nothing_is_sent() {
    let g = Gateway::start().await;
    let (pushkey, _) = ios_pushkey(30);
    let (status, body) = g
        .hub
        .call_raw(
            Method::POST,
            "/_matrix/push/v1/notify",
            None,
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("M_NOT_JSON"))
    );
    for notification in [
        json!({"devices": []}),
        json!({"event_id": 7, "devices": [{"app_id": IOS, "pushkey": pushkey}]}),
        json!({"counts": {"unread": "many"}, "devices": [{"app_id": IOS, "pushkey": pushkey}]}),
        json!({"devices": [{"app_id": IOS}]}),
        json!({"devices": "all"}),
    ] {
        let (status, body) = g.notify(notification.clone()).await;
        assert_eq!(status, 400, "{notification}");
        assert_eq!(body["errcode"], "M_BAD_JSON", "{notification}");
    }
    let (status, body) = g
        .hub
        .call(
            Method::POST,
            "/_matrix/push/v1/notify",
            None,
            Some(json!({"note": 1})),
        )
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("M_BAD_JSON"))
    );
    let huge = json!({"notification": {"devices": [{"app_id": IOS, "pushkey": pushkey}], "content": {"body": "x".repeat(600 * 1024)}}});
    let (status, body) = g
        .hub
        .call(Method::POST, "/_matrix/push/v1/notify", None, Some(huge))
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("M_TOO_LARGE"))
    );
    assert!(g.apns.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_unrecognized() {
    let g = Gateway::start().await;
    let (status, body) = g
        .hub
        .call(Method::GET, "/_matrix/push/v1/notify", None, None)
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("M_UNRECOGNIZED"))
    );
    for path in [
        "/_matrix/push/v1/other",
        "/_matrix/push/v2/notify",
        "/_matrix",
    ] {
        let (status, body) = g.hub.call(Method::POST, path, None, Some(json!({}))).await;
        assert_eq!(
            (status, body["errcode"].as_str()),
            (StatusCode::NOT_FOUND, Some("M_UNRECOGNIZED")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_app_cannot_map_a_matrix_app_id_to_a_channel_it_has_no_credentials_for() {
    let g = Gateway::start().await;
    let (status, body) = g
        .hub
        .put(
            "/v1/apps/bare",
            &g.hub.key,
            json!({"matrix": {"app_ids": {"org.example.app": {"channel": "apns"}}}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        "matrix.app_ids.org.example.app.channel"
    );
}
