//! Scenario: login cost. A host of its own with the default Argon2 cost (the shared load
//! host hashes cheaply) takes logins from several sessions at once: each session logs in
//! (`auth`, the password verified) and out (`logout`) in a loop. Next to it, the hash alone:
//! Argon2id verification with the same parameters in this process, on one thread and on
//! every core.
//!
//! "Per core" means per CPU-second: for the host, logins divided by the CPU time the host
//! process used meanwhile (`/proc/PID/stat`); for the hash, verifications divided by the CPU
//! time of the threads that ran them. The host's overhead is how much more CPU a login
//! costs than the hash inside it: `hash per core / logins per core - 1`, in percent. Each
//! login's figure includes its `logout` (small next to the hash).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use argon2::{Algorithm, Argon2, Params, PasswordVerifier as _, Version};

use super::{
    Plan, client,
    host::{HostProcess, PASSWORD, Setup, USER},
    procfs,
    report::Report,
    stats::{Samples, per_second},
};

const SCENARIO: &str = "login (default Argon2)";

/// What the hash alone costs.
#[derive(Clone, Copy, Debug)]
pub struct HashCost {
    /// Verifications per CPU-second on one thread.
    pub per_core: f64,
    /// Verifications per second on every core at once.
    pub all_cores: f64,
    /// Threads used for [`Self::all_cores`].
    pub threads: usize,
}

