//! `mrci-load`: the loopback load generator behind `cargo xtask bench`. Starts `mrci host
//! run` with a temporary data directory, runs the scenarios of [`mrci_benches::load`] against
//! it and against the built-in baseline, prints a table and writes `load.json`, `load.txt`,
//! `latency.svg` and `host.log` into the output directory.
//!
//! It exits non-zero only on a real error (a host that does not start, a refused login, a
//! broken connection), never because a figure misses its target.
#![forbid(unsafe_code)]

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use mrci_benches::load::{
    Plan, baseline::Baseline, connect, fanout, host, idle, modules, report::Report, roundtrip,
};

const USAGE: &str = "\
usage: mrci-load [--quick] [--mrci PATH] [--module PATH] [--out DIR] [--only LIST]

  --quick      short smoke run (under a minute; at most 1,000 idle sessions)
  --mrci PATH  the mrci binary (default: next to this one)
  --module PATH a module executable for the module scenario (default: examples/hello_module
               next to the mrci binary)
  --out DIR    where the results go (default: target/bench)
  --only LIST  comma-separated scenarios: connect,rtt,fanout,modules,idle
";

const ALL: &str = "rtt,connect,fanout,modules,idle";

struct Options {
    quick: bool,
    mrci: PathBuf,
    module: Option<PathBuf>,
    out: PathBuf,
    only: String,
}

fn options() -> anyhow::Result<Options> {
    let mut opts = Options {
        quick: false,
        mrci: host::default_mrci(),
        module: None,
        out: PathBuf::from("target/bench"),
        only: ALL.to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--mrci" => opts.mrci = args.next().context("--mrci needs a path")?.into(),
            "--module" => opts.module = Some(args.next().context("--module needs a path")?.into()),
            "--out" => opts.out = args.next().context("--out needs a directory")?.into(),
            "--only" => opts.only = args.next().context("--only needs a list")?,
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(opts)
}

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
fn raise_nofile() -> anyhow::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let plan = Plan::new(opts.quick);
    let nofile = raise_nofile()?;
    let most_idle = plan.idle_levels.iter().copied().max().unwrap_or(1);
    // Each idle session holds a descriptor here and one in the host (which inherits this
    // limit); leave room for the other scenarios' sessions and the files both keep open.
    if opts.only.contains("idle") && u64::try_from(most_idle)? + 200 > nofile {
        bail!("the open-file limit ({nofile}) is too low for {most_idle} idle sessions");
    }
    tokio::runtime::Runtime::new()?.block_on(run(opts, plan, nofile))
}

async fn run(opts: Options, plan: Plan, nofile: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let most_idle = plan.idle_levels.iter().copied().max().unwrap_or(1);
    let base = Arc::new(Baseline::start()?);
    let host = Arc::new(
        host::HostProcess::start(&opts.mrci, most_idle + 500, &opts.out.join("host.log")).await?,
    );
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
        "host config: limits.max_sessions raised, security.auth_attempts_per_minute = 0, \
         Argon2id 64 KiB x 1 (cheap logins; hashing cost is measured by the criterion bench)"
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
                let module = opts.module.clone().or_else(|| {
                    let dir = opts.mrci.parent()?;
                    Some(dir.join("examples").join("hello_module"))
                });
                modules::run(&host, module.as_deref(), &plan, &mut report).await?;
            }
            "idle" => idle::run(&host, &plan, &mut report).await?,
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

/// `/proc/loadavg`'s 1, 5 and 15 minute figures: other work on the machine skews the results.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
