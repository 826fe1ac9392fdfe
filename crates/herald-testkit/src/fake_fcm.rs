//! A fake FCM: a real HTTP server on 127.0.0.1 (HTTP/1.1 and h2c) that speaks FCM HTTP v1 and
//! Google's OAuth2 token endpoint closely enough to test a client against it (and to benchmark
//! one).
//!
//! - `POST /token` is the service account's `token_uri` ([`FakeFcm::token_uri`]): the form
//!   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…` is checked like
//!   Google does — an RS256 JWT that verifies with the configured public key, header `kid` =
//!   the key id, `iss` = the client email, `aud` = this very token URL, `scope` containing
//!   `firebase.messaging`, `iat` not in the future, `exp` after now and at most `iat + 3600` —
//!   and answered `{access_token, expires_in, token_type: "Bearer"}`, or 400 `invalid_grant`.
//!   Every request is counted ([`FakeFcm::token_fetches`]) and its assertion kept
//!   ([`FakeFcm::assertions`]); answers can be slowed ([`FakeFcm::set_token_latency`]).
//! - `POST /v1/projects/{project}/messages:send` wants a bearer access token this fake issued
//!   and that has not expired (by the fake's clock, or [`FakeFcm::expire_tokens`]) — else 401
//!   `UNAUTHENTICATED` without an `FcmError`, as Google answers — and a known project (else
//!   404 `NOT_FOUND`). The message must have exactly one target, string `data` values and no
//!   reserved keys, a valid `android.priority` and `ttl`, `apns-priority` 5 for data-only
//!   messages to iOS, and at most 4096 bytes without its target; otherwise 400
//!   `INVALID_ARGUMENT` (kept as a [`Rejection`]). It answers `{"name":
//!   "projects/{p}/messages/{id}"}`.
//! - Answers are scriptable per device token ([`FakeFcm::script`], [`Reply`]): UNREGISTERED,
//!   INVALID_ARGUMENT about the token or about something else, SENDER_ID_MISMATCH,
//!   QUOTA_EXCEEDED and bare 429 `RESOURCE_EXHAUSTED` with `Retry-After`, 500, 503,
//!   THIRD_PARTY_AUTH_ERROR and a bare 401. Scripted answers come after the access-token check.
//! - Every message that passed the checks is recorded ([`FcmMessage`]) with the answer it got.
//!
//! ```ignore
//! let fcm = FakeFcm::start().await;
//! let app = json!({"fcm": {"service_account": fcm.service_account(), "base_url": fcm.url()}});
//! fcm.script("tok-1", vec![Reply::Unregistered]);
//! let sent = fcm.wait_for(1).await;
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use herald_engine::clock::{Clock, SystemClock};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::PATIENCE;
use crate::keys::RSA_PRIVATE_PEM;

/// The project the fake serves unless told otherwise.
pub const PROJECT_ID: &str = "herald-test";
/// The service account the fake expects unless told otherwise.
pub const CLIENT_EMAIL: &str = "herald@herald-test.iam.gserviceaccount.com";
/// The key id of [`RSA_PRIVATE_PEM`] in the fake's service account.
pub const PRIVATE_KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
/// The public half of [`RSA_PRIVATE_PEM`].
pub const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmbcbjX/ontyOTyKjKG8g\neK2JcKaBTS/UigWgmmf6UAJhDUh18bnseNBhcnYWx9ZBIF4WTKjU8pM2mCQ9bZc8\nQs9MWcTsXHsm5CDKwflpnKqDKS3HP9tc7bMbwK2R2WU/8cmo4z1G3fq3nMLGvxa4\ngr9mljrNH0m/EmEqf7/e2ojEbXvM3ispA1LaIV6AyHJNKKsTchpwStHuej1wfGcy\nV2hFlKfdtNtX9j4rbF8U6Y3PjpA2JTDo4XDGKEyMaGFuRSyzct8c9G0SWw58o0vR\n10h5xa8C64WxGKY8rL0ppI75NFr1hmvkwJ90acgh73sXSoDLhKEDzS3uiUDyFsgM\nYwIDAQAB\n-----END PUBLIC KEY-----\n";
/// The scope FCM sends need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// FCM's limit on a message (keys and values, without the target).
pub const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_TTL_S: f64 = 2_419_200.0;
const FCM_ERROR: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/// What FCM says about a malformed registration token.
pub const INVALID_TOKEN_MESSAGE: &str =
    "The registration token is not a valid FCM registration token";

