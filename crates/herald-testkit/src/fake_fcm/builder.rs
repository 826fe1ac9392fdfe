//! The builder: project, service account, token lifetime, clock; `start` serves both endpoints.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use herald_engine::clock::Clock;

use super::*;

pub struct FakeFcmBuilder {
    pub(super) project_id: String,
    pub(super) client_email: String,
    pub(super) key_id: Option<String>,
    pub(super) public_key_pem: String,
    pub(super) expires_in: u64,
    pub(super) clock: Arc<dyn Clock>,
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
