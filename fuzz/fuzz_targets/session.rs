//! Fuzz target `session`: bytes from a logged-in administrator to a real host, which must keep
//! serving. The body is `mrci_tests::fuzzing::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mrci_tests::fuzzing::session(data));
