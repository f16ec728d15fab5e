//! `mrci-load`: the loopback load generator behind `cargo xtask bench`. Starts `mrci host
//! run` with a temporary data directory, runs the scenarios of [`mrci_benches::load`] against
//! it and against the built-in baseline, prints a table and writes `load.json`, `load.txt`,
//! `latency.svg`, `idle-sessions.svg` and the hosts' logs into the output directory. With
//! `--soak` it runs the soak instead and writes `soak.json`, `soak.txt`, `soak.svg` and
//! `soak-host.log`. With `--cluster` it runs only the cluster scenario (three hosts on
//! PostgreSQL and NATS next to a single host) and writes `cluster.json` and `cluster.txt`.
//!
//! It exits non-zero only on a real error (a host that does not start, a refused login, a
//! broken connection, a cast lost or damaged in the soak), never because a figure misses its
//! target.
#![forbid(unsafe_code)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use mrci_benches::load::{
    Plan, baseline::Baseline, cluster, connect, fanout, files, host, idle, login, modules,
    procfs::load_average, report::Report, roundtrip, soak,
};

const USAGE: &str = "\
usage: mrci-load [--quick] [--mrci PATH] [--module PATH] [--out DIR] [--only LIST]
                 [--sessions N]
       mrci-load --soak [--quick] [--duration TIME] [--mrci PATH] [--module PATH] [--out DIR]
       mrci-load --cluster [--quick] [--mrci PATH] [--out DIR]

  --quick      short smoke run (the load part in about a minute, 1,000 idle sessions; a
               30-second soak)
  --mrci PATH  the mrci binary (default: next to this one)
  --module PATH a module executable for the module scenario and the soak (default:
               examples/hello_module next to the mrci binary)
  --out DIR    where the results go (default: target/bench)
  --only LIST  comma-separated scenarios: rtt,connect,fanout,modules,login,idle,files
  --sessions N idle sessions to open (default 100,000; 1,000 with --quick)
  --soak       run the soak instead of the scenarios
  --duration TIME  how long the soak runs: 90s, 10m, 1h or seconds (default 10m; 30s with
               --quick)
  --cluster    only the cluster scenario: three hosts sharing a fresh PostgreSQL database
               (MRCI_TEST_PG) and NATS (a private nats-server, else MRCI_TEST_NATS), next to
               one SQLite host; prints SKIPPED without the services
";

const ALL: &str = "rtt,connect,fanout,modules,login,idle,files";

struct Options {
    quick: bool,
    mrci: PathBuf,
    module: Option<PathBuf>,
    out: PathBuf,
    only: String,
    sessions: Option<usize>,
    soak: bool,
    cluster: bool,
    duration: Option<Duration>,
}

fn options() -> anyhow::Result<Options> {
    let mut opts = Options {
        quick: false,
        mrci: host::default_mrci(),
        module: None,
        out: PathBuf::from("target/bench"),
        only: ALL.to_owned(),
        sessions: None,
        soak: false,
        cluster: false,
        duration: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--mrci" => opts.mrci = args.next().context("--mrci needs a path")?.into(),
            "--module" => opts.module = Some(args.next().context("--module needs a path")?.into()),
            "--out" => opts.out = args.next().context("--out needs a directory")?.into(),
            "--only" => opts.only = args.next().context("--only needs a list")?,
            "--sessions" => {
                let n = args.next().context("--sessions needs a number")?;
                opts.sessions = Some(n.replace([',', '_'], "").parse()?);
            }
            "--soak" => opts.soak = true,
            "--cluster" => opts.cluster = true,
            "--duration" => {
                let d = args.next().context("--duration needs a time")?;
                opts.duration = Some(parse_duration(&d)?);
            }
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(opts)
}

/// `90s`, `10m`, `1h` or plain seconds.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().with_context(|| format!("bad time {text}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("bad time {text}: use s, m or h"),
    };
    Ok(Duration::from_secs(secs))
}

/// Raises this process's open-file limit to at least `want` (the hard limit too, which
/// needs privilege) or else to the hard limit; returns the new soft limit. The host, a child,
/// inherits it.
fn raise_nofile(want: u64) -> anyhow::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(hard);
    let want = want.min(ceiling);
    if want > hard && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return Ok(want);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let mut plan = Plan::new(opts.quick);
    if let Some(n) = opts.sessions {
        plan.idle_sessions = n;
    }
    // Each idle session holds a descriptor here and one in the host (which inherits this
    // limit); leave room for the other scenarios' sessions and the files both keep open.
    let nofile = raise_nofile(u64::try_from(plan.idle_sessions)? + 20_000)?;
    let runtime = tokio::runtime::Runtime::new()?;
    if opts.soak {
        runtime.block_on(run_soak(opts, nofile))
    } else if opts.cluster {
        runtime.block_on(run_cluster(opts, plan))
    } else {
        runtime.block_on(run(opts, plan, nofile))
    }
}