/// How the fake answers one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with the message name.
    Ok,
    /// 404 `NOT_FOUND`, `UNREGISTERED`.
    Unregistered,
    /// 400 `INVALID_ARGUMENT` about the registration token.
    InvalidToken,
    /// 400 `INVALID_ARGUMENT` about something else (the message text).
    InvalidArgument(String),
    /// 403 `PERMISSION_DENIED`, `SENDER_ID_MISMATCH`.
    SenderIdMismatch,
    /// 429 `RESOURCE_EXHAUSTED` with `QUOTA_EXCEEDED`, and `Retry-After` (seconds) if given.
    QuotaExceeded { retry_after_s: Option<u64> },
    /// 429 `RESOURCE_EXHAUSTED` without an `FcmError` (firebase-admin-go #719).
    RateLimited { retry_after_s: Option<u64> },
    /// 500 `INTERNAL`.
    Internal,
    /// 503 `UNAVAILABLE`, with `Retry-After` if given.
    Unavailable { retry_after_s: Option<u64> },
    /// 401 `UNAUTHENTICATED` with `THIRD_PARTY_AUTH_ERROR`.
    ThirdPartyAuthError,
    /// 401 `UNAUTHENTICATED` without an `FcmError` (a refused access token).
    Unauthenticated,
}

impl Reply {
    /// Status, error body and `Retry-After` of an error reply.
    fn error(&self) -> Option<(u16, Value, Option<u64>)> {
        let fcm = |status: u16, rpc: &str, message: &str, code: &str| {
            json!({"error": {"code": status, "message": message, "status": rpc,
                "details": [{"@type": FCM_ERROR, "errorCode": code}]}})
        };
        Some(match self {
            Reply::Ok => return None,
            Reply::Unregistered => (
                404,
                fcm(
                    404,
                    "NOT_FOUND",
                    "Requested entity was not found.",
                    "UNREGISTERED",
                ),
                None,
            ),
            Reply::InvalidToken => {
                let mut body = fcm(
                    400,
                    "INVALID_ARGUMENT",
                    INVALID_TOKEN_MESSAGE,
                    "INVALID_ARGUMENT",
                );
                body["error"]["details"]
                    .as_array_mut()
                    .expect("details")
                    .push(json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": "message.token", "description": INVALID_TOKEN_MESSAGE}]}));
                (400, body, None)
            }
            Reply::InvalidArgument(message) => (
                400,
                fcm(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT"),
                None,
            ),
            Reply::SenderIdMismatch => (
                403,
                fcm(
                    403,
                    "PERMISSION_DENIED",
                    "SenderId mismatch",
                    "SENDER_ID_MISMATCH",
                ),
                None,
            ),
            Reply::QuotaExceeded { retry_after_s } => (
                429,
                fcm(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Send requests'",
                    "QUOTA_EXCEEDED",
                ),
                *retry_after_s,
            ),
            Reply::RateLimited { retry_after_s } => (
                429,
                json!({"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com"}]}}),
                *retry_after_s,
            ),
            Reply::Internal => (
                500,
                fcm(500, "INTERNAL", "Internal error encountered.", "INTERNAL"),
                None,
            ),
            Reply::Unavailable { retry_after_s } => (
                503,
                fcm(
                    503,
                    "UNAVAILABLE",
                    "The service is currently unavailable.",
                    "UNAVAILABLE",
                ),
                *retry_after_s,
            ),
            Reply::ThirdPartyAuthError => (
                401,
                fcm(
                    401,
                    "UNAUTHENTICATED",
                    "Auth error from APNS or Web Push Service",
                    "THIRD_PARTY_AUTH_ERROR",
                ),
                None,
            ),
            Reply::Unauthenticated => (401, unauthenticated(), None),
        })
    }
}

