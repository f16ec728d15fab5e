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

/// jemalloc gives memory back to the system soon after it is freed (glibc's allocator keeps a
/// host's high-water mark); its decay settings are in `.cargo/config.toml`, see README "Memory".
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
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
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
    /// Show the data directory, accounts, certificate and whether this data directory's
    /// host runs (exit code 3 when it does not; on a cluster node, also the nodes heard on
    /// NATS with their sessions).
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
    /// Ban addresses (works while the host runs or not; a running host is told).
    #[command(subcommand)]
    Ban(BanCmd),
    /// Certificates per common name (a running host is told to reload them).
    #[command(subcommand)]
    Cert(CertCmd),
    /// Give a user (for instance one who is locked out) a new one-time password that must be
    /// changed at the next login, and end the pauses of its failed logins.
    Passwd {
        #[command(flatten)]
        common: Common,
        /// The user.
        name: String,
    },
}

#[derive(Subcommand)]
enum BanCmd {
    /// Ban an address or CIDR range.
    Add {
        #[command(flatten)]
        common: Common,
        /// An IPv4 or IPv6 address, or a range such as 203.0.113.0/24.
        ip: String,
        /// End the ban after this many seconds (default: never).
        #[arg(long)]
        expire_secs: Option<u32>,
        /// A note shown by `ls`.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a ban.
    Rm {
        #[command(flatten)]
        common: Common,
        /// The address or range as it was banned.
        ip: String,
    },
    /// List the bans.
    Ls {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum CertCmd {
    /// Add or replace the certificate served to clients asking for a common name.
    Add {
        #[command(flatten)]
        common: Common,
        /// The common name.
        name: String,
        /// PEM certificate chain.
        #[arg(long)]
        cert: PathBuf,
        /// PEM private key.
        #[arg(long)]
        key: PathBuf,
    },
    /// Remove the certificate of a common name.
    Rm {
        #[command(flatten)]
        common: Common,
        /// The common name.
        name: String,
    },
    /// List the certificates.
    Ls {
        #[command(flatten)]
        common: Common,
    },
    /// Show a certificate (default: the one served by default).
    Info {
        #[command(flatten)]
        common: Common,
        /// The common name.
        name: Option<String>,
    },
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object a line, for log collectors.
    Json,
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
    init_logging(cli.log_format);
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
            // Read again at every restart and reload (SIGHUP).
            let load = move || {
                let mut config = common
                    .load()
                    .map_err(|e| mrci_host::Error::Config(format!("{e:#}")))?;
                if let Some(addr) = listen {
                    config.listen = addr;
                }
                if config.modules.launcher.is_none() {
                    // This binary confines module processes through its hidden subcommand.
                    config.modules.launcher = std::env::current_exe().ok();
                }
                Ok(config)
            };
            serve(load).await?;
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
        other => host_admin(other).await,
    }
}

/// Logs to stderr (colours only on a terminal, or JSON lines) and feeds `ls_dbg`'s store.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt.json().with_ansi(false).boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(mrci_host::debug_log::layer())
        .init();
}

/// Tells the host recorded in the data directory, if one runs, to reload (SIGHUP).
fn tell_running_host(config: &Config) {
    if let Some((pid, _)) = admin::PidFile::running(&config.data_dir) {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        match nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP) {
            Ok(()) => println!("The running host (pid {pid}) was told to reload."),
            Err(e) => eprintln!("warning: cannot signal the running host (pid {pid}): {e}"),
        }
    }
}

fn print_cert(name: &str, info: &mrci_host::tls::CertInfo) {
    println!("common name: {name}");
    println!("subject:     {}", info.subject);
    println!("issuer:      {}", info.issuer);
    println!(
        "self-signed: {}",
        if info.self_signed { "yes" } else { "no" }
    );
    println!("not before:  {}", info.not_before);
    println!("not after:   {}", info.not_after);
    println!("SHA-256:     {}", info.fingerprint);
}

