//! Fuzz target: payload parsing for every type id; the first byte picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mrci_proto::{TypeId, payload::Payload};

fuzz_target!(|data: &[u8]| {
    if let Some((t, rest)) = data.split_first() {
        let _ = Payload::parse(TypeId(*t), rest);
    }
});
