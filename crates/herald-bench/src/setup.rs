//! Setup shared by the scenarios that push: away users, each alone with Herald in their own
//! conversation, with one device registered through the client API.

use anyhow::Context;
use serde_json::{Value, json};

use crate::herald::Herald;

/// User `i`'s device token: 64 hex digits, as APNs tokens are.
pub fn device_token(user: usize) -> String {
    format!("{user:064x}")
}

/// For every `i < users`: `{prefix}-user-{i}` joins `{prefix}-conv-{i}` as a visitor, gets a
/// client token and registers `device(i)` with it, over `clients` concurrent HTTP clients.
pub async fn away_users(
    server: &Herald,
    client: &reqwest::Client,
    prefix: &str,
    users: usize,
    clients: usize,
    device: impl Fn(usize) -> Value,
) -> anyhow::Result<()> {
    let clients = clients.clamp(1, users.max(1));
    let mut setup = tokio::task::JoinSet::new();
    for worker in 0..clients {
        let client = client.clone();
        let base = server.base.clone();
        let key = server.key.clone();
        let prefix = prefix.to_string();
        let devices: Vec<(usize, Value)> = (worker..users)
            .step_by(clients)
            .map(|i| (i, device(i)))
            .collect();
        setup.spawn(async move {
            for (i, device) in devices {
                let user = format!("{prefix}-user-{i}");
                client
                    .put(format!(
                        "{base}/v1/conversations/{prefix}-conv-{i}/participants/{user}"
                    ))
                    .bearer_auth(&key)
                    .json(&json!({"role": "visitor"}))
                    .send()
                    .await?
                    .error_for_status()?;
                let minted: Value = client
                    .post(format!("{base}/v1/users/{user}/tokens"))
                    .bearer_auth(&key)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let user_token = minted["token"].as_str().context("token")?.to_string();
                client
                    .post(format!("{base}/v1/me/devices"))
                    .bearer_auth(&user_token)
                    .json(&device)
                    .send()
                    .await?
                    .error_for_status()?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = setup.join_next().await {
        done??;
    }
    Ok(())
}
