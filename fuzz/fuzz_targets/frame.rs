//! Fuzz target `frame`: MRCI and IPC frame streams through the codecs: round trips, piecewise
//! decoding, bounded buffers. The body is `mrci_tests::fuzzing::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mrci_tests::fuzzing::frame(data));