/// The module executable: `--module`, or the `hello_module` example next to `mrci`.
fn module_path(opts: &Options) -> Option<PathBuf> {
    opts.module.clone().or_else(|| {
        let dir = opts.mrci.parent()?;
        Some(dir.join("examples").join("hello_module"))
    })
}

async fn run_soak(opts: Options, nofile: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let plan = soak::SoakPlan::new(opts.quick, opts.duration);
    let mut report = Report {
        quick: opts.quick,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        ..Report::default()
    };
    report.notes.push(format!(
        "soak: {} s, warm-up {} s, a reading every {} s; open-file limit {nofile}; host config: \
         limits.max_payload = {} (so a frame can announce more), cheap Argon2",
        plan.duration.as_secs(),
        plan.warm_up.as_secs(),
        plan.sample_every.as_secs(),
        soak::MAX_PAYLOAD
    ));
    report
        .notes
        .push(format!("load average before: {}", load_average()));
    println!("running: soak for {} s", plan.duration.as_secs());
    let verdict = soak::run(
        &opts.mrci,
        module_path(&opts).as_deref(),
        &opts.out,
        &plan,
        &mut report,
    )
    .await?;
    report
        .notes
        .push(format!("load average after: {}", load_average()));
    println!("\n{}", report.table());
    report.write_as(&opts.out, "soak")?;
    println!("results written to {}", opts.out.display());
    if verdict.failed() {
        bail!(
            "the soak found a real error: {} cast deliveries lost, duplicated, reordered or \
             corrupted; host: {}",
            verdict.delivery_faults,
            verdict.host_died.as_deref().unwrap_or("alive")
        );
    }
    Ok(())
}

async fn run_cluster(opts: Options, plan: Plan) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let mut report = Report {
        quick: opts.quick,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        ..Report::default()
    };
    report
        .notes
        .push(format!("load average before: {}", load_average()));
    println!("running: cluster");
    cluster::run(&opts.mrci, &opts.out, &plan, &mut report).await?;
    report
        .notes
        .push(format!("load average after: {}", load_average()));
    println!("\n{}", report.table());
    report.write_as(&opts.out, "cluster")?;
    println!("results written to {}", opts.out.display());
    Ok(())
}

async fn run(opts: Options, plan: Plan, nofile: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let base = Arc::new(Baseline::start()?);
    let host =
        Arc::new(host::HostProcess::start(&opts.mrci, 2_000, &opts.out.join("host.log")).await?);
    let mut report = Report {
        quick: plan.quick,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        ..Report::default()
    };
    report.notes.push(format!(
        "open-file limit: load generator {nofile}, host {} (mrci host run raises its soft limit to the hard one)",
        host.nofile_limit().unwrap_or_else(|| "unknown".into())
    ));
    report.notes.push(
        "host config: limits.max_sessions and the caps on sessions not logged in raised, \
         security.auth_attempts_per_minute = 0, Argon2id 64 KiB x 1 (cheap logins; the login \
         scenario's host keeps the default cost)"
            .into(),
    );
    report
        .notes
        .push(format!("load average before: {}", load_average()));
    for scenario in opts.only.split(',').map(str::trim) {
        println!("running: {scenario}");
        match scenario {
            "rtt" => roundtrip::run(&host, &base, &plan, &mut report).await?,
            "connect" => connect::run(&host, &base, &plan, &mut report).await?,
            "fanout" => fanout::run(&host, &base, &plan, &mut report).await?,
            "modules" => {
                modules::run(&host, module_path(&opts).as_deref(), &plan, &mut report).await?;
            }
            "login" => {
                login::run(&opts.mrci, &opts.out, &plan, &mut report).await?;
                let module = module_path(&opts);
                login::with_modules(&opts.mrci, module.as_deref(), &opts.out, &plan, &mut report)
                    .await?;
            }
            "idle" => idle::run(&opts.mrci, &opts.out, &plan, &mut report).await?,
            "files" => files::run(&opts.mrci, &opts.out, &base, &plan, &mut report).await?,
            other => bail!("unknown scenario {other}\n{USAGE}"),
        }
    }
    report
        .notes
        .push(format!("load average after: {}", load_average()));
    match Arc::try_unwrap(host) {
        Ok(host) => host.stop()?,
        Err(_) => bail!("a scenario kept the host"),
    }
    println!("\n{}", report.table());
    report.write(&opts.out)?;
    println!("results written to {}", opts.out.display());
    Ok(())
}
