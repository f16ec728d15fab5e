//! Fuzz target `args`: the TEXT argument language: tokeniser, lookups, builder round trips,
//! validators. The body is `mrci_tests::fuzzing::args`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mrci_tests::fuzzing::args(data));