fn unauthenticated() -> Value {
    json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}})
}

/// A message the fake accepted (it passed the checks), with the answer it got.
#[derive(Debug, Clone)]
pub struct FcmMessage {
    pub project: String,
    /// `message.token`.
    pub token: String,
    /// `message` as received.
    pub message: Value,
    /// The request body exactly as received.
    pub raw: Bytes,
    /// The bearer access token it came with.
    pub access_token: String,
    pub version: Version,
    pub headers: HeaderMap,
    /// The status it was answered with.
    pub status: u16,
    /// When it arrived (wall clock): benchmarks time event → provider request with it.
    pub at: std::time::SystemTime,
}

impl FcmMessage {
    /// `message.data[key]`.
    pub fn data(&self, key: &str) -> Option<&str> {
        self.message["data"][key].as_str()
    }
}

/// A request the fake refused before scripting (authentication or message checks).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub path: String,
    pub status: u16,
    pub why: String,
}

struct Issued {
    expires_at: OffsetDateTime,
    revoked: bool,
}

struct Config {
    project_id: String,
    client_email: String,
    key_id: Option<String>,
    public_key_pem: String,
    expires_in: u64,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Inner {
    issued: HashMap<String, Issued>,
    scripts: HashMap<String, VecDeque<Reply>>,
    default: Option<Reply>,
    messages: Vec<FcmMessage>,
    rejections: Vec<Rejection>,
    assertions: Vec<String>,
    token_latency: Duration,
}

struct Shared {
    config: Config,
    token_uri: String,
    inner: Mutex<Inner>,
    fetches: AtomicU64,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct FakeFcmBuilder {
    project_id: String,
    client_email: String,
    key_id: Option<String>,
    public_key_pem: String,
    expires_in: u64,
    clock: Arc<dyn Clock>,
}

impl FakeFcmBuilder {
    pub fn project(mut self, project_id: &str) -> Self {
        self.project_id = project_id.to_string();
        self
    }

    /// The service account: its email, key id (`None`: `kid` is not checked) and public key.
    pub fn credentials(
        mut self,
        client_email: &str,
        key_id: Option<&str>,
        public_key_pem: &str,
    ) -> Self {
        self.client_email = client_email.to_string();
        self.key_id = key_id.map(str::to_string);
        self.public_key_pem = public_key_pem.to_string();
        self
    }

    /// `expires_in` of the access tokens it issues (default 3599 s).
    pub fn expires_in(mut self, seconds: u64) -> Self {
        self.expires_in = seconds;
        self
    }

    /// The clock for assertion times and token expiry (default: the system clock). Give it the
    /// hub's manual clock when a test moves time.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub async fn start(self) -> FakeFcm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            config: Config {
                project_id: self.project_id,
                client_email: self.client_email,
                key_id: self.key_id,
                public_key_pem: self.public_key_pem,
                expires_in: self.expires_in,
                clock: self.clock,
            },
            token_uri: format!("{url}/token"),
            inner: Mutex::new(Inner::default()),
            fetches: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        });
        let app = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .fallback(send)
            .with_state(shared.clone());
        // axum::serve speaks HTTP/1.1 and HTTP/2 (h2c with prior knowledge) on one port.
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeFcm { url, shared }
    }
}

/// A running fake FCM. Cheap to clone (shared).
#[derive(Clone)]
pub struct FakeFcm {
    url: String,
    shared: Arc<Shared>,
}

impl FakeFcm {
    pub fn builder() -> FakeFcmBuilder {
        FakeFcmBuilder {
            project_id: PROJECT_ID.into(),
            client_email: CLIENT_EMAIL.into(),
            key_id: Some(PRIVATE_KEY_ID.into()),
            public_key_pem: RSA_PUBLIC_PEM.into(),
            expires_in: 3599,
            clock: Arc::new(SystemClock),
        }
    }

