//! The bodies of the cargo-fuzz targets in `fuzz/`, written once so that `cargo test` can run
//! them too: each `fuzz/fuzz_targets/<name>.rs` is one line calling the function of the same
//! name here, and `tests/tests/fuzz_corpus.rs` replays every committed input of
//! `fuzz/corpus/<name>/` through it. An input that once crashed a target becomes a
//! regression test by being committed to that directory.
//!
//! Invariant: a target function returns normally for every input the code under test handles
//! correctly and panics (with a message saying which property broke) for every other; it never
//! sleeps or reads a clock to decide, so a crash reproduces from its input alone. Only
//! [`session`] keeps state between inputs (one host per process), and it checks its own
//! health before each input.

mod args;
mod ipc;
mod proto;
pub mod seeds;
mod session;
mod stream;

pub use self::{
    args::args,
    ipc::ipc,
    proto::{frame, header, payload},
    session::{session, session_command_ids},
};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target by the name of its `fuzz/fuzz_targets/` file and `fuzz/corpus/` directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("header", header),
    ("payload", payload),
    ("args", args),
    ("ipc", ipc),
    ("session", session),
];
