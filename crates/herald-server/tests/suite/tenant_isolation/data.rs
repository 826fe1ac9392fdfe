//! Tenant B's keys see and touch nothing of tenant A; the same ids in two tenants are independent.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn a_second_tenant_cannot_see_or_touch_the_first_tenants_data() {
    let hub = hub_with_operator().await;
    let a = populate_a(&hub).await;
    let b_key = create_tenant(&hub, "acme").await;

    // Conversations and transcripts.
    not_found(&hub, Method::GET, "/v1/conversations/conv-a", &b_key, None).await;
    not_found(
        &hub,
        Method::GET,
        "/v1/conversations/conv-a/events",
        &b_key,
        None,
    )
    .await;
    not_found(
        &hub,
        Method::DELETE,
        "/v1/conversations/conv-a/participants/alice",
        &b_key,
        None,
    )
    .await;
    // Apps.
    not_found(&hub, Method::GET, "/v1/apps/app-a", &b_key, None).await;
    not_found(&hub, Method::DELETE, "/v1/apps/app-a", &b_key, None).await;
    assert_eq!(
        ok(&hub, Method::GET, "/v1/apps", &b_key, None).await,
        json!([])
    );
    // Users and devices.
    assert_eq!(
        ok(&hub, Method::GET, "/v1/users/alice/devices", &b_key, None).await,
        json!([])
    );
    not_found(
        &hub,
        Method::DELETE,
        &format!("/v1/users/alice/devices/{}", a.device_id),
        &b_key,
        None,
    )
    .await;
    let removed = ok(
        &hub,
        Method::DELETE,
        "/v1/users/alice/devices",
        &b_key,
        None,
    )
    .await;
    assert_eq!(
        removed["removed"], 0,
        "B's sign-out-everywhere removed A's devices: {removed}"
    );
    let unread = ok(&hub, Method::GET, "/v1/users/alice/unread", &b_key, None).await;
    assert_eq!(unread, json!({"conversations": [], "total": 0}));
    // Keys: B lists only its own, and cannot revoke A's.
    let b_keys = ok(&hub, Method::GET, "/v1/keys", &b_key, None).await;
    assert_eq!(list(&b_keys).len(), 1, "{b_keys}");
    assert!(
        list(&b_keys).iter().all(|k| k["tenant_id"] == "acme"
            && !a
                .key_ids
                .contains(&k["id"].as_str().unwrap_or_default().to_string())),
        "{b_keys}"
    );
    for id in &a.key_ids {
        not_found(
            &hub,
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            &b_key,
            None,
        )
        .await;
        // Not even the operator can revoke A's key by naming it under B.
        not_found(
            &hub,
            Method::DELETE,
            &format!("/v1/admin/tenants/acme/keys/{id}"),
            OPERATOR_KEY,
            None,
        )
        .await;
    }
    // Nothing B tried changed anything of A's.
    a_is_intact(&hub, &a).await;
}

#[tokio::test]
async fn the_same_conversation_and_event_ids_in_two_tenants_are_independent() {
    let hub = hub_with_operator().await;
    let b_key = create_tenant(&hub, "acme").await;
    let a_event = message("same-id", "same-conv", "agent-1", "from A");
    let b_event = message("same-id", "same-conv", "agent-1", "from B");

    let a_result = hub.events(a_event.clone()).await;
    assert_eq!(a_result["position"], 1, "{a_result}");
    assert_eq!(a_result["duplicate"], false, "{a_result}");
    // Another body under the same ids in B: no 409, not a duplicate, its own position 1.
    let b_result = ok(
        &hub,
        Method::POST,
        "/v1/events",
        &b_key,
        Some(b_event.clone()),
    )
    .await;
    assert_eq!(b_result["position"], 1, "{b_result}");
    assert_eq!(b_result["duplicate"], false, "{b_result}");
    // Even the identical body is new in B.
    let identical = message("other-id", "same-conv", "agent-1", "identical");
    assert_eq!(hub.events(identical.clone()).await["position"], 2);
    let b_identical = ok(&hub, Method::POST, "/v1/events", &b_key, Some(identical)).await;
    assert_eq!(b_identical["position"], 2, "{b_identical}");
    assert_eq!(b_identical["duplicate"], false, "{b_identical}");
    // Repeats stay repeats within each tenant.
    assert_eq!(hub.events(a_event).await["duplicate"], true);
    assert_eq!(
        ok(&hub, Method::POST, "/v1/events", &b_key, Some(b_event)).await["duplicate"],
        true
    );

    let a_page = ok(
        &hub,
        Method::GET,
        "/v1/conversations/same-conv/events",
        &hub.key,
        None,
    )
    .await;
    let b_page = ok(
        &hub,
        Method::GET,
        "/v1/conversations/same-conv/events",
        &b_key,
        None,
    )
    .await;
    let texts = |page: &Value| {
        list(&page["events"])
            .iter()
            .map(|e| e["text"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&a_page), vec![json!("from A"), json!("identical")]);
    assert_eq!(texts(&b_page), vec![json!("from B"), json!("identical")]);
}
