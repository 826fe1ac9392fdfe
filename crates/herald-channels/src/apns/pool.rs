//! APNs connections: one HTTP/2 client (its connection pool) per (base URL, team, key), the
//! warm-up gate of a new pool, and the reading of APNs' answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::ApnsOptions;
use super::errors::Answer;
use crate::outbound;

/// The longest error body read from APNs (they are a few dozen bytes).
const MAX_ANSWER_BYTES: usize = 4096;

/// (base URL, team id, key id)
pub(super) type ClientKey = (String, String, String);

/// One HTTP/2 client (its connection pool) and its warm-up gate: the first request on a new
/// pool goes alone, so the server's SETTINGS (APNs allows one stream until a request with a
/// valid token) are known before requests are multiplexed on the connection.
pub(super) struct Pool {
    pub client: reqwest::Client,
    warm: AtomicBool,
    gate: tokio::sync::Mutex<()>,
}

impl Pool {
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        if self.warm.load(Ordering::Acquire) {
            return send(request).await;
        }
        let alone = self.gate.lock().await;
        if self.warm.load(Ordering::Acquire) {
            drop(alone);
            return send(request).await;
        }
        let answer = send(request).await;
        if answer.is_ok() {
            self.warm.store(true, Ordering::Release);
        }
        answer
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    read_answer(request.send().await?).await
}

/// The pools of one channel, by [`ClientKey`].
#[derive(Default)]
pub(super) struct Pools {
    clients: Mutex<HashMap<ClientKey, Arc<Pool>>>,
}

impl Pools {
    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Arc<Pool>>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pool of `key`, opened with `options` if there is none.
    pub fn get(&self, key: &ClientKey, options: &ApnsOptions) -> Result<Arc<Pool>, String> {
        if let Some(pool) = self.clients().get(key) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(Pool {
            client: build_client(options, &key.0)?,
            warm: AtomicBool::new(false),
            gate: tokio::sync::Mutex::new(()),
        });
        Ok(self.clients().entry(key.clone()).or_insert(pool).clone())
    }

    /// Forgets the connection pool `pool` of `key` (unless another request already replaced
    /// it): the next request opens a new connection.
    pub fn reconnect(&self, key: &ClientKey, pool: &Arc<Pool>) {
        let mut clients = self.clients();
        if clients
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, pool))
        {
            clients.remove(key);
        }
    }
}

fn build_client(o: &ApnsOptions, base: &str) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(o.connect_timeout)
        .timeout(o.request_timeout)
        // Apple: keep connections open for hours; PINGs find the dead ones.
        .pool_idle_timeout(None)
        .http2_keep_alive_interval(o.ping_interval)
        .http2_keep_alive_timeout(o.ping_timeout)
        .http2_keep_alive_while_idle(true)
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")));
    if base.starts_with("http://") {
        builder = builder.http2_prior_knowledge();
    } else if !o.trusted_roots_pem.is_empty() {
        let roots = o
            .trusted_roots_pem
            .iter()
            .map(|pem| reqwest::Certificate::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "a trusted APNs root certificate is not PEM".to_string())?;
        builder = builder.tls_certs_only(roots);
    }
    builder
        .build()
        .map_err(|e| format!("the APNs client cannot be built: {e}"))
}

async fn read_answer(response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = response.status().as_u16();
    let headers = response.headers();
    let apns_id = headers
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let retry_after_ms = outbound::retry_after_ms(headers);
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await? {
        if body.len() < MAX_ANSWER_BYTES {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
        }
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        reason: Option<String>,
        timestamp: Option<i64>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
    Ok(Answer {
        status,
        reason: parsed
            .as_ref()
            .and_then(|b| b.reason.clone())
            .filter(|r| r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric())),
        timestamp_ms: parsed.and_then(|b| b.timestamp),
        retry_after_ms,
        apns_id,
    })
}
