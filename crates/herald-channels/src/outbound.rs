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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use herald_engine::push::DeliveryOutcome;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

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

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<IpNet>,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Guard { allow }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip)) || !forbidden(ip)
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// IPv4 addresses carried inside IPv6: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`) and
/// the NAT64 well-known prefix (`64:ff9b::/96`).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(v4()),
        [0, 0, 0, 0, 0, 0, _, _] if !v6.is_loopback() && !v6.is_unspecified() => Some(v4()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(v4()),
        _ => None,
    }
}

/// Why a URL may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL is not an absolute http(s) URL")]
    BadUrl,
    #[error(
        "the URL points at a forbidden address ({0}); add its range to outbound.allow_cidrs to allow it"
    )]
    Forbidden(IpAddr),
}

/// Checks a URL whose host is an IP literal; host names are checked when resolved.
pub fn check_url(guard: &Guard, url: &str) -> Result<url::Url, Refusal> {
    let url = url::Url::parse(url).map_err(|_| Refusal::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::BadUrl);
    }
    let ip = match url.host().ok_or(Refusal::BadUrl)? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    };
    match ip {
        Some(ip) if !guard.permits(ip) => Err(Refusal::Forbidden(ip)),
        _ => Ok(url),
    }
}

/// Resolves with the system resolver, then keeps only permitted addresses.
struct GuardedResolver {
    guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| guard.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                let refused = resolved
                    .first()
                    .map(|a| a.ip())
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                return Err(Box::new(Refusal::Forbidden(refused))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The guarded client. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    guard: Guard,
}

/// The answer of a remote endpoint, as much as the classifiers need.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
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
            .header(reqwest::header::CONTENT_TYPE, "application/json")
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
        let _ = response.bytes().await;
        Ok(Answer { status, headers })
    }
}

/// A failed request to a customer URL: a refusal by the guarded resolver is permanent
/// (retrying cannot change the address); anything else is [`transport_failure`].
fn refused_or_transport_failure(error: &reqwest::Error) -> DeliveryOutcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return DeliveryOutcome::Permanent {
                reason: refusal.to_string(),
                status: None,
            };
        }
        source = e.source();
    }
    transport_failure(error, "")
}

/// What went wrong with a request that got no answer: `timed out`, `could not connect` or
/// `the request failed`. Never the URL (it may carry secrets) nor anything that was sent.
fn transport_failure_words(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    }
}

/// The outcome of a request to `peer` (`APNs`, `FCM`, …; empty for customer URLs) that got no
/// answer: retryable, with the reason `"{peer}: {words}"` (`timed out`, `could not connect` or
/// `the request failed`).
pub fn transport_failure(error: &reqwest::Error, peer: &str) -> DeliveryOutcome {
    let words = transport_failure_words(error);
    let reason = if peer.is_empty() {
        words.to_string()
    } else {
        format!("{peer}: {words}")
    };
    DeliveryOutcome::Retryable {
        after_ms: None,
        reason,
        status: None,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date, in milliseconds from now.
pub fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let ms = (at - time::OffsetDateTime::now_utc()).whole_milliseconds();
    Some(ms.clamp(0, i128::from(u64::MAX)) as u64)
}

/// The usual reading of an HTTP answer from a customer endpoint: 2xx delivered; 408, 429 and
/// 5xx retried (honouring `Retry-After`); redirects (never followed) and other 4xx permanent.
pub fn classify(answer: &Answer) -> DeliveryOutcome {
    match answer.status {
        200..=299 => DeliveryOutcome::Delivered { provider_id: None },
        408 | 425 | 429 | 500..=599 => DeliveryOutcome::Retryable {
            after_ms: retry_after_ms(&answer.headers),
            reason: format!("the endpoint answered {}", answer.status),
            status: Some(answer.status),
        },
        300..=399 => DeliveryOutcome::Permanent {
            reason: format!(
                "the endpoint redirected ({}); redirects are not followed",
                answer.status
            ),
            status: Some(answer.status),
        },
        status => DeliveryOutcome::Permanent {
            reason: format!("the endpoint answered {status}"),
            status: Some(status),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        matches!(
            check_url(&Guard::default(), url),
            Err(Refusal::Forbidden(_))
        )
    }

    #[test]
    fn private_and_special_addresses_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[fc00::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
        ] {
            assert!(refused(url), "{url} must be refused");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_the_literal_check() {
        for url in [
            "https://93.184.216.34/hook",
            "https://[2606:4700::1111]/",
            "https://hooks.example.com/x",
        ] {
            assert!(check_url(&Guard::default(), url).is_ok(), "{url}");
        }
        assert_eq!(
            check_url(&Guard::default(), "ftp://example.com/"),
            Err(Refusal::BadUrl)
        );
    }

    #[test]
    fn the_allow_list_opens_exactly_its_ranges() {
        let guard = Guard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(check_url(&guard, "http://127.0.0.1:9000/").is_ok());
        assert!(check_url(&guard, "http://10.0.0.1/").is_err());
    }

    #[test]
    fn answers_are_classified_like_standard_webhooks_says() {
        let answer = |status| Answer {
            status,
            headers: HeaderMap::new(),
        };
        assert!(matches!(
            classify(&answer(204)),
            DeliveryOutcome::Delivered { .. }
        ));
        assert!(matches!(
            classify(&answer(503)),
            DeliveryOutcome::Retryable {
                status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            classify(&answer(429)),
            DeliveryOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify(&answer(302)),
            DeliveryOutcome::Permanent { .. }
        ));
        assert!(matches!(
            classify(&answer(400)),
            DeliveryOutcome::Permanent {
                status: Some(400),
                ..
            }
        ));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert!(matches!(
            classify(&Answer {
                status: 503,
                headers
            }),
            DeliveryOutcome::Retryable {
                after_ms: Some(7000),
                ..
            }
        ));
    }
}
