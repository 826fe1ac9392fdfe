//! The OpenAPI document (SPEC §2: "Every endpoint is in the OpenAPI document served at
//! `/openapi.json`") and the operations endpoints (§2.7): the document and the router agree in
//! both directions, it names the three credentials, and `/healthz`, `/readyz`, `/metrics` answer.

use std::collections::BTreeSet;

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every route the router serves, with its methods.
const ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
    ("/v1/events", &["post"]),
    ("/v1/apps", &["get"]),
    ("/v1/apps/{app_id}", &["put", "get", "delete"]),
    ("/v1/conversations/{conversation_id}", &["get"]),
    ("/v1/conversations/{conversation_id}/events", &["get"]),
    (
        "/v1/conversations/{conversation_id}/participants/{user_id}",
        &["put", "delete"],
    ),
    ("/v1/users/{user_id}/devices", &["get", "delete"]),
    ("/v1/users/{user_id}/devices/{device_id}", &["delete"]),
    ("/v1/users/{user_id}/tokens", &["post"]),
    ("/v1/users/{user_id}/presence", &["get"]),
    ("/v1/users/{user_id}/unread", &["get"]),
    ("/v1/keys", &["get", "post"]),
    ("/v1/keys/{key_id}", &["delete"]),
    ("/v1/client-auth", &["get", "put"]),
    ("/v1/admin/tenants", &["get", "post"]),
    ("/v1/admin/tenants/{tenant_id}/keys", &["post"]),
    ("/v1/admin/tenants/{tenant_id}/keys/{key_id}", &["delete"]),
    ("/v1/me/devices", &["post", "get", "delete"]),
    ("/v1/me/devices/{device_id}", &["delete"]),
    ("/v1/me/unread", &["get"]),
    ("/v1/me/conversations/{conversation_id}/events", &["get"]),
    ("/v1/me/conversations/{conversation_id}/read", &["post"]),
    ("/v1/live", &["get"]),
    ("/_matrix/push/v1/notify", &["post"]),
    ("/cometd", &["post", "get"]),
];

async fn document(hub: &TestHub) -> Value {
    let response = hub
        .http
        .get(hub.url("/openapi.json"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type}"
    );
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).expect("/openapi.json is valid JSON")
}

