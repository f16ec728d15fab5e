//! Criterion benchmark of password hashing and verification at the host's configured cost
//! (`mrci_host::password::Hasher` with `Config::default()`: Argon2id, 19 MiB, 2 iterations),
//! the price of every login and password change.
#![forbid(unsafe_code)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mrci_host::{Config, password::Hasher};

fn hashing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let hasher = Hasher::new(&Config::default());
    let phc = runtime
        .block_on(hasher.hash("Corr3ct-Horse!"))
        .expect("hashing works");
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    group.bench_function("hash_default_cost", |b| {
        b.iter(|| runtime.block_on(hasher.hash(black_box("Corr3ct-Horse!"))));
    });
    group.bench_function("verify_default_cost", |b| {
        b.iter(|| runtime.block_on(hasher.verify(black_box("Corr3ct-Horse!"), &phc)));
    });
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