    pub async fn start() -> FakeFcm {
        FakeFcm::builder().start().await
    }

    /// `http://127.0.0.1:PORT`: the app's `fcm.base_url`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The token endpoint: the service account's `token_uri`.
    pub fn token_uri(&self) -> String {
        self.shared.token_uri.clone()
    }

    /// A service-account JSON (as Google issues it) whose key and token URI this fake accepts
    /// (with the default credentials).
    pub fn service_account(&self) -> Value {
        let c = &self.shared.config;
        json!({
            "type": "service_account",
            "project_id": c.project_id,
            "private_key_id": c.key_id.clone().unwrap_or_else(|| PRIVATE_KEY_ID.into()),
            "private_key": RSA_PRIVATE_PEM,
            "client_email": c.client_email,
            "client_id": "100000000000000000000",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
    }

    /// The next answers to messages for `token`, in order; then the default.
    pub fn script(&self, token: &str, replies: Vec<Reply>) {
        self.shared
            .lock()
            .scripts
            .entry(token.to_string())
            .or_default()
            .extend(replies);
    }

    /// The answer to unscripted messages (default [`Reply::Ok`]).
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = Some(reply);
    }

    /// Delays every token answer (to make concurrent fetches overlap).
    pub fn set_token_latency(&self, latency: Duration) {
        self.shared.lock().token_latency = latency;
    }

    /// Every access token issued so far stops working (the next send with one gets 401).
    pub fn expire_tokens(&self) {
        for issued in self.shared.lock().issued.values_mut() {
            issued.revoked = true;
        }
    }

    /// Requests to the token endpoint so far (granted or not).
    pub fn token_fetches(&self) -> u64 {
        self.shared.fetches.load(Ordering::Relaxed)
    }

    /// The assertions posted to the token endpoint, in order.
    pub fn assertions(&self) -> Vec<String> {
        self.shared.lock().assertions.clone()
    }

    /// Every message that passed the checks, in order.
    pub fn messages(&self) -> Vec<FcmMessage> {
        self.shared.lock().messages.clone()
    }

    pub fn messages_for(&self, token: &str) -> Vec<FcmMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.token == token)
            .collect()
    }

    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejections.clone()
    }

    pub fn clear(&self) {
        let mut inner = self.shared.lock();
        inner.messages.clear();
        inner.rejections.clear();
    }

    /// Waits (up to `PATIENCE`) until at least `n` messages arrived; answers them all.
    pub async fn wait_for(&self, n: usize) -> Vec<FcmMessage> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} FCM messages, got {} (rejected: {:?})",
                messages.len(),
                self.rejections()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn with_retry_after(mut response: Response, retry_after_s: Option<u64>) -> Response {
    if let Some(s) = retry_after_s {
        response.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&s.to_string()).expect("digits"),
        );
    }
    response
}

fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn invalid_grant(why: &str) -> Response {
    json_response(
        400,
        &json!({"error": "invalid_grant", "error_description": why}),
    )
}

/// `POST /token`
async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.fetches.fetch_add(1, Ordering::Relaxed);
    let latency = {
        let mut inner = shared.lock();
        if let Some(a) = form.get("assertion") {
            inner.assertions.push(a.clone());
        }
        inner.token_latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if form.get("grant_type").map(String::as_str) != Some(GRANT_TYPE) {
        return json_response(
            400,
            &json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}),
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return invalid_grant("Missing required parameter: assertion");
    };
    if let Err(why) = check_assertion(&shared, assertion) {
        let mut inner = shared.lock();
        inner.rejections.push(Rejection {
            path: "/token".into(),
            status: 400,
            why: why.clone(),
        });
        drop(inner);
        return invalid_grant(&why);
    }
    let c = &shared.config;
    let access_token = format!("ya29.fake-{}", uuid::Uuid::new_v4().simple());
    let expires_at = c.clock.now() + time::Duration::seconds(c.expires_in as i64);
    shared.lock().issued.insert(
        access_token.clone(),
        Issued {
            expires_at,
            revoked: false,
        },
    );
    json_response(
        200,
        &json!({"access_token": access_token, "expires_in": c.expires_in, "token_type": "Bearer"}),
    )
}