async fn host_admin(cmd: HostCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        HostCmd::Ban(BanCmd::Add {
            common,
            ip,
            expire_secs,
            reason,
        }) => {
            let config = common.load()?;
            let net = admin::ban_add(&config, &ip, expire_secs.map(i64::from), &reason).await?;
            println!("Banned {net}.");
            tell_running_host(&config);
        }
        HostCmd::Ban(BanCmd::Rm { common, ip }) => {
            let config = common.load()?;
            if admin::ban_rm(&config, &ip).await? {
                println!("Ban lifted.");
            } else {
                println!("{ip} was not banned.");
            }
        }
        HostCmd::Ban(BanCmd::Ls { common }) => {
            let config = common.load()?;
            for ban in admin::bans(&config).await? {
                let expires = ban
                    .expires_at
                    .map_or_else(|| "never".to_owned(), |t| t.to_string());
                println!(
                    "{}\t{}\texpires {expires}\t{}",
                    ban.time_stamp, ban.ip_address, ban.reason
                );
            }
        }
        HostCmd::Cert(CertCmd::Add {
            common,
            name,
            cert,
            key,
        }) => {
            let config = common.load()?;
            let info = admin::cert_add(&config, &name, &cert, &key)?;
            println!(
                "Certificate for {name} stored (SHA-256 {}).",
                info.fingerprint
            );
            tell_running_host(&config);
        }
        HostCmd::Cert(CertCmd::Rm { common, name }) => {
            let config = common.load()?;
            if admin::cert_rm(&config, &name)? {
                println!("Certificate for {name} removed.");
                tell_running_host(&config);
            } else {
                anyhow::bail!("no certificate was added for {name}");
            }
        }
        HostCmd::Cert(CertCmd::Ls { common }) => {
            let config = common.load()?;
            for (name, info) in admin::certs(&config) {
                let name = if name.is_empty() { "(default)" } else { &name };
                println!("{name}\t{}\t{}", info.not_after, info.fingerprint);
            }
        }
        HostCmd::Cert(CertCmd::Info { common, name }) => {
            let config = common.load()?;
            let wanted = name.clone().unwrap_or_default().to_ascii_lowercase();
            let Some((_, info)) = admin::certs(&config)
                .into_iter()
                .find(|(n, _)| *n == wanted)
            else {
                anyhow::bail!("no such certificate");
            };
            print_cert(name.as_deref().unwrap_or("(default)"), &info);
        }
        HostCmd::Passwd { common, name } => {
            let config = common.load()?;
            let password = admin::passwd(&config, &name).await?;
            println!("New one-time password for {name}: {password}");
            println!(
                "It is shown only now; the user must choose a new password at the next login."
            );
        }
        _ => unreachable!("handled by run"),
    }
    Ok(ExitCode::SUCCESS)
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

async fn serve(
    mut load: impl FnMut() -> mrci_host::Result<Config> + Send + 'static,
) -> anyhow::Result<()> {
    raise_open_file_limit();
    let first = load().context("cannot load the configuration")?;
    let mut pid_file = admin::PidFile::create(&first.data_dir)?;
    let mut first = Some(first);
    let load = move || match first.take() {
        Some(config) => Ok(config),
        None => load(),
    };
    let reload = std::sync::Arc::new(tokio::sync::Notify::new());
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            let reload = std::sync::Arc::clone(&reload);
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration and certificates");
                    reload.notify_one();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot watch SIGHUP; reload by restarting"),
    }
    let started = |ctx: &std::sync::Arc<mrci_host::HostCtx>, addr: std::net::SocketAddr| {
        if let Err(e) = pid_file.record(addr) {
            tracing::warn!(error = %e, "cannot record the host in its data directory");
        }
        println!("MRCI host listening on {addr}");
        println!("data directory: {}", ctx.config.data_dir.display());
        println!("certificate SHA-256 fingerprint: {}", ctx.fingerprint());
    };
    mrci_host::listener::run_until_closed(
        load,
        Clock::system(),
        shutdown_signal(),
        reload,
        started,
    )
    .await
    .context("the host stopped")?;
    Ok(())
}

/// Completes at SIGINT or SIGTERM. The handlers are installed before this returns, so a
/// signal that arrives while the host starts is not lost to the default action.
fn shutdown_signal() -> impl Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the host");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
