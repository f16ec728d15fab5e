//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/`, for open-ended local runs and as a
//! bounded CI step.
//!
//! Both modes seed libFuzzer with the committed corpus `fuzz/corpus/<target>/` but write new
//! inputs to a scratch corpus under `target/`, so a run never changes the committed files:
//! an input worth keeping (a crash, once fixed) is committed by hand and from then on
//! `cargo test -p mrci-tests --test fuzz_corpus` replays it.
//!
//! Invariant: `--ci` fails if any target crashes, and names each reproducer it left.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, bail};

use crate::{cargo_bin, run};

/// Every target with the seconds `--ci` runs it and its extra libFuzzer flags. The session
/// target runs a real host per process and checks it after each input, so it gets fewer,
/// slower iterations and a longer per-input timeout.
const TARGETS: &[(&str, u32, &[&str])] = &[
    ("frame", 20, &[]),
    ("header", 10, &[]),
    ("payload", 20, &[]),
    ("args", 25, &[]),
    ("ipc", 25, &[]),
    ("session", 40, &["-max_len=4096", "-timeout=120"]),
];

/// How cargo-fuzz builds: no sanitizer (no unstable flags either), because every crate the
/// targets reach is `#![forbid(unsafe_code)]` except mrci-shm, which only the session
/// target's host reaches; optimised (unoptimised, `session` runs 20-30 times slower), with
/// coverage instrumentation and debug assertions.
const BUILD: &[&str] = &["--sanitizer", "none"];

/// Per-input timeout for the pure targets, in seconds.
const PURE_TIMEOUT: &str = "-timeout=10";

/// `cargo xtask fuzz --ci` or `cargo xtask fuzz <target> [-- <libFuzzer args>]`.
pub(crate) fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
    match args.first().map(String::as_str) {
        Some("--ci") => ci(),
        Some(target) if names.contains(&target) => {
            let extra = match args.get(1).map(String::as_str) {
                Some("--") => &args[2..],
                Some(other) => bail!("unexpected `{other}`; libFuzzer arguments go after --"),
                None => &[],
            };
            open_ended(target, extra)
        }
        Some(other) => bail!(
            "unknown fuzz target `{other}`; targets: {}",
            names.join(", ")
        ),
        None => bail!("fuzz needs --ci or a target: {}", names.join(", ")),
    }
}

/// Builds every target, then runs each for its bounded time; reports every crash at the end.
fn ci() -> anyhow::Result<()> {
    ensure_cargo_fuzz()?;
    let scratch = env::current_dir()?.join("target/fuzz-ci");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let started = Instant::now();
    let mut build = cargo_fuzz();
    build.arg("build").args(BUILD);
    run(build)?;
    eprintln!("xtask fuzz: built the targets in {:.0?}", started.elapsed());
    let mut failed = Vec::new();
    for (target, secs, flags) in TARGETS {
        let artifacts = scratch.join("artifacts").join(target);
        let mut cmd = fuzz_run(target, &scratch.join("corpus").join(target))?;
        cmd.arg(format!("-max_total_time={secs}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1");
        pure_timeout(&mut cmd, flags);
        cmd.args(*flags);
        std::fs::create_dir_all(&artifacts)?;
        let began = Instant::now();
        if run(cmd).is_err() {
            failed.push(report(target, &artifacts)?);
        }
        eprintln!("xtask fuzz: {target} ran {:.0?}", began.elapsed());
    }
    eprintln!("xtask fuzz: {:.0?} in all", started.elapsed());
    if !failed.is_empty() {
        bail!("fuzzing found crashes:\n{}", failed.join("\n"));
    }
    Ok(())
}

/// Runs one target until stopped, keeping what it finds in `target/fuzz/corpus/<target>`.
fn open_ended(target: &str, extra: &[String]) -> anyhow::Result<()> {
    ensure_cargo_fuzz()?;
    let corpus = env::current_dir()?.join("target/fuzz/corpus").join(target);
    let mut cmd = fuzz_run(target, &corpus)?;
    let flags = TARGETS
        .iter()
        .find(|t| t.0 == target)
        .map_or(&[][..], |t| t.2);
    pure_timeout(&mut cmd, flags);
    cmd.args(flags).args(extra);
    run(cmd)
}

/// `cargo fuzz run` for `target` with `scratch` as the corpus written to and the committed
/// corpus as a read-only seed, up to the `--` before libFuzzer's own flags.
fn fuzz_run(target: &str, scratch: &Path) -> anyhow::Result<Command> {
    std::fs::create_dir_all(scratch)?;
    let committed = env::current_dir()?.join("fuzz/corpus").join(target);
    let mut cmd = cargo_fuzz();
    cmd.arg("run")
        .args(BUILD)
        .arg(target)
        .arg(scratch)
        .arg(committed)
        .arg("--");
    Ok(cmd)
}

fn pure_timeout(cmd: &mut Command, flags: &[&str]) {
    if !flags.iter().any(|f| f.starts_with("-timeout=")) {
        cmd.arg(PURE_TIMEOUT);
    }
}

/// `cargo fuzz` in `fuzz/`, with its own target directory. Without a sanitizer cargo-fuzz
/// passes no unstable flags, so the stable toolchain builds the targets as it is.
fn cargo_fuzz() -> Command {
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir("fuzz")
        .arg("fuzz")
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let installed = Command::new(cargo_bin())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        let mut install = Command::new(cargo_bin());
        install.args(["install", "cargo-fuzz", "--locked"]);
        run(install).context("installing cargo-fuzz")?;
    }
    Ok(())
}

/// Names the reproducers a failed run left and how to use them.
fn report(target: &str, artifacts: &Path) -> anyhow::Result<String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(artifacts)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    found.sort();
    if found.is_empty() {
        return Ok(format!(
            "{target}: failed without leaving a reproducer (see above)"
        ));
    }
    let mut out = format!("{target}:");
    for path in found {
        out.push_str(&format!(
            "\n  reproducer: {p}\n  rerun: (cd fuzz && cargo fuzz run {b} {target} {p})\n  \
             keep as a regression test: cp {p} fuzz/corpus/{target}/ and run \
             cargo test -p mrci-tests --test fuzz_corpus",
            p = path.display(),
            b = BUILD.join(" "),
        ));
    }
    Ok(out)
}