fn check_assertion(shared: &Shared, assertion: &str) -> Result<(), String> {
    let c = &shared.config;
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| format!("not a JWT: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!("alg must be RS256, not {:?}", header.alg));
    }
    if let Some(kid) = &c.key_id
        && header.kid.as_deref() != Some(kid.as_str())
    {
        return Err("kid is not the service account's private_key_id".into());
    }
    let key = DecodingKey::from_rsa_pem(c.public_key_pem.as_bytes())
        .map_err(|e| format!("bad fake key: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_audience(&[&shared.token_uri]);
    validation.set_issuer(&[&c.client_email]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("Invalid JWT: {e}"))?
        .claims;
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == SCOPE) {
        return Err(format!("scope must include {SCOPE}"));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err("iat and exp must be integers".into());
    };
    let now = c.clock.now().unix_timestamp();
    if exp <= iat || exp - iat > 3600 {
        return Err("Invalid JWT: exp must be after iat and at most an hour later".into());
    }
    if iat > now + 60 {
        return Err("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe (iat in the future)".into());
    }
    if exp <= now {
        return Err("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe (expired)".into());
    }
    Ok(())
}

/// The checks FCM makes on a message; `Err` says what is wrong.
pub fn check_message(message: &Value) -> Result<(), String> {
    let Some(m) = message.as_object() else {
        return Err("message must be an object".into());
    };
    let targets = ["token", "topic", "condition"]
        .iter()
        .filter(|t| m.contains_key(**t))
        .count();
    if targets != 1 {
        return Err("exactly one of token, topic and condition must be set".into());
    }
    if m.get("token").is_some_and(|t| !t.is_string()) {
        return Err("token must be a string".into());
    }
    if let Some(data) = m.get("data") {
        let data = data.as_object().ok_or("data must be a map")?;
        for (k, v) in data {
            if !v.is_string() {
                return Err(format!(
                    "Invalid value at 'message.data[{k}].value' (TYPE_STRING)"
                ));
            }
            let lower = k.to_ascii_lowercase();
            if lower == "from"
                || lower == "message_type"
                || lower.starts_with("google")
                || lower.starts_with("gcm")
            {
                return Err(format!("Invalid data payload key: {k}"));
            }
        }
    }
    if let Some(android) = m.get("android") {
        if let Some(p) = android.get("priority")
            && !matches!(p.as_str(), Some("NORMAL" | "HIGH"))
        {
            return Err("Invalid value at 'message.android.priority'".into());
        }
        if let Some(ttl) = android.get("ttl") {
            let seconds = ttl
                .as_str()
                .and_then(|t| t.strip_suffix('s'))
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                .and_then(|t| t.parse::<f64>().ok())
                .ok_or("Invalid value at 'message.android.ttl' (Duration)")?;
            if seconds > MAX_TTL_S {
                return Err("message.android.ttl is longer than four weeks".into());
            }
        }
        if let Some(n) = android.get("notification") {
            if n.get("notification_count").is_some_and(|c| !c.is_i64()) {
                return Err(
                    "Invalid value at 'message.android.notification.notification_count'".into(),
                );
            }
            if n.get("tag").is_some_and(|t| !t.is_string()) {
                return Err("Invalid value at 'message.android.notification.tag'".into());
            }
        }
    }
    if let Some(apns) = m.get("apns") {
        if let Some(headers) = apns.get("headers") {
            let headers = headers.as_object().ok_or("apns.headers must be a map")?;
            if headers.values().any(|v| !v.is_string()) {
                return Err("apns.headers values must be strings".into());
            }
        }
        let aps = &apns["payload"]["aps"];
        let data_only = aps.get("alert").is_none() && aps.get("sound").is_none();
        let priority = apns["headers"]["apns-priority"].as_str().unwrap_or("10");
        if data_only && priority != "5" {
            return Err("Only apns-priority 5 is allowed for data-only messages to iOS".into());
        }
    }
    let mut sized = m.clone();
    for t in ["token", "topic", "condition"] {
        sized.remove(t);
    }
    let size = serde_json::to_vec(&sized).expect("JSON").len();
    if size > MAX_MESSAGE_BYTES {
        return Err(format!(
            "Message is too big ({size} bytes; the limit is 4096)"
        ));
    }
    Ok(())
}

fn reject(shared: &Shared, path: &str, status: u16, why: String, body: Value) -> Response {
    shared.lock().rejections.push(Rejection {
        path: path.into(),
        status,
        why,
    });
    json_response(status, &body)
}

fn invalid_argument(message: &str) -> Value {
    json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT",
        "details": [{"@type": FCM_ERROR, "errorCode": "INVALID_ARGUMENT"}]}})
}

