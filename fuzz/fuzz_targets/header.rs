//! Fuzz target `header`: client and host handshake headers: parsing and round trips. The body is
//! `mrci_tests::fuzzing::header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mrci_tests::fuzzing::header(data));
