//! Operator commands on the store.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use herald_engine::ids::{AppId, KeyId, TenantId, UserId};
use time::OffsetDateTime;

use crate::config::Config;
use crate::server::open_backend;
use herald_tenancy::auth::{keys, tokens};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first server key (printed once).
    Create {
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a server key (printed once).
    Create {
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List a tenant's keys (never their secrets).
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Revoke a key by its id (`key_…`).
    Revoke {
        key_id: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Create or replace an app from a JSON file.
    Put {
        app_id: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Generate a new VAPID key pair although the app has one (breaks every existing
        /// browser subscription).
        #[arg(long)]
        rotate_vapid_keys: bool,
    },
    /// Print an app (secrets masked).
    Get {
        app_id: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// List a user's devices.
    List {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Mint a client token for a user.
    Mint {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

fn tenant_id(s: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(s).map_err(|e| anyhow!("tenant id {e}"))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn require_tenant(
    store: &dyn herald_engine::store::Store,
    id: &TenantId,
) -> anyhow::Result<herald_engine::tenant::TenantAuth> {
    store
        .get_tenant(id)
        .await?
        .map(|(_, auth)| auth)
        .ok_or_else(|| anyhow!("no tenant `{id}`"))
}

pub async fn tenant(command: TenantCommand, config: &Config) -> anyhow::Result<()> {
    let backend = open_backend(config).await?;
    match command {
        TenantCommand::Create { id, name } => {
            let id = tenant_id(&id)?;
            let name = name.unwrap_or_else(|| id.to_string());
            let key = herald_tenancy::tenants::create_tenant(
                backend.store.as_ref(),
                &backend.sealer,
                &id,
                &name,
                now(),
            )
            .await
            .with_context(|| format!("cannot create tenant `{id}`"))?;
            println!(
                "Created tenant `{id}`. Its server key ({}), shown once:\n\n    {}",
                key.key.id, key.secret
            );
            Ok(())
        }
        TenantCommand::List => print_json(&backend.store.list_tenants().await?),
    }
}

pub async fn key(command: KeyCommand, config: &Config) -> anyhow::Result<()> {
    let backend = open_backend(config).await?;
    let store = backend.store.as_ref();
    match command {
        KeyCommand::Create { tenant, name } => {
            let tenant = tenant_id(&tenant)?;
            require_tenant(store, &tenant).await?;
            let key = keys::create(store, &tenant, name.as_deref().unwrap_or("cli"), now()).await?;
            println!(
                "Created key {} for tenant `{tenant}`, shown once:\n\n    {}",
                key.key.id, key.secret
            );
            Ok(())
        }
        KeyCommand::List { tenant } => {
            print_json(&store.list_api_keys(&tenant_id(&tenant)?).await?)
        }
        KeyCommand::Revoke { key_id, tenant } => {
            let id = KeyId::parse(key_id).map_err(|e| anyhow!("key id {e}"))?;
            if store
                .revoke_api_key(&tenant_id(&tenant)?, &id, now())
                .await?
            {
                println!("Revoked {id}.");
                Ok(())
            } else {
                Err(anyhow!("no key {id} in tenant `{tenant}`"))
            }
        }
    }
}

pub async fn app(command: AppCommand, config: &Config) -> anyhow::Result<()> {
    let backend = open_backend(config).await?;
    match command {
        AppCommand::Put {
            app_id,
            file,
            tenant,
            rotate_vapid_keys,
        } => {
            let tenant = tenant_id(&tenant)?;
            require_tenant(backend.store.as_ref(), &tenant).await?;
            let app_id = AppId::parse(app_id).map_err(|e| anyhow!("app id {e}"))?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let document = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let (created, masked) = herald_tenancy::apps::store_app(
                backend.store.as_ref(),
                &backend.sealer,
                &tenant,
                &app_id,
                document,
                now(),
                herald_tenancy::apps::StoreOptions { rotate_vapid_keys },
            )
            .await
            .map_err(|e| anyhow!("{}", herald_api::error::ApiError::from(e).problem().detail))?;
            eprintln!(
                "{} app `{app_id}`.",
                if created { "Created" } else { "Replaced" }
            );
            print_json(&masked)
        }
        AppCommand::Get { app_id, tenant } => {
            let app_id = AppId::parse(app_id).map_err(|e| anyhow!("app id {e}"))?;
            let app = backend
                .store
                .get_app(&tenant_id(&tenant)?, &app_id)
                .await?
                .ok_or_else(|| anyhow!("no app `{app_id}`"))?;
            print_json(&app.document)
        }
    }
}

pub async fn device(command: DeviceCommand, config: &Config) -> anyhow::Result<()> {
    let backend = open_backend(config).await?;
    match command {
        DeviceCommand::List { user, tenant } => {
            let user = UserId::parse(user).map_err(|e| anyhow!("user id {e}"))?;
            print_json(
                &backend
                    .store
                    .list_devices(&tenant_id(&tenant)?, &user)
                    .await?,
            )
        }
    }
}

pub async fn token(command: TokenCommand, config: &Config) -> anyhow::Result<()> {
    let backend = open_backend(config).await?;
    match command {
        TokenCommand::Mint { user, tenant, ttl } => {
            let tenant = tenant_id(&tenant)?;
            let user = UserId::parse(user).map_err(|e| anyhow!("user id {e}"))?;
            let auth = require_tenant(backend.store.as_ref(), &tenant).await?;
            let secrets = tokens::TenantSecrets::open(&backend.sealer, &tenant, &auth)
                .ok_or_else(|| anyhow!("cannot open the tenant's secrets: wrong master key?"))?;
            let (token, _) = tokens::mint(&secrets, &tenant, &user, now(), ttl);
            println!("{token}");
            Ok(())
        }
    }
}
