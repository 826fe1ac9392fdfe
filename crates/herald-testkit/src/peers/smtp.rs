//! A real SMTP server in tests: aiosmtpd (PyPI, installed by `scripts/test`) around a small
//! script that reports every message as JSON, parsed by Python's own `email` module.

use std::process::Stdio;
use std::time::Duration as StdDuration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::PATIENCE;

/// The SMTP peer: an asyncio server around `aiosmtpd.smtp.SMTP`. Its configuration comes as
/// JSON in argv[1]: `security` (`none` | `starttls` | `tls`), `users` ({login: password}: AUTH
/// required), `rcpt_replies` ({address prefix: reply}). It prints `{"port", "cert_pem"}`
/// first, then one JSON line per message; it exits when its stdin closes.
const PEER: &str = r#"
import asyncio, datetime, email, ipaddress, json, os, ssl, sys, tempfile, threading
from email import policy
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

cfg = json.loads(sys.argv[1])
security = cfg.get("security", "none")
users = cfg.get("users", {})
rcpt_replies = cfg.get("rcpt_replies", {})

def self_signed():
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "herald smtp peer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    folder = tempfile.mkdtemp()
    cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(cert_file, "wb") as f:
        f.write(cert_pem)
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, cert_pem.decode()

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
        and users.get(auth_data.login.decode()) == auth_data.password.decode())
    return AuthResult(success=ok, auth_data=auth_data if ok else None, handled=False)

def lines(part):
    """A decoded body with its CRLF line ends as newlines."""
    return None if part is None else part.get_content().replace("\r\n", "\n")

class Handler:
    def __init__(self):
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for prefix, reply in rcpt_replies.items():
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        raw = envelope.original_content
        msg = email.message_from_bytes(raw, policy=policy.default)
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = [session.auth_data.login.decode(), session.auth_data.password.decode()]
        tls = (session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None)
        names = ("From", "To", "Subject", "Message-ID", "Date", "Auto-Submitted",
            "MIME-Version", "List-Unsubscribe")
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": tls,
            "login": login,
            "headers": {k: str(msg[k]) for k in names if msg[k] is not None},
            "parts": [p.get_content_type() for p in msg.walk()],
            "text": lines(plain),
            "html": lines(html),
            "raw": raw.decode("ascii", "replace"),
        }), flush=True)
        return f"250 2.0.0 Ok: queued as Q{self.n}"

async def main():
    ctx, cert_pem = (None, None)
    if security in ("starttls", "tls"):
        ctx, cert_pem = self_signed()
    kwargs = {"hostname": "peer.test", "auth_require_tls": security == "starttls"}
    if users:
        kwargs.update(authenticator=authenticator, auth_required=True)
    if security == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kwargs), "127.0.0.1", 0,
        ssl=ctx if security == "tls" else None)
    print(json.dumps({"port": server.sockets[0].getsockname()[1], "cert_pem": cert_pem}),
        flush=True)
    await server.serve_forever()

def exit_with_stdin():
    sys.stdin.read()
    os._exit(0)

threading.Thread(target=exit_with_stdin, daemon=True).start()
asyncio.run(main())
"#;

pub struct SmtpPeer {
    pub port: u16,
    /// The self-signed certificate of a TLS peer.
    pub cert_pem: Option<String>,
    received: mpsc::UnboundedReceiver<Value>,
    _child: Child,
}

impl SmtpPeer {
    pub async fn start(config: Value) -> SmtpPeer {
        let python = crate::python::interpreter();
        let mut child = Command::new(&python)
            .args(["-c", PEER, &config.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {python} ({e}); run the tests with scripts/test")
            });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = tokio::time::timeout(StdDuration::from_secs(60), lines.next_line())
            .await
            .expect("the SMTP peer starts within a minute")
            .expect("the SMTP peer's stdout")
            .unwrap_or_else(|| {
                panic!(
                    "the SMTP peer exited at start (is aiosmtpd installed? run the tests with scripts/test)"
                )
            });
        let hello: Value = serde_json::from_str(&first).expect("the peer's first line is JSON");
        let (tx, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let record: Value = serde_json::from_str(&line).expect("the peer writes JSON");
                if tx.send(record).is_err() {
                    break;
                }
            }
        });
        SmtpPeer {
            port: hello["port"].as_u64().expect("port") as u16,
            cert_pem: hello["cert_pem"].as_str().map(str::to_string),
            received,
            _child: child,
        }
    }

    pub async fn plain() -> SmtpPeer {
        SmtpPeer::start(json!({"security": "none"})).await
    }

    /// The next message the peer received.
    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.received.recv())
            .await
            .expect("the SMTP peer received a message in time")
            .expect("the SMTP peer is running")
    }

    /// Nothing more arrives (the channel answered already, so anything would be here by now).
    pub async fn nothing_more(&mut self) {
        if let Ok(Some(record)) =
            tokio::time::timeout(StdDuration::from_millis(200), self.received.recv()).await
        {
            panic!("unexpected message: {record}");
        }
    }
}
