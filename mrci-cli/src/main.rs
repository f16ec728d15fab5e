//! `mrci`: run and administer an MRCI host.
//!
//! `mrci host run` is the quick-start command: with no arguments and no config file it serves on
//! the default address with a data directory, database and self-signed certificate created on
//! first start. The other `host` subcommands work on the same data directory while the host is
//! running or not.
//!
//! `mrci connect` is the interactive terminal client and `mrci run` its scripted form; both
//! live in [`term`], a user interface over the [`mrci_cli::client`] library.
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

mod term;

/// mimalloc gives memory back to the system soon after it is freed (glibc's allocator keeps a
/// host's high-water mark); see README "Memory".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Connect to a host and type commands (interactive).
    Connect {
        #[command(flatten)]
        conn: ConnArgs,
        /// Log in as this user once connected.
        #[arg(long, short, env = "MRCI_USER")]
        user: Option<String>,
    },
    /// Run commands on a host from a shell script or CI: TEXT goes to stdout, ERR to stderr,
    /// and the exit code is 1 after an ERR (2 when the login fails).
    Run {
        #[command(flatten)]
        conn: ConnArgs,
        /// Log in as this user first.
        #[arg(long, short, env = "MRCI_USER")]
        user: Option<String>,
        /// Read the password from the first line of this file (else the MRCI_PASSWORD
        /// environment variable, else a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Run the command lines of this file (one a line; `#` starts a comment).
        #[arg(long, conflicts_with = "command")]
        script: Option<PathBuf>,
        /// The command and its arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required_unless_present = "script"
        )]
        command: Vec<String>,
    },
}

/// Where to connect and how to trust the host's certificate.
#[derive(clap::Args)]
struct ConnArgs {
    /// `HOST[:PORT]`; the port defaults to 35516.
    target: mrci_cli::client::Target,
    /// Known-hosts file pinning certificate fingerprints (default:
    /// ~/.config/mrci/known_hosts).
    #[arg(long, env = "MRCI_KNOWN_HOSTS")]
    known_hosts: Option<PathBuf>,
    /// Trust and pin the certificate of a host seen for the first time without asking.
    #[arg(long)]
    accept_new: bool,
    /// Verify the host's certificate against the CA certificates in this PEM file instead of
    /// pinning it.
    #[arg(long, conflicts_with_all = ["known_hosts", "accept_new"])]
    ca: Option<PathBuf>,
    /// The certificate common name to ask the host for (default: any with pinning, the host
    /// name with --ca).
    #[arg(long)]
    cn: Option<String>,
}

impl ConnArgs {
    fn into_connect(self) -> anyhow::Result<term::connect::Connect> {
        use term::connect::{Connect, NewHost, default_known_hosts};
        let connect = match self.ca {
            Some(ca) => Connect::ca(self.target, &ca)?,
            None => {
                let path = match self.known_hosts {
                    Some(path) => path,
                    None => default_known_hosts()?,
                };
                let new_host = if self.accept_new {
                    NewHost::Accept
                } else {
                    NewHost::Ask
                };
                Connect::pinned(self.target, path, new_host)
            }
        };
        Ok(connect.common_name(self.cn))
    }
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
    /// Show the data directory, accounts, certificate and whether the host answers (and, on
    /// a cluster node, the nodes heard on NATS with their sessions).
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Copy this host's SQLite data into an empty PostgreSQL database (stop the host first).
    Migrate {
        #[command(flatten)]
        common: Common,
        /// The target, postgres://user@host:port/database.
        #[arg(long)]
        to: String,
    },
}

fn main() -> ExitCode {
    // The hidden `confine-module` subcommand is how the host starts a module process
    // (`mrci_modrun::confine`): handled before clap, threads and the logger, so that its
    // arguments reach the module verbatim and nothing runs beside the launcher.
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == mrci_modrun::confine::SUBCOMMAND)
    {
        let Err(e) = mrci_modrun::confine::exec(args);
        eprintln!("mrci: cannot start the module: {e}");
        return ExitCode::from(127);
    }
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
    let cmd = match cli.command {
        Command::Host(cmd) => cmd,
        Command::Connect { conn, user } => {
            let opts = term::repl::ReplOpts {
                connect: conn.into_connect()?,
                user,
            };
            return term::repl::run(opts).await;
        }
        Command::Run {
            conn,
            user,
            password_file,
            script,
            command,
        } => {
            let lines = match script {
                Some(path) => term::script::script_lines(
                    &std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                ),
                None => vec![term::script::join_args(&command)],
            };
            let opts = term::script::ScriptOpts {
                connect: conn.into_connect()?,
                user,
                password: match password_file {
                    Some(path) => term::script::PasswordSource::File(path),
                    None => term::script::PasswordSource::EnvOrPrompt,
                },
                lines,
            };
            return term::script::run(opts).await;
        }
    };
    match cmd {
        HostCmd::Run { common, listen } => {
            let mut config = common.load()?;
            if let Some(addr) = listen {
                config.listen = addr;
            }
            if config.modules.launcher.is_none() {
                // This binary confines module processes through its hidden subcommand.
                config.modules.launcher = std::env::current_exe().ok();
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
        HostCmd::Migrate { common, to } => {
            let config = common.load()?;
            for table in admin::migrate_to(&config, &to).await? {
                println!("{:>8} {}", table.rows, table.table);
            }
            println!(
                "Copied. Set [cluster] database_url = \"{to}\" in the configuration to use it."
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

/// Raises the soft open-file limit to the hard one: every session holds a socket, and
/// the usual soft default of 1,024 would cap the host far below `limits.max_sessions`.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    raise_open_file_limit();
    let ctx = mrci_host::HostCtx::open(config, Clock::system())
        .await
        .context("cannot open the host")?;
    let host = mrci_host::Host::bind(ctx.clone())
        .await
        .context("cannot listen")?;
    let addr = host.local_addr()?;
    println!("MRCI host listening on {addr}");
    println!("data directory: {}", ctx.config.data_dir.display());
    println!("certificate SHA-256 fingerprint: {}", ctx.fingerprint());
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
