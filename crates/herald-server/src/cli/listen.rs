//! `herald listen`: a live client that connects as a user and prints every frame it receives,
//! one JSON document per line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(clap::Args)]
pub struct ListenArgs {
    /// The user to listen as.
    #[arg(long)]
    user: String,
    /// Base URL of the server (default: the configuration's `listen` address).
    #[arg(long, env = "HERALD_URL")]
    url: Option<String>,
    /// A tenant server key, used to mint a client token for the user.
    #[arg(long, env = "HERALD_KEY")]
    key: Option<String>,
    /// File holding the server key (default: the `default` tenant's key file in the data
    /// folder).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// A client token to use instead of minting one.
    #[arg(long)]
    token: Option<String>,
    /// Resume a conversation after a position: `CONVERSATION=POSITION` (repeatable).
    #[arg(long = "resume", value_parser = parse_resume)]
    resume: Vec<(String, u64)>,
    /// Connect in the background state (the user counts as away).
    #[arg(long)]
    background: bool,
    /// Exit after this many `event` frames.
    #[arg(long)]
    count: Option<usize>,
    #[command(flatten)]
    location: super::Location,
}

/// Where the server is and which key mints the token: flags first, then the configuration
/// the server itself runs with (`--config`, `--data`, `HERALD_…`).
struct Target {
    url: String,
    key_file: PathBuf,
}

fn target(args: &ListenArgs) -> anyhow::Result<Target> {
    let config = args.location.load().map_err(anyhow::Error::msg)?;
    let url = match &args.url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", crate::config::reachable(config.listen)),
    };
    let key_file = args.key_file.clone().unwrap_or_else(|| {
        config
            .data_dir
            .join(herald_tenancy::tenants::DEFAULT_KEY_FILE)
    });
    Ok(Target { url, key_file })
}

fn parse_resume(s: &str) -> Result<(String, u64), String> {
    let (cid, pos) = s.split_once('=').ok_or("expected CONVERSATION=POSITION")?;
    Ok((
        cid.to_string(),
        pos.parse().map_err(|_| "POSITION must be a number")?,
    ))
}

async fn client_token(args: &ListenArgs, target: &Target) -> anyhow::Result<String> {
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    let key = match &args.key {
        Some(key) => key.clone(),
        None => std::fs::read_to_string(&target.key_file)
            .with_context(|| {
                format!(
                    "no --key given and cannot read {}",
                    target.key_file.display()
                )
            })?
            .trim()
            .to_string(),
    };
    let url = format!("{}/v1/users/{}/tokens", target.url, args.user);
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("the token response is not JSON")?;
    if !status.is_success() {
        bail!(
            "minting a token failed ({status}): {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    body["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the token response has no token"))
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let target = target(&args)?;
    let token = client_token(&args, &target).await?;
    let ws_url = format!(
        "{}/v1/live{}",
        target.url.replacen("http", "ws", 1),
        if args.background {
            "?state=background"
        } else {
            ""
        }
    );
    let mut request = ws_url.as_str().into_client_request().context("bad --url")?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().context("bad token")?,
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("cannot connect to {ws_url}"))?;
    let positions: serde_json::Map<String, Value> = args
        .resume
        .iter()
        .map(|(c, p)| (c.clone(), json!(p)))
        .collect();
    socket
        .send(Message::text(
            json!({"type": "resume", "positions": positions}).to_string(),
        ))
        .await?;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(10));
    let mut events = 0;
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    // Our own heartbeats' answers are noise to a reader.
                    if frame["type"] != "pong" {
                        println!("{text}");
                    }
                    if frame["type"] == "hello" && let Some(ms) = frame["heartbeat_ms"].as_u64() {
                        heartbeat = tokio::time::interval(Duration::from_millis(ms.max(100) / 2));
                    }
                    if frame["type"] == "event" {
                        events += 1;
                        if args.count.is_some_and(|n| events >= n) {
                            let _ = socket.close(None).await;
                            return Ok(());
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    eprintln!("closed by the server{}", frame.map(|f| format!(": {}", f.reason)).unwrap_or_default());
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("connection failed"),
                None => return Ok(()),
            },
            _ = heartbeat.tick() => socket.send(Message::text(r#"{"type":"ping"}"#)).await?,
            _ = tokio::signal::ctrl_c() => {
                let _ = socket.close(None).await;
                return Ok(());
            }
        }
    }
}
