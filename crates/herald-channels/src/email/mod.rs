//! Email (SPEC §2.5): SMTP with STARTTLS, implicit TLS or (for local relays) none, and AUTH
//! when the app's `smtp` section has a username.
//!
//! Files:
//! - `mod.rs`: the channel: transports, timeouts, one send.
//! - `answers.rs`: what an SMTP server's answer (or its silence) means for the delivery.
//! - [`message`]: what an email says (`message/mod.rs`: the blocks of each kind; `texts.rs`:
//!   the built-in texts per language; `body.rs`: the text and HTML bodies; `mime.rs`: the MIME
//!   message and its headers; `tests.rs`).
//! - [`redact`]: addresses masked in logs and in SMTP servers' words.
//!
//! - **What is emailed**: digests (the messages of a conversation still unread after the app's
//!   `email_delay_ms`, SPEC §3.3 rule 6), incoming calls, missed calls and proactive
//!   notifications. Reads, revoked calls and single new messages never are: such a delivery
//!   fails as permanent ("never emailed"); the engine does not create them.
//! - **Transports**: one pooled lettre transport per (host, port, security, username,
//!   password): connections are reused across deliveries and closed after a minute idle. TLS is
//!   rustls with the webpki roots (plus [`EmailOptions::trusted_roots_pem`] for tests); with
//!   `starttls` the upgrade is required, never skipped.
//! - **Timeouts**: lettre bounds only the TCP connect of its async transport, so one whole
//!   send (connect, TLS, AUTH, envelope, data) runs under [`EmailOptions::send_timeout`],
//!   shorter than the delivery core's attempt timeout. A send cut off there may leave its
//!   connection mid-command, and lettre's pool would park it as it is: the whole transport is
//!   forgotten instead, and the next delivery opens a new pool.
//! - **Message** ([`message`]): From = `smtp.from`, To = the target address, a subject, Date,
//!   `Message-ID` derived from the delivery id (stable across retries), a text and an HTML body.
//!   The texts are built in for `en` and `de`; a push carries no locale, so the built-in parts
//!   are English while titles and bodies the engine rendered (in the user's locale) are used
//!   as they are.
//! - **Outcomes**: 2xx → delivered (the server's answer as provider id); 4xx and connection
//!   failures or timeouts → retryable; 5xx → permanent with the server's words (a 550 for an
//!   unknown mailbox included: there is no device to remove). A server without STARTTLS when
//!   `starttls` is required, a refused certificate or failed authentication → permanent, with
//!   the reason. The SMTP reply code is reported as the outcome's status, except 421 (the
//!   server is closing the connection), which counts for the circuit breaker like a
//!   connection failure.
//!
//! Logs carry ids, host, port and masked addresses (`a***@example.com`): never a whole
//! address, message text or password.

mod answers;
pub mod message;
pub mod redact;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use herald_engine::app::{AppConfig, ContentMode, SmtpSection, SmtpSecurity};
use herald_engine::delivery::Channel;
use herald_engine::push::{Delivery, DeliveryOutcome, Target};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};

use self::answers::{classify, delivered, timed_out};
use crate::Settings;
use herald_engine::registry::ChannelRegistry;

/// How the channel talks to SMTP servers.
#[derive(Clone)]
pub struct EmailOptions {
    /// Bound on opening a TCP connection.
    pub connect_timeout: Duration,
    /// Bound on one whole send: connect, TLS, AUTH, envelope and data.
    pub send_timeout: Duration,
    /// Most connections open to one server (per credential).
    pub max_connections: u32,
    /// An idle pooled connection is closed after this long.
    pub idle_timeout: Duration,
    /// If set, extra trusted root certificates (PEM) besides the webpki roots; for tests
    /// against a server with a self-signed certificate.
    pub trusted_roots_pem: Vec<Vec<u8>>,
}

impl Default for EmailOptions {
    fn default() -> Self {
        EmailOptions {
            connect_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            max_connections: 10,
            idle_timeout: Duration::from_secs(60),
            trusted_roots_pem: vec![],
        }
    }
}

/// Registers the [`EmailChannel`] as `email`. A send gives up before the delivery core's
/// attempt timeout would cut it off (at 80 % of it), and never takes more than the default
/// 30 s.
pub fn register(registry: ChannelRegistry, settings: &Settings) -> ChannelRegistry {
    let defaults = EmailOptions::default();
    let attempt = Duration::from_millis(settings.attempt_timeout_ms.max(1));
    let send_timeout = defaults.send_timeout.min(attempt.mul_f64(0.8));
    let options = EmailOptions {
        connect_timeout: defaults.connect_timeout.min(send_timeout),
        send_timeout,
        ..defaults
    };
    registry.with("email", Arc::new(EmailChannel::new(options)))
}

