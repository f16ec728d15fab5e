//! `cargo xtask`: the project's automation, in Rust so that local runs and CI are the same.
//!
//! Invariant: CI (`.ci/run`) calls `cargo xtask ci` and nothing else, so whatever CI checks a
//! developer can run by hand with the same command.

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
  ci               fmt --check, clippy -D warnings, every test, benches in test mode, docs
  bench [--quick]  criterion benchmarks, then the loopback load generator (figures under target/bench/)
  fuzz <target> [-- <libfuzzer args>]
                   build (and with cargo-fuzz installed, run) a fuzz target: frame, header, payload
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = project_root();
    env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(args.iter().any(|a| a == "--quick")),
        Some("fuzz") => fuzz(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

fn ci() -> anyhow::Result<()> {
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
    let mut doc = Command::new(cargo_bin());
    doc.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(doc)?;
    println!("xtask ci: all checks passed");
    Ok(())
}

fn bench(quick: bool) -> anyhow::Result<()> {
    let out = Path::new("target/bench");
    std::fs::create_dir_all(out)?;
    let mut criterion = vec![
        "bench",
        "-p",
        "mrci-benches",
        "--bench",
        "codec",
        "--bench",
        "shm",
        "--",
    ];
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
    let mut load = vec![
        "run",
        "--release",
        "-p",
        "mrci-benches",
        "--bin",
        "mrci-load",
        "--",
    ];
    load.extend(["--out", "target/bench"]);
    if quick {
        load.push("--quick");
    }
    cargo(&load)
}

fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let Some(target) = args.first() else {
        bail!("fuzz needs a target: frame, header or payload")
    };
    let has_cargo_fuzz = Command::new(cargo_bin())
        .args(["fuzz", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_cargo_fuzz {
        let mut cmd = Command::new(cargo_bin());
        cmd.current_dir("fuzz")
            .args(["fuzz", "run", target])
            .args(&args[1..]);
        return run(cmd);
    }
    eprintln!("cargo-fuzz is not installed (cargo install cargo-fuzz); building the target only");
    cargo(&[
        "build",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--bin",
        target,
    ])
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