/// Every (path, method) the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item is an object")
                .keys()
                .filter(|k| HTTP_METHODS.contains(&k.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect()
}

/// `/v1/apps/{app_id}` → `/v1/apps/x`.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_document_is_openapi_3_and_lists_every_route_with_its_methods() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "openapi {version}");
    assert!(doc["info"]["title"].is_string(), "info.title");
    let described = operations(&doc);
    let mut missing = vec![];
    for (path, methods) in ROUTES {
        for method in *methods {
            if !described.contains(&(path.to_string(), method.to_string())) {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes the router serves but the document omits:\n  {}\ndocumented: {described:?}",
        missing.join("\n  ")
    );
    for (path, method) in &described {
        assert!(
            doc["paths"][path][method]["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} documents its responses"
        );
    }
}

/// The parameters of an operation (its own and its path item's) as (name, in).
fn parameters(doc: &Value, path: &str, method: &str) -> BTreeSet<(String, String)> {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            doc["paths"][path]["parameters"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_string(),
                p["in"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn path_and_query_parameters_are_declared_where_the_server_reads_them() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let mut wrong = vec![];
    // Path parameters: exactly the path's placeholders.
    for (path, method) in operations(&doc) {
        let declared: BTreeSet<String> = parameters(&doc, &path, &method)
            .into_iter()
            .filter(|(_, at)| at == "path")
            .map(|(name, _)| name)
            .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        if declared != in_path {
            wrong.push(format!(
                "{} {path}: path parameters {declared:?}, but the path has {in_path:?}",
                method.to_uppercase()
            ));
        }
    }
    // Query parameters the handlers read.
    let query: &[(&str, &str, &[&str])] = &[
        (
            "/v1/conversations/{conversation_id}/events",
            "get",
            &["after", "limit"],
        ),
        (
            "/v1/me/conversations/{conversation_id}/events",
            "get",
            &["after", "limit"],
        ),
        ("/v1/me/devices", "delete", &["token"]),
        ("/v1/apps/{app_id}", "put", &["rotate_vapid_keys"]),
        ("/v1/live", "get", &["state", "token"]),
    ];
    for (path, method, names) in query {
        let declared = parameters(&doc, path, method);
        for name in *names {
            if !declared.contains(&(name.to_string(), "query".to_string())) {
                wrong.push(format!(
                    "{} {path}: `{name}` is not declared as a query parameter (declared: {declared:?})",
                    method.to_uppercase()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "parameters documented wrongly:\n  {}",
        wrong.join("\n  ")
    );
}

#[tokio::test]
async fn every_documented_operation_is_served_by_the_router() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    // What the router's own "no such route" and "wrong method" look like.
    let (status, unknown) = hub.call(Method::GET, "/v1/no-such-route", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    let route_not_found = unknown["detail"].clone();
    assert!(route_not_found.is_string(), "{unknown}");
    let (status, wrong) = hub.call(Method::DELETE, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{wrong}");

    let described = operations(&doc);
    assert!(described.len() >= 35, "{described:?}");
    let mut unserved = vec![];
    for (path, method) in &described {
        let url = fill(path);
        let http_method =
            Method::from_bytes(method.to_uppercase().as_bytes()).expect("an HTTP method");
        let (status, body) = hub.call(http_method, &url, None, None).await;
        let routing_404 = status == StatusCode::NOT_FOUND && body["detail"] == route_not_found;
        if routing_404 || status == StatusCode::METHOD_NOT_ALLOWED {
            unserved.push(format!(
                "{} {path} (as {url}): {status} {body}",
                method.to_uppercase()
            ));
        }
    }
    assert!(
        unserved.is_empty(),
        "documented but not served:\n  {}",
        unserved.join("\n  ")
    );
}

#[tokio::test]
async fn the_document_declares_the_three_credentials_and_each_operation_names_its_own() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["server_key", "client_token", "operator_key"] {
        assert_eq!(schemes[name]["type"], "http", "{name}: {schemes}");
        assert_eq!(
            schemes[name]["scheme"]
                .as_str()
                .map(str::to_lowercase)
                .as_deref(),
            Some("bearer"),
            "{name}: {schemes}"
        );
    }
    let mut wrong = vec![];
    for (path, method) in operations(&doc) {
        let expected = if path.starts_with("/v1/me/") || path == "/v1/live" {
            Some("client_token")
        } else if path.starts_with("/v1/admin/") {
            Some("operator_key")
        } else if path.starts_with("/v1/") {
            Some("server_key")
        } else {
            None
        };
        let named: Vec<String> = doc["paths"][&path][&method]["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|requirement| requirement.as_object())
            .flat_map(|requirement| requirement.keys().cloned())
            .collect();
        let ok = match expected {
            Some(scheme) => named == [scheme],
            None => named.is_empty(),
        };
        if !ok {
            wrong.push(format!(
                "{} {path}: expected {expected:?}, names {named:?}",
                method.to_uppercase()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "operations naming the wrong credential:\n  {}",
        wrong.join("\n  ")
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let hub = TestHub::start().await;
    let (status, health) = hub.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    let (status, ready) = hub.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");

    hub.events(json!({
        "event_id": "e1", "conversation_id": "c1", "type": "message.created", "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "agent-1", "role": "agent"}, "text": "hello"
    }))
    .await;
    let response = hub
        .http
        .get(hub.url("/metrics"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/plain"),
        "content-type {content_type}"
    );
    let text = response.text().await.expect("body");
    let accepted = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with("herald_events_accepted_total"))
        .unwrap_or_else(|| panic!("no herald_events_accepted_total sample in:\n{text}"));
    let value: f64 = accepted
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a sample value: {accepted}"));
    assert!(value >= 1.0, "{accepted}");
    assert!(
        text.contains("# TYPE herald_events_accepted_total counter"),
        "Prometheus text format:\n{text}"
    );
    // The store's writer reports its queue wait, commit time and group size: an operator's
    // first look when acknowledgements slow down.
    for histogram in [
        "herald_store_write_wait_seconds",
        "herald_store_commit_seconds",
        "herald_store_commit_jobs",
    ] {
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "no {histogram} in:\n{text}"
        );
    }
    assert!(
        text.contains("herald_store_commit_jobs_bucket{le=\"512\"}"),
        "jobs per group are counted in buckets up to the group bound:\n{text}"
    );
    // Every family explains itself to whoever reads /metrics.
    for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split(' ').next().unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no # HELP line:\n{text}"
        );
    }
    // Requests are counted and timed by route template and status.
    assert!(
        text.contains(
            r#"herald_http_requests_total{method="POST",route="/v1/events",status="200"}"#
        ),
        "HTTP request metrics:\n{text}"
    );
    assert!(
        text.contains(
            r#"herald_http_request_seconds_count{method="GET",route="/readyz",status="200"}"#
        ),
        "HTTP request durations:\n{text}"
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_callers_own_is_echoed() {
    let hub = TestHub::start().await;
    let first = hub.http.get(hub.url("/healthz")).send().await.unwrap();
    let generated = first.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let second = hub.http.get(hub.url("/healthz")).send().await.unwrap();
    assert_ne!(second.headers()["x-request-id"], generated.as_str());
    let own = hub
        .http
        .get(hub.url("/v1/nowhere"))
        .header("x-request-id", "req-from-the-load-balancer")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::NOT_FOUND);
    assert_eq!(own.headers()["x-request-id"], "req-from-the-load-balancer");
}

#[tokio::test]
async fn adding_a_participant_documents_who_added_them() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let by = &doc["components"]["schemas"]["PutParticipant"]["properties"]["by"];
    assert!(
        by["type"] == "string" || by["type"] == json!(["string", "null"]),
        "{by:#}"
    );
    assert!(
        by["description"]
            .as_str()
            .is_some_and(|d| d.contains("invitation")),
        "{by:#}"
    );
}
