//! The `herald` command line. `serve` runs the server; the operator commands work directly on
//! the store named by `--data`/`--config` (SQLite allows this while the server runs); `listen`
//! is a live client for demos and debugging.

mod listen;
mod operator;
mod push;
mod why;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Herald: a conversation-aware push notification hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration and data live (shared by every command that opens the store).
#[derive(clap::Args, Clone)]
pub struct Location {
    /// TOML configuration file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data folder (overrides `data_dir`).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

impl Location {
    fn load(&self) -> Result<Config, String> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(data) = &self.data {
            config.data_dir = data.clone();
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded default: SQLite in ./herald-data, 127.0.0.1:8080).
    Serve {
        /// Address to listen on (overrides `listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        location: Location,
    },
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: operator::TenantCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Tenant server keys.
    Key {
        #[command(subcommand)]
        command: operator::KeyCommand,
        #[command(flatten)]
        location: Location,
    },
    /// App (push configuration) documents.
    App {
        #[command(subcommand)]
        command: operator::AppCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Devices.
    Device {
        #[command(subcommand)]
        command: operator::DeviceCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Client tokens.
    Token {
        #[command(subcommand)]
        command: operator::TokenCommand,
        #[command(flatten)]
        location: Location,
    },
    /// Connect to a running server as a user and print every frame received.
    Listen(listen::ListenArgs),
    /// A user's recent notification decisions, sent or not, with the reason and each
    /// delivery's attempts.
    Why {
        #[command(flatten)]
        args: why::WhyArgs,
        #[command(flatten)]
        location: Location,
    },
    /// Test pushes.
    Push {
        #[command(subcommand)]
        command: push::PushCommand,
        #[command(flatten)]
        location: Location,
    },
}

pub fn main() -> ExitCode {
    // Both TLS providers may be compiled in through dependencies; choosing one explicitly
    // keeps rustls from panicking when it cannot pick a default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::telemetry::report_fatal(&e);
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { listen, location } => {
            let mut config = location.load().map_err(anyhow::Error::msg)?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            crate::telemetry::init_logging(&config.log);
            let server = crate::server::Server::with_system_clock(config).await?;
            crate::telemetry::announce_listening(server.local_addr());
            server.run(crate::server::shutdown_signal()).await
        }
        Command::Tenant { command, location } => {
            operator::tenant(command, &location.load().map_err(anyhow::Error::msg)?).await
        }
        Command::Key { command, location } => {
            operator::key(command, &location.load().map_err(anyhow::Error::msg)?).await
        }
        Command::App { command, location } => {
            operator::app(command, &location.load().map_err(anyhow::Error::msg)?).await
        }
        Command::Device { command, location } => {
            operator::device(command, &location.load().map_err(anyhow::Error::msg)?).await
        }
        Command::Token { command, location } => {
            operator::token(command, &location.load().map_err(anyhow::Error::msg)?).await
        }
        Command::Listen(args) => listen::run(args).await,
        Command::Why { args, location } => {
            why::run(args, &location.load().map_err(anyhow::Error::msg)?).await
        }
        Command::Push { command, location } => {
            push::push(command, &location.load().map_err(anyhow::Error::msg)?).await
        }
    }
}
