//! Fuzz target: client and host header parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mrci_proto::header::{ClientHeader, HostHeader};

fuzz_target!(|data: &[u8]| {
    let _ = ClientHeader::parse(data);
    let _ = HostHeader::parse(data);
});
