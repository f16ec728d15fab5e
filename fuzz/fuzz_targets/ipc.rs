//! Fuzz target `ipc`: IPC frames from a module, their payloads and the host's list/run-mode filter.
//! The body is `mrci_tests::fuzzing::ipc`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mrci_tests::fuzzing::ipc(data));
