//! `mrci`: run and administer an MRCI host.
//!
//! `mrci host run` is the quick-start command: with no arguments and no config file it serves on
//! the default address with a data directory, database and self-signed certificate created on
//! first start. The other `host` subcommands work on the same data directory while the host is
//! running or not.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};
use mrci_host::{Config, admin, host::Clock};

#[derive(Parser)]
#[command(
    name = "mrci",
    version,
    about = "MRCI: Modular Remote Command Interpreter"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run and administer the host.
    #[command(subcommand)]
    Host(HostCmd),
}

#[derive(clap::Args)]
struct Common {
    /// TOML configuration file; every setting has a default, so none is needed.
    #[arg(long, short, env = "MRCI_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, certificate, runtime files); overrides the config file.
    #[arg(long, env = "MRCI_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl Common {
    fn load(&self) -> anyhow::Result<Config> {
        let mut config =
            Config::load(self.config.as_deref()).context("cannot load the configuration")?;
        if let Some(dir) = &self.data_dir {
            config.data_dir.clone_from(dir);
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
enum HostCmd {
    /// Run the host in the foreground until SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        common: Common,
        /// Address to listen on, e.g. 0.0.0.0:35516; overrides the config file.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Create a rank-1 (admin group) user and print a one-time password.
    AddAdmin {
        #[command(flatten)]
        common: Common,
        /// The new user's name (2-24 characters, no spaces).
        name: String,
    },
    /// Move an existing user into the admin group (host rank 1).
    Elevate {
        #[command(flatten)]
        common: Common,
        /// The user to elevate.
        name: String,
    },
    /// Show the data directory, accounts, certificate and whether the host answers.
    Status {
        #[command(flatten)]
        common: Common,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Command::Host(cmd) = cli.command;
    match cmd {
        HostCmd::Run { common, listen } => {
            let mut config = common.load()?;
            if let Some(addr) = listen {
                config.listen = addr;
            }
            serve(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        HostCmd::AddAdmin { common, name } => {
            let config = common.load()?;
            let password = admin::add_admin(&config, &name).await?;
            println!("Created user {name} in the admin group (host rank 1).");
            println!("One-time password: {password}");
            println!(
                "It is shown only now; the user must choose a new password at the first login."
            );
            Ok(ExitCode::SUCCESS)
        }
        HostCmd::Elevate { common, name } => {
            let config = common.load()?;
            admin::elevate(&config, &name).await?;
            println!(
                "{name} is now in the admin group (host rank 1). Logged-in sessions get the new rank at their next login."
            );
            Ok(ExitCode::SUCCESS)
        }
        HostCmd::Status { common } => {
            let config = common.load()?;
            let status = admin::status(&config).await?;
            print!("{status}");
            Ok(if status.listening {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let ctx = mrci_host::HostCtx::open(config, Clock::system())
        .await
        .context("cannot open the host")?;
    let host = mrci_host::Host::bind(ctx.clone())
        .await
        .context("cannot listen")?;
    let addr = host.local_addr()?;
    println!("MRCI host listening on {addr}");
    println!("data directory: {}", ctx.config.data_dir.display());
    println!("certificate SHA-256 fingerprint: {}", ctx.tls.fingerprint);
    host.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the host");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
