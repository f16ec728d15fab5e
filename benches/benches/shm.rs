//! Criterion benchmarks of the shared-memory segment: lock plus one field write, lock plus
//! one field read, and a full mirror of a session's facts (what the host does per change).
#![forbid(unsafe_code)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mrci_shm::SessionShm;

fn shm(c: &mut Criterion) {
    let shm = SessionShm::create().expect("shared memory is available");
    let mut group = c.benchmark_group("shm");
    group.bench_function("write_host_rank", |b| {
        let mut rank = 0u32;
        b.iter(|| {
            rank = rank.wrapping_add(1);
            shm.lock().expect("lock").set_host_rank(black_box(rank));
        });
    });
    group.bench_function("read_user_name", |b| {
        shm.lock().expect("lock").set_user_name("benchmark_user");
        b.iter(|| black_box(shm.lock().expect("lock").user_name()));
    });
    group.bench_function("mirror_session", |b| {
        b.iter(|| {
            let mut seg = shm.lock().expect("lock");
            seg.set_session_id(&[1; 28]);
            seg.set_user_id(&[2; 32]);
            seg.set_client_ip("192.168.100.200");
            seg.set_client_app("MRCI terminal");
            seg.set_user_name("benchmark_user");
            seg.set_display_name("Benchmark User");
            seg.set_host_rank(2);
            seg.set_owner_override(false);
        });
    });
    group.finish();
}

criterion_group!(benches, shm);
criterion_main!(benches);