/// Times Argon2id verification with the host's default parameters for about `run_for` on
/// one thread, then as long on `threads` threads.
///
/// # Errors
/// If the parameters are invalid or hashing fails.
pub async fn hash_cost(run_for: Duration, threads: usize) -> anyhow::Result<HashCost> {
    let config = mrci_host::Config::default();
    let phc = mrci_host::password::Hasher::new(&config)
        .hash(PASSWORD)
        .await?;
    let sec = &config.security;
    let params = Params::new(sec.argon2_memory_kib, sec.argon2_iterations, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let phc = Arc::new(phc);
    let verify_for = move |run_for: Duration| {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let phc = Arc::clone(&phc);
        move || -> anyhow::Result<usize> {
            let start = Instant::now();
            let mut n = 0;
            while n == 0 || start.elapsed() < run_for {
                argon2
                    .verify_password(PASSWORD.as_bytes(), phc.as_str())
                    .map_err(|e| anyhow::anyhow!("argon2 verify: {e}"))?;
                n += 1;
            }
            Ok(n)
        }
    };
    let one = verify_for(run_for);
    let (n, cpu) = tokio::task::spawn_blocking(move || {
        let cpu0 = thread_cpu_seconds();
        let n = one()?;
        anyhow::Ok((n, thread_cpu_seconds() - cpu0))
    })
    .await??;
    let per_core = n as f64 / cpu.max(1e-9);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(verify_for(run_for)))
        .collect();
    let mut total = 0;
    for w in workers {
        total += w
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
    }
    Ok(HashCost {
        per_core,
        all_cores: per_second(total, start.elapsed()),
        threads,
    })
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// Logins made against a host by `workers` sessions for `run_for`.
struct Logins {
    count: usize,
    elapsed: Duration,
    host_cpu: f64,
    latency: Samples,
}

async fn logins(host: &HostProcess, workers: usize, run_for: Duration) -> anyhow::Result<Logins> {
    let mut sessions = Vec::with_capacity(workers);
    for _ in 0..workers {
        sessions.push(host.connect().await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let cpu0 = procfs::cpu_seconds(host.pid)?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut session in sessions {
        let (stop, count) = (Arc::clone(&stop), Arc::clone(&count));
        tasks.push(tokio::spawn(async move {
            let mut latency = Samples::default();
            while !stop.load(Ordering::Acquire) {
                let t0 = Instant::now();
                session.login(USER, PASSWORD).await?;
                latency.push(t0.elapsed());
                count.fetch_add(1, Ordering::AcqRel);
                client::ok(&mut session, "logout", "").await?;
            }
            anyhow::Ok(latency)
        }));
    }
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Release);
    let mut latency = Samples::default();
    for task in tasks {
        latency.merge(task.await?.context("a login session failed")?);
    }
    Ok(Logins {
        count: count.load(Ordering::Acquire),
        elapsed: start.elapsed(),
        host_cpu: procfs::cpu_seconds(host.pid)? - cpu0,
        latency,
    })
}

/// Runs the scenario: a host of its own with the default Argon2 cost (its log goes to
/// `out/host-login.log`) taking logins from each count of sessions in
/// [`Plan::login_sessions`], then the hash alone.
///
/// # Errors
/// A host that does not start, a refused login, or a hashing failure.
pub async fn run(mrci: &Path, out: &Path, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    let most = plan.login_sessions.iter().copied().max().unwrap_or(1);
    let setup = Setup {
        default_argon2: true,
        ..Setup::load(most + 16)
    };
    let host = HostProcess::start_with(mrci, &setup, &out.join("host-login.log")).await?;
    let mut runs = Vec::new();
    for &sessions in &plan.login_sessions {
        runs.push((sessions, logins(&host, sessions, plan.login_for).await?));
    }
    host.stop()?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let hash = hash_cost(plan.login_for / 2, threads).await?;
    for (sessions, mut on_host) in runs {
        record(report, sessions, &mut on_host, &hash);
    }
    let sec = mrci_host::Config::default().security;
    report.notes.push(format!(
        "login: Argon2id {} KiB x {} (the host's default); each login is followed by logout; \
         baseline = the verification alone in this process: per CPU-second on one thread \
         ({:.1} ms each), and per second on {} threads at once",
        sec.argon2_memory_kib,
        sec.argon2_iterations,
        1000.0 / hash.per_core.max(1e-9),
        hash.threads
    ));
    Ok(())
}

/// Login cost with 0, 1 and 5 modules listed by every session (seed 001: exempt and user
/// lists at login, the public list at logout), on a host of its own with cheap hashing so
/// that the listing is what shows: one session logs in and out for `run_for` with each count
/// of modules (symlinks to one module executable, so each is a module of its own). The
/// figure is one login plus its logout, next to the same with no module.
///
/// # Errors
/// A host that does not start, or a refused login.
pub async fn with_modules(
    mrci: &Path,
    module: Option<&Path>,
    out: &Path,
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    const WITH: &str = "login with modules";
    let Some(module) = module.filter(|m| m.is_file()) else {
        report.skip(WITH, "no module executable");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let mut links = Vec::new();
    for i in 0..5 {
        let link = dir.path().join(format!("module{i}"));
        std::os::unix::fs::symlink(module.canonicalize()?, &link)?;
        links.push(link);
    }
    let mut rounds = Vec::new();
    for count in [0, 1, 5] {
        let setup = Setup {
            modules: links[..count].to_vec(),
            ..Setup::load(16)
        };
        let log = out.join(format!("host-login-{count}-modules.log"));
        let host = HostProcess::start_with(mrci, &setup, &log).await?;
        let mut session = host.connect().await?;
        let mut latency = Samples::default();
        let until = Instant::now() + plan.login_for;
        while Instant::now() < until {
            let t0 = Instant::now();
            session.login(USER, PASSWORD).await?;
            client::ok(&mut session, "logout", "").await?;
            latency.push(t0.elapsed());
        }
        host.stop()?;
        rounds.push((count, latency));
    }
    let mut medians: Vec<(usize, f64)> = rounds
        .iter_mut()
        .map(|(count, s)| (*count, s.median_ms().unwrap_or_default()))
        .collect();
    let none = medians.first().map(|m| m.1).unwrap_or_default();
    for (count, p50) in medians.drain(..) {
        report.row(
            WITH,
            &format!("login + logout p50, {count} modules"),
            p50,
            "ms",
            Some(none),
            None,
        );
    }
    report.notes.push(
        "login with modules: one session, cheap hashing; each module is listed in exempt and \
         user mode at login and in public mode at logout (three processes per module per \
         round); baseline = the same host with no module"
            .to_owned(),
    );
    Ok(())
}

fn record(report: &mut Report, sessions: usize, on_host: &mut Logins, hash: &HashCost) {
    let per_core = on_host.count as f64 / on_host.host_cpu.max(1e-9);
    let rate = per_second(on_host.count, on_host.elapsed);
    let label = |what: &str| format!("{what}, {sessions} at once");
    report.row(
        SCENARIO,
        &label("logins/s"),
        rate,
        "login/s",
        Some(hash.all_cores),
        None,
    );
    let metric = label("logins per host CPU-second");
    report.row(
        SCENARIO,
        &metric,
        per_core,
        "login/s",
        Some(hash.per_core),
        None,
    );
    let overhead = (hash.per_core / per_core.max(1e-9) - 1.0) * 100.0;
    report.figure(
        SCENARIO,
        &label("host overhead over the hash"),
        overhead,
        "%",
    );
    let p50 = on_host.latency.median_ms().unwrap_or_default();
    report.figure(SCENARIO, &label("login latency p50"), p50, "ms");
    report.notes.push(format!(
        "login, {sessions} sessions: {} logins in {:.1} s using {:.2} host CPU-seconds",
        on_host.count,
        on_host.elapsed.as_secs_f64(),
        on_host.host_cpu
    ));
}
