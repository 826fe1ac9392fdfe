//! The builder: credentials, topic, stream limit, TLS with a self-signed certificate, recording.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

use jsonwebtoken::DecodingKey;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::*;

pub struct FakeApnsBuilder {
    pub(super) team_id: String,
    pub(super) key_id: String,
    pub(super) public_key_pem: String,
    pub(super) topic: Option<String>,
    pub(super) max_concurrent_streams: u32,
    pub(super) tls: bool,
    pub(super) record: bool,
}

impl FakeApnsBuilder {
    /// The team and key the provider token must name.
    pub fn credentials(mut self, team_id: &str, key_id: &str, public_key_pem: &str) -> Self {
        self.team_id = team_id.to_string();
        self.key_id = key_id.to_string();
        self.public_key_pem = public_key_pem.to_string();
        self
    }

    /// Only this bundle id (and its `.voip` topic) may be pushed to; others get 400
    /// `TopicDisallowed`.
    pub fn topic(mut self, bundle_id: &str) -> Self {
        self.topic = Some(bundle_id.to_string());
        self
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS (default 1000, like APNs after authentication).
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_concurrent_streams = n;
        self
    }

    /// Serves TLS (ALPN h2) with a self-signed certificate for 127.0.0.1 and localhost.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Whether to keep every request (default on; benchmarks turn it off).
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    pub async fn start(self) -> FakeApns {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let decoding_key = DecodingKey::from_ec_pem(self.public_key_pem.as_bytes())
            .expect("the fake's public key is a P-256 PEM");
        let tls = self.tls.then(self_signed);
        let shared = Arc::new(Shared {
            team_id: self.team_id,
            key_id: self.key_id,
            decoding_key,
            topic: self.topic,
            max_concurrent_streams: self.max_concurrent_streams,
            record: self.record,
            state: Mutex::new(State::default()),
            verified: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            streams: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
            recorded: watch::channel(0).0,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fake = FakeApns {
            shared,
            addr,
            tls,
            running: Mutex::new(None),
        };
        fake.serve(listener);
        fake
    }
}

pub(super) struct Tls {
    pub(super) acceptor: tokio_rustls::TlsAcceptor,
    pub(super) certificate_pem: String,
}

pub(super) fn self_signed() -> Tls {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("a self-signed certificate");
    let cert_der = certified.cert.der().clone();
    let key_der =
        rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .expect("the certificate and key match");
    config.alpn_protocols = vec![b"h2".to_vec()];
    Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        certificate_pem: certified.cert.pem(),
    }
}
