//! The HTTP surface. One file per resource; `router` assembles them with the OpenAPI document
//! so a route cannot exist without its documentation.

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::IntoMakeService;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{
    admin, apps, cometd, conversations, events, keys, matrix, me, notifications, ops, users,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald", description = "Conversation-aware push notification hub"),
    modifiers(&Security),
    tags((name = "events"), (name = "conversations"), (name = "apps"), (name = "users"), (name = "me"), (name = "keys"), (name = "notifications"), (name = "admin"), (name = "ops"), (name = "matrix"), (name = "cometd"))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description.to_string()))
                    .build(),
            )
        };
        components.add_security_scheme("server_key", bearer("A tenant server key (`hk_…`)"));
        components.add_security_scheme(
            "client_token",
            bearer("A client token (JWT) acting as one user"),
        );
        components.add_security_scheme(
            "operator_key",
            bearer("The operator key from the server configuration"),
        );
    }
}

/// Every route, as the service `axum::serve` makes one per connection from. Each connection
/// shares the one route table (an `Arc`): served as a plain `Router`, axum rebuilds the table
/// for every new connection (`with_state` over every route, ~40 KB here) and keeps it for the
/// connection's life — the largest cost of an idle CometD long-poll, whose connection lives on.
/// Turned into routes once (`with_state`), no handler is rebuilt per request either.
pub fn router(state: AppState) -> IntoMakeService<axum::Router> {
    routes(state).with_state::<()>(()).into_make_service()
}

fn routes(state: AppState) -> axum::Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(events::post_events))
        .routes(routes!(conversations::get_conversation))
        .routes(routes!(conversations::list_events))
        .routes(routes!(
            conversations::put_participant,
            conversations::delete_participant
        ))
        .routes(routes!(apps::list_apps))
        .routes(routes!(apps::put_app, apps::get_app, apps::delete_app))
        .routes(routes!(apps::endpoints))
        .routes(routes!(apps::reenable))
        .routes(routes!(users::list_devices, users::delete_devices))
        .routes(routes!(users::delete_device))
        .routes(routes!(users::presence))
        .routes(routes!(users::unread))
        .routes(routes!(users::mint_token))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(keys::get_client_auth, keys::put_client_auth))
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::create_key))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(
            me::register_device,
            me::list_devices,
            me::delete_device_by_token
        ))
        .routes(routes!(me::delete_device))
        .routes(routes!(me::unread))
        .routes(routes!(me::list_events))
        .routes(routes!(me::mark_read))
        .routes(routes!(me::live))
        .routes(routes!(me::webpush_key))
        .routes(routes!(me::acknowledge_health_check))
        .routes(routes!(notifications::send))
        .routes(routes!(
            notifications::get_notification,
            notifications::cancel
        ))
        .routes(routes!(notifications::user_notifications))
        .routes(routes!(
            notifications::put_preferences,
            notifications::get_preferences
        ))
        .with_state(state.clone())
        .split_for_parts();
    let (matrix, matrix_doc) = matrix_routes(&state);
    let (cometd, cometd_doc) = cometd_routes(&state);
    let mut openapi = openapi;
    openapi.merge(matrix_doc);
    openapi.merge(cometd_doc);
    // Serialised once and shared: axum clones every route's handler for each new connection,
    // and a document held as a `Value` was deep-copied each time (most of the cost of opening
    // a live session).
    let openapi =
        Bytes::from(serde_json::to_vec(&openapi).expect("the OpenAPI document serialises"));
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], openapi)
            }),
        )
        .merge(matrix)
        .merge(cometd)
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("handler panicked", "panic").into_response()))
        .layer(axum::middleware::from_fn(observe))
        // Spans carry the path only: query strings can hold client tokens (`/v1/live?token=`).
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("http", http.method = %req.method(), http.path = %req.uri().path(), http.request_id = %request_id)
        }))
        // Outermost: every request gets an id (a caller's own `x-request-id` is kept), every
        // span and log line inside carries it, and the response echoes it.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The Matrix push gateway, with Matrix errors for its own paths: any other path under
/// `/_matrix` is `M_UNRECOGNIZED` 404, another method on `/notify` `M_UNRECOGNIZED` 405.
fn matrix_routes(state: &AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let config = &state.config.matrix;
    let route_state = matrix::RouteState {
        gateway: matrix::gateway(state.runtime.clone(), config),
        limits: matrix::Limits {
            max_devices: config.max_devices,
            max_body_bytes: config.max_body_bytes,
        },
    };
    let (router, doc) = OpenApiRouter::new()
        .routes(routes!(matrix::notify))
        .split_for_parts();
    let router = router
        .route("/_matrix", axum::routing::any(matrix::unrecognized))
        .route("/_matrix/{*rest}", axum::routing::any(matrix::unrecognized))
        .method_not_allowed_fallback(matrix::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(route_state);
    (router, doc)
}

/// The CometD front door: Bayeux at `/cometd` (long-polling POSTs, also at `/cometd/` and the
/// suffixes the JS client appends, and the WebSocket upgrade), with its own body limit.
fn cometd_routes(state: &AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let door = cometd::door(state.clone());
    let (router, doc) = OpenApiRouter::new()
        .routes(routes!(cometd::long_poll, cometd::websocket))
        .split_for_parts();
    let router = [
        "/cometd/",
        "/cometd/handshake",
        "/cometd/connect",
        "/cometd/disconnect",
    ]
    .into_iter()
    .fold(router, |router, path| {
        router.route(path, axum::routing::post(cometd::long_poll))
    })
    .layer(DefaultBodyLimit::max(state.config.cometd.max_body_bytes))
    .with_state(door);
    (router, doc)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Counts and times every request by method, route template (never the concrete path, whose
/// ids would make a series per user) and status.
async fn observe(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("herald_http_requests_total", &labels).increment(1);
    metrics::histogram!("herald_http_request_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