/// (host, port, security, username, SHA-256 of the password): a changed password gets a new
/// transport. Only a digest of the password is kept here.
type TransportKey = (String, u16, &'static str, Option<String>, [u8; 32]);

/// The `email` channel.
pub struct EmailChannel {
    options: EmailOptions,
    transports: Mutex<HashMap<TransportKey, Arc<AsyncSmtpTransport<Tokio1Executor>>>>,
}

fn permanent(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Permanent {
        reason: reason.into(),
        status: None,
    }
}

fn security_name(security: SmtpSecurity) -> &'static str {
    match security {
        SmtpSecurity::None => "none",
        SmtpSecurity::Starttls => "starttls",
        SmtpSecurity::Tls => "tls",
    }
}

fn transport_key(smtp: &SmtpSection) -> TransportKey {
    let password = Sha256::digest(smtp.password.as_deref().unwrap_or_default().as_bytes());
    (
        smtp.host.clone(),
        smtp.port,
        security_name(smtp.security),
        smtp.username.clone(),
        password.into(),
    )
}

impl EmailChannel {
    pub fn new(options: EmailOptions) -> EmailChannel {
        EmailChannel {
            options,
            transports: Mutex::new(HashMap::new()),
        }
    }

    /// The pooled transport for `smtp`, built on first use (inside the runtime: the pool
    /// spawns its idle-connection reaper).
    fn transport(
        &self,
        smtp: &SmtpSection,
    ) -> Result<Arc<AsyncSmtpTransport<Tokio1Executor>>, String> {
        let key = transport_key(smtp);
        let mut transports = self
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(transport) = transports.get(&key) {
            return Ok(transport.clone());
        }
        let transport = Arc::new(self.build_transport(smtp)?);
        transports.insert(key, transport.clone());
        Ok(transport)
    }

    /// Forgets the transport of `smtp` if it is still `transport`: its pool may hold a
    /// connection left mid-command.
    fn forget(&self, smtp: &SmtpSection, transport: &Arc<AsyncSmtpTransport<Tokio1Executor>>) {
        let key = transport_key(smtp);
        let mut transports = self
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if transports
            .get(&key)
            .is_some_and(|current| Arc::ptr_eq(current, transport))
        {
            transports.remove(&key);
        }
    }

    fn tls_parameters(&self, host: &str) -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(host.to_string());
        for pem in &self.options.trusted_roots_pem {
            let cert = Certificate::from_pem(pem)
                .map_err(|_| "a trusted SMTP root certificate is not PEM".to_string())?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| format!("the SMTP TLS settings cannot be built: {e}"))
    }

    fn build_transport(
        &self,
        smtp: &SmtpSection,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = match smtp.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(self.tls_parameters(&smtp.host)?),
            SmtpSecurity::Tls => Tls::Wrapper(self.tls_parameters(&smtp.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(self.options.connect_timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(self.options.max_connections.max(1))
                    .idle_timeout(self.options.idle_timeout),
            );
        if let Some(username) = &smtp.username {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                smtp.password.clone().unwrap_or_default(),
            ));
        }
        Ok(builder.build())
    }

    /// Sends `delivery` to `address` once.
    async fn send(&self, delivery: &Delivery, address: &str, app: &AppConfig) -> DeliveryOutcome {
        let push = &delivery.push;
        if !message::emailed(push.kind) {
            return permanent(format!("{} pushes are never emailed", push.kind.as_str()));
        }
        let Some(smtp) = &app.smtp else {
            return permanent("the app has no smtp section");
        };
        let metadata_only = app.content.mode == ContentMode::MetadataOnly;
        let rendered = message::render(push, metadata_only, None);
        let email = match message::build(&delivery.id, &smtp.from, address, &rendered) {
            Ok(email) => email,
            Err(why) => return permanent(why),
        };
        let transport = match self.transport(smtp) {
            Ok(transport) => transport,
            Err(why) => return permanent(why),
        };
        let outcome =
            match tokio::time::timeout(self.options.send_timeout, transport.send(email)).await {
                Ok(Ok(response)) => delivered(&response),
                Ok(Err(e)) => classify(&e, smtp.security),
                Err(_) => {
                    self.forget(smtp, &transport);
                    timed_out()
                }
            };
        tracing::debug!(
            tenant.id = %delivery.tenant_id,
            delivery.id = %delivery.id,
            kind = push.kind.as_str(),
            to = %redact::mask(address),
            smtp.host = %smtp.host,
            smtp.port = smtp.port,
            outcome = ?outcome,
            "email attempt"
        );
        outcome
    }
}

#[async_trait]
impl Channel for EmailChannel {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        match &delivery.target {
            Target::Email { address } => self.send(delivery, address, app).await,
            Target::Device { .. } | Target::Webhook { .. } => {
                permanent("the email channel only carries email targets")
            }
        }
    }

    fn endpoint_key(&self, _delivery: &Delivery, app: &AppConfig) -> String {
        match &app.smtp {
            Some(smtp) => format!("smtp:{}:{}", smtp.host, smtp.port),
            None => "smtp:unconfigured".to_string(),
        }
    }
}
