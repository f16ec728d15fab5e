//! `cargo xtask`: the project's automation, in Rust so that local runs and CI are the same.
//!
//! Invariant: CI (`.ci/run`) calls `cargo xtask ci` and nothing else (after installing
//! `socat`, which the shell module kit's test needs, when it is missing), so whatever CI
//! checks a developer can run by hand with the same command.
#![forbid(unsafe_code)]

mod fuzz;
mod tidy;

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci               fmt --check, clippy -D warnings, every test, benches in test mode, docs,
                   fuzz --ci
  bench [--quick] [--only load|micro] [--sessions N]
                   release build, the loopback load generator against a real host (table,
                   target/bench/load.json, latency.svg, idle-sessions.svg; up to 100,000 idle
                   sessions, or N), then the criterion benchmarks and a summary table;
                   --quick is the short smoke run
  bench --cluster [--quick]
                   release build, then only the cluster scenario: three hosts sharing a fresh
                   PostgreSQL database (MRCI_TEST_PG) and NATS, fan-out and connect/login
                   next to a single host, server counters per operation
                   (target/bench/cluster.txt, cluster.json); SKIPPED without the services
  bench --soak [--quick] [--duration TIME]
                   release build, then only the soak: a mixed load for TIME (default 10m,
                   30s with --quick), judged on memory, descriptors and delivery
                   (target/bench/soak.txt, soak.json, soak.svg)
  fuzz --ci        every fuzz target for a bounded time (about 4 minutes), seeded with the
                   committed corpus fuzz/corpus/<target>/; fails on any crash
  fuzz <target> [-- <libfuzzer args>]
                   run one fuzz target until stopped: frame, header, payload, args, ipc, session;
                   new inputs go to target/fuzz/corpus/<target>/
  (both install cargo-fuzz when it is missing)
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = project_root();
    env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

fn ci() -> anyhow::Result<()> {
    ensure_system_tools()?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["build", "--workspace", "--bins"])?;
    cargo(&["test", "--workspace", "--all-targets"])?;
    cargo(&["test", "--workspace", "--doc"])?;
    fuzz::fuzz(&["--ci".to_owned()])?;
    bench_smoke()?;
    let mut doc = Command::new(cargo_bin());
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(doc)?;
    println!("xtask ci: all checks passed");
    Ok(())
}

/// Installs what the tests need besides Rust when it is missing, from the distribution's
/// packages: `socat` (the shell example module talks to its socket through it).
fn ensure_system_tools() -> anyhow::Result<()> {
    let missing = |tool: &str| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !missing("socat") {
        return Ok(());
    }
    println!("xtask ci: installing socat with apt-get");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        cmd.args(args);
        run(cmd)
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "socat"])
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| -> anyhow::Result<Option<&str>> {
        match args.iter().position(|a| a == flag) {
            Some(i) => Ok(Some(
                args.get(i + 1)
                    .map(String::as_str)
                    .with_context(|| format!("{flag} needs a value"))?,
            )),
            None => Ok(None),
        }
    };
    let only = value("--only")?;
    if let Some(other) = only.filter(|o| !["load", "micro"].contains(o)) {
        bail!("--only takes load or micro, not {other}");
    }
    // Passed on to the load generator as they are.
    let mut extra = Vec::new();
    for flag in ["--sessions", "--duration"] {
        if let Some(v) = value(flag)? {
            extra.extend([flag.to_owned(), v.to_owned()]);
        }
    }
    if args.iter().any(|a| a == "--cluster") {
        extra.push("--cluster".to_owned());
        return load(quick, &extra);
    }
    if args.iter().any(|a| a == "--soak") {
        extra.push("--soak".to_owned());
        return load(quick, &extra);
    }
    if only != Some("micro") {
        load(quick, &extra)?;
    }
    if only != Some("load") {
        micro(quick)?;
    }
    Ok(())
}

/// The load generator's `--quick` runs on the debug build CI already has, the scenarios
/// and then the 30-second soak: proof that everything still runs end to end. Their figures
/// are not judged; a lost or damaged cast in the soak fails the run.
fn bench_smoke() -> anyhow::Result<()> {
    cargo(&["build", "-p", "mrci-modrun", "--example", "hello_module"])?;
    let bin = target_dir().join("debug");
    for soak in [false, true] {
        let mut cmd = Command::new(bin.join("mrci-load"));
        cmd.arg("--quick")
            .arg("--mrci")
            .arg(bin.join("mrci"))
            .arg("--out")
            .arg(target_dir().join("bench-smoke"));
        if soak {
            cmd.arg("--soak");
        }
        run(cmd)?;
    }
    Ok(())
}

/// Builds the host and the load generator in release and runs the generator (with `extra`
/// arguments), which starts the host itself and writes its results under `target/bench/`.
fn load(quick: bool, extra: &[String]) -> anyhow::Result<()> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "mrci-cli",
        "-p",
        "mrci-benches",
        "--bins",
    ])?;
    cargo(&[
        "build",
        "--release",
        "-p",
        "mrci-modrun",
        "--example",
        "hello_module",
    ])?;
    let bin = target_dir().join("release");
    let mut cmd = Command::new(bin.join("mrci-load"));
    cmd.arg("--mrci")
        .arg(bin.join("mrci"))
        .args(["--out", "target/bench"])
        .args(extra);
    if quick {
        cmd.arg("--quick");
    }
    run(cmd)
}

/// The criterion micro-benchmarks, then a summary of their means.
fn micro(quick: bool) -> anyhow::Result<()> {
    let mut criterion = vec!["bench", "-p", "mrci-benches"];
    for name in ["codec", "args", "password", "shm", "bus", "store"] {
        criterion.extend(["--bench", name]);
    }
    criterion.push("--");
    if quick {
        criterion.extend([
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]);
    }
    cargo(&criterion)?;
    summarise_criterion(&target_dir().join("criterion"))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the root) or `target`.
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// Prints one line per criterion benchmark: its id and the mean time per iteration.
fn summarise_criterion(root: &Path) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    collect_estimates(root, root, &mut rows)?;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("\n{:<48} {:>14}", "benchmark", "mean");
    for (id, ns) in rows {
        println!("{id:<48} {:>14}", format_ns(ns));
    }
    Ok(())
}

fn collect_estimates(root: &Path, dir: &Path, rows: &mut Vec<(String, f64)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let estimates = path.join("new/estimates.json");
        if let Ok(json) = std::fs::read_to_string(&estimates)
            && let Some(ns) = mean_point_estimate(&json)
        {
            let id = path.strip_prefix(root)?.display().to_string();
            rows.push((id, ns));
        } else if path
            .file_name()
            .is_some_and(|n| n != "report" && n != "new" && n != "base")
        {
            collect_estimates(root, &path, rows)?;
        }
    }
    Ok(())
}

/// Reads `mean.point_estimate` from criterion's estimates.json without a JSON dependency.
fn mean_point_estimate(json: &str) -> Option<f64> {
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

fn format_ns(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.3} s", n / 1e9),
        n if n >= 1e6 => format!("{:.3} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.3} us", n / 1e3),
        n => format!("{n:.1} ns"),
    }
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = Command::new(cargo_bin());
    cmd.args(args);
    run(cmd)
}

fn run(mut cmd: Command) -> anyhow::Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo_bin() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mean_from_criterion_estimates() {
        let json = r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":12.5,"standard_error":0.1},"median":{"point_estimate":9.0}}"#;
        assert_eq!(mean_point_estimate(json), Some(12.5));
        assert_eq!(mean_point_estimate("{}"), None);
        assert_eq!(format_ns(1500.0), "1.500 us");
    }
}
