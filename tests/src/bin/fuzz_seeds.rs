//! Writes the hand-made seed inputs of every fuzz target (`mrci_tests::fuzzing::seeds`) as
//! `fuzz/corpus/<target>/seed-<name>`, replacing older seeds of the same name and leaving
//! every other corpus file alone. Run from anywhere: `cargo run -p mrci-tests --bin fuzz_seeds`.
#![forbid(unsafe_code)]

use std::path::Path;

use mrci_tests::fuzzing::{TARGETS, seeds::seeds};

fn main() -> anyhow::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, _) in TARGETS {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds(target)? {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
    }
    Ok(())
}
