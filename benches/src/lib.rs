//! Support code for the benchmarks: the loopback load generator behind `cargo xtask bench`
//! ([`load`]). The criterion micro-benchmarks live in `benches/`.
#![forbid(unsafe_code)]

pub mod load;
