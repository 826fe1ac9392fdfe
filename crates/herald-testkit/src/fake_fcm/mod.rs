//! Files: this one (what is recorded, and the running fake's handle), `reply.rs` (scripted
//! answers), `state.rs` (what the fake shares), `builder.rs` (options, start), `token.rs` (the
//! OAuth2 token endpoint), `message.rs` (FCM's message checks), `send.rs` (`messages:send`).
//!
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

mod builder;
mod message;
mod reply;
mod send;
mod state;
mod token;

pub use builder::FakeFcmBuilder;
pub use message::check_message;
pub use reply::Reply;
use reply::*;
use send::*;
use state::*;
use token::*;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Version};
use herald_engine::clock::SystemClock;
use serde_json::{Value, json};

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
