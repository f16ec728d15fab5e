//! Replays the committed fuzz corpus: every file of `fuzz/corpus/<target>/` goes through the
//! same function the cargo-fuzz target calls (`mrci_tests::fuzzing`), so an input that once
//! crashed a target stays a regression test once it is committed there.
#![forbid(unsafe_code)]

use std::{panic, path::PathBuf};

use mrci_tests::fuzzing::{TARGETS, Target};

/// Runs every corpus file of `name` and fails naming each file that panicked.
fn replay(name: &str) {
    let target: Target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a known target");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable corpus file");
            panic::catch_unwind(|| target(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{name} failed on:\n{}",
        failed.join("\n")
    );
}

#[test]
fn frame() {
    replay("frame");
}

#[test]
fn header() {
    replay("header");
}

#[test]
fn payload() {
    replay("payload");
}

#[test]
fn args() {
    replay("args");
}

#[test]
fn ipc() {
    replay("ipc");
}

#[test]
fn session() {
    replay("session");
}

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["frame", "header", "payload", "args", "ipc", "session"]
    );
}
