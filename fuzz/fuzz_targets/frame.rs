//! Fuzz target: MRCI and IPC frame decoding over arbitrary bytes with a small maximum.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mrci_proto::{frame::Frame, ipc::IpcFrame};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = Frame::decode(&mut buf, 4096) {}
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = IpcFrame::decode(&mut buf, 4096) {}
});
