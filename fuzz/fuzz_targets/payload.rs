//! Fuzz target `payload`: every payload layout by type id, async command payloads, ids and text
//! forms. The body is `mrci_tests::fuzzing::payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mrci_tests::fuzzing::payload(data));
