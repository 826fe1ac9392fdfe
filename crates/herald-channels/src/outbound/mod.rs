//! The HTTP client for URLs that users supply (webhooks, connector callbacks, later Web Push
//! endpoints). Such URLs are a server-side request forgery risk, so:
//!
//! - an IP literal in the URL is checked before anything is sent (the URL parser has already
//!   turned decimal, octal and hex forms such as `http://2130706433/` into `127.0.0.1`);
//! - a host name is resolved by our own resolver, which drops every forbidden address; a name
//!   that resolves only to forbidden addresses fails before any connection is attempted, and
//!   the connection can only go to an address that was checked (no DNS rebinding between the
//!   check and the connect);
//! - redirects are never followed;
//! - forbidden: loopback, private, link-local, unique-local, multicast, unspecified,
//!   broadcast, shared (CGNAT), documentation, benchmarking and reserved ranges, and IPv4
//!   addresses hidden in IPv6 (mapped, compatible, NAT64) — unless the operator's allow-list
//!   (`outbound.allow_cidrs`) names the range, which is how tests reach loopback.
//!
//! Files: `mod.rs` the configuration and the client; `guard.rs` the address checks and the
//! guarded resolver; `answer.rs` transport failures (for every channel) and the reading of
//! answers; `tests.rs`.

mod answer;
mod guard;

use std::sync::Arc;
use std::time::Duration;

use herald_engine::push::DeliveryOutcome;
use ipnet::IpNet;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use self::answer::refused_or_transport_failure;
pub use self::answer::{
    Answer, REFUSED_PAUSE, REFUSED_RETRIES, classify, refused_unprocessed, retry_after_ms,
    send_until_processed, transport_failure,
};
use self::guard::GuardedResolver;
pub use self::guard::{Guard, Refusal, check_url};

/// Calls to URLs that users supply: the `outbound` section of the server's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Address ranges that customer-supplied URLs (webhooks, connector callbacks, Web Push
    /// endpoints) may reach although they are private or loopback, e.g. `["10.1.0.0/16"]`.
    /// Everything else private is refused (SSRF guard).
    pub allow_cidrs: Vec<String>,
    /// Time limit of one webhook or connector call, unless the app sets its own.
    pub timeout_ms: u64,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_cidrs: vec![],
            timeout_ms: 15_000,
        }
    }
}

impl OutboundConfig {
    pub fn allow_list(&self) -> Result<Vec<IpNet>, String> {
        self.allow_cidrs
            .iter()
            .enumerate()
            .map(|(i, c)| c.parse().map_err(|_| format!("invalid configuration: `outbound.allow_cidrs[{i}]` is not a CIDR such as 127.0.0.0/8")))
            .collect()
    }
}

/// The guarded client. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    guard: Guard,
}

impl Outbound {
    pub fn new(guard: Guard) -> Outbound {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with these settings always builds");
        Outbound { client, guard }
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// POSTs `body` as JSON. Failures come back as the outcome a channel reports.
    pub async fn post_json(
        &self,
        url: &str,
        mut headers: HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, DeliveryOutcome> {
        headers.append(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.post_bytes(url, headers, body, timeout).await
    }

    /// POSTs raw `body` with exactly the given `headers` (the caller sets `Content-Type`),
    /// under the same guard as [`Outbound::post_json`] (Web Push's encrypted bodies).
    pub async fn post_bytes(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, DeliveryOutcome> {
        let url = check_url(&self.guard, url).map_err(|r| DeliveryOutcome::Permanent {
            reason: r.to_string(),
            status: None,
        })?;
        let response = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| refused_or_transport_failure(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // The body is not needed; dropping the response frees the connection for reuse
        // once it has been read, so read it (bounded by the timeout).
        let _ = response.bytes().await;
        Ok(Answer { status, headers })
    }
}

#[cfg(test)]
mod tests;
