//! Criterion benchmarks of the wire crate: frame encode/decode for a small TEXT frame and a
//! 1 MiB payload, client-header parsing and TEXT argument parsing.
#![forbid(unsafe_code)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mrci_proto::args::{Args, ArgsBuilder};
use mrci_proto::codec::MrciCodec;
use mrci_proto::frame::{Frame, MAX_PAYLOAD};
use mrci_proto::header::ClientHeader;
use mrci_proto::{BranchId, CmdId, TypeId};
use tokio_util::codec::Decoder;

fn frames(c: &mut Criterion) {
    let small = Frame::text(CmdId(256), BranchId(1), "ls_cmds -find \"chan\"");
    let big = Frame::new(
        TypeId::GEN_FILE,
        CmdId(300),
        BranchId(2),
        vec![0xA5; 1 << 20],
    );
    let mut group = c.benchmark_group("frame");
    for (name, frame) in [("text_small", &small), ("gen_file_1mib", &big)] {
        group.throughput(Throughput::Bytes(frame.encoded_len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), frame, |b, frame| {
            let mut buf = BytesMut::with_capacity(frame.encoded_len());
            b.iter(|| {
                buf.clear();
                frame.encode(&mut buf).expect("payload within the limit");
                black_box(&buf);
            });
        });
        let mut wire = BytesMut::new();
        frame.encode(&mut wire).expect("payload within the limit");
        group.bench_with_input(BenchmarkId::new("decode", name), &wire, |b, wire| {
            let mut codec = MrciCodec::with_max(MAX_PAYLOAD);
            b.iter(|| {
                let mut buf = wire.clone();
                black_box(codec.decode(&mut buf).expect("valid frame"));
            });
        });
    }
    group.finish();
}

fn header(c: &mut Criterion) {
    let bytes = ClientHeader {
        app_name: "MRCI terminal client".into(),
        common_name: "mrci.example.org".into(),
    }
    .to_bytes();
    c.bench_function("client_header/parse", |b| {
        b.iter(|| black_box(ClientHeader::parse(black_box(&bytes)).expect("valid header")));
    });
}

fn args(c: &mut Criterion) {
    let line = ArgsBuilder::new()
        .arg("-ch_name", "lobby chat")
        .arg("-sub_name", "general")
        .arg("-ch_id", 987)
        .arg("-sub_id", 5)
        .arg("-level", 2)
        .build();
    c.bench_function("args/parse_and_lookup", |b| {
        b.iter(|| {
            let args = Args::parse(black_box(&line));
            let _ = black_box((args.value("-SUB_NAME"), args.u64_opt("-ch_id")));
        });
    });
}

criterion_group!(benches, frames, header, args);
criterion_main!(benches);