/// `POST /v1/projects/{project}/messages:send` (and 404 for anything else).
async fn send(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let project = path
        .strip_prefix("/v1/projects/")
        .and_then(|p| p.strip_suffix("/messages:send"))
        .filter(|p| !p.contains('/'));
    let not_found = json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}});
    let (Some(project), true) = (project, method == Method::POST) else {
        return reject(&shared, &path, 404, "no such route".into(), not_found);
    };
    let project = project.to_string();
    let access_token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let now = shared.config.clock.now();
    let valid = shared
        .lock()
        .issued
        .get(&access_token)
        .is_some_and(|t| !t.revoked && now < t.expires_at);
    if !valid {
        return reject(
            &shared,
            &path,
            401,
            "access token not issued or expired".into(),
            unauthenticated(),
        );
    }
    if project != shared.config.project_id {
        return reject(
            &shared,
            &path,
            404,
            format!("unknown project {project}"),
            not_found,
        );
    }
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let Some(message) = parsed.as_ref().and_then(|b| b.get("message")).cloned() else {
        let why = "Invalid JSON payload received: no message".to_string();
        return reject(&shared, &path, 400, why.clone(), invalid_argument(&why));
    };
    if let Err(why) = check_message(&message) {
        return reject(&shared, &path, 400, why.clone(), invalid_argument(&why));
    }
    let token = message["token"].as_str().unwrap_or_default().to_string();
    let reply = {
        let mut inner = shared.lock();
        inner
            .scripts
            .get_mut(&token)
            .and_then(VecDeque::pop_front)
            .or_else(|| inner.default.clone())
            .unwrap_or(Reply::Ok)
    };
    let (status, response) = match reply.error() {
        None => {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            let name = format!("projects/{project}/messages/{id}");
            (200, json_response(200, &json!({"name": name})))
        }
        Some((status, body, retry_after_s)) => (
            status,
            with_retry_after(json_response(status, &body), retry_after_s),
        ),
    };
    shared.lock().messages.push(FcmMessage {
        project,
        token,
        message,
        raw: body,
        access_token,
        version,
        headers,
        status,
        at: std::time::SystemTime::now(),
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_checks_follow_fcm() {
        assert!(check_message(&json!({"token": "t", "data": {"a": "b"}})).is_ok());
        assert!(
            check_message(&json!({"data": {"a": "b"}})).is_err(),
            "no target"
        );
        assert!(
            check_message(&json!({"token": "t", "topic": "x"})).is_err(),
            "two targets"
        );
        assert!(check_message(&json!({"token": "t", "data": {"a": 1}})).is_err());
        assert!(check_message(&json!({"token": "t", "data": {"google.x": "1"}})).is_err());
        assert!(check_message(&json!({"token": "t", "android": {"ttl": "12"}})).is_err());
        assert!(
            check_message(&json!({"token": "t", "android": {"ttl": "3.5s", "priority": "HIGH"}}))
                .is_ok()
        );
        assert!(check_message(&json!({"token": "t", "android": {"priority": "high"}})).is_err());
        assert!(
            check_message(&json!({"token": "t", "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"content-available": 1}}}}))
                .is_err()
        );
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        assert!(check_message(&json!({"token": "t", "data": {"a": big}})).is_err());
    }
}
