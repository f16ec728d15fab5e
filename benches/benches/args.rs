//! Criterion benchmarks of the TEXT argument language (`mrci_proto::args`): tokenising a
//! typical and a long command line, quoting values and building an argument line.
#![forbid(unsafe_code)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mrci_proto::args::{Args, ArgsBuilder, quote, tokenize};

fn parsing(c: &mut Criterion) {
    let typical = "-user alice -email \"alice@example.org\" -disp \"Alice in Wonderland\"";
    let long = (0..64)
        .map(|i| format!("-key{i} \"value number {i}\""))
        .collect::<Vec<_>>()
        .join(" ");
    let mut group = c.benchmark_group("args");
    group.bench_function("tokenize/typical", |b| {
        b.iter(|| black_box(tokenize(black_box(typical))));
    });
    group.bench_function("tokenize/64_pairs", |b| {
        b.iter(|| black_box(tokenize(black_box(&long))));
    });
    group.bench_function("parse_then_u64_and_missing_key", |b| {
        let line = "-ch_name lobby -sub_id 17 -level 4";
        b.iter(|| {
            let args = Args::parse(black_box(line));
            black_box((args.u64("-sub_id").is_ok(), args.value("-absent").is_none()))
        });
    });
    group.bench_function("quote_with_escapes", |b| {
        b.iter(|| black_box(quote(black_box("say \"hi\" to -everyone"))));
    });
    group.bench_function("build_four_args", |b| {
        b.iter(|| {
            black_box(
                ArgsBuilder::new()
                    .arg("-user", black_box("bob"))
                    .arg("-level", 3)
                    .arg("-disp", "Bob \"the builder\"")
                    .flag("-force")
                    .build(),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
