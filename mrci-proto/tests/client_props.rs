//! Property tests of the client side: the handshake fed arbitrary host bytes never panics and
//! never asks for more than the host header plus one bounded HOST_CERT, and a command table
//! fed arbitrary announcements keeps one entry per name and per id.
#![forbid(unsafe_code)]

use bytes::BytesMut;
use mrci_proto::{
    BranchId, CmdId, Frame, TypeId,
    async_id::AsyncId,
    client::{CommandTable, Handshake},
    header::HostHeader,
    payload::NewCmd,
};
use proptest::prelude::*;

/// A frame on the ADD_CMD or RM_CMD id (well-formed or not), or on another id.
fn announcement() -> impl Strategy<Value = Frame> {
    let add = (300u16..310, "[a-c]{1,2}").prop_map(|(id, name)| {
        let mut payload = BytesMut::new();
        NewCmd {
            cmd_id: CmdId(id),
            name,
            ..NewCmd::default()
        }
        .write(&mut payload);
        Frame::new(
            TypeId::NEW_CMD,
            AsyncId::ADD_CMD.cmd_id(),
            BranchId(0),
            payload.freeze(),
        )
    });
    let rm = (300u16..310).prop_map(|id| {
        Frame::new(
            TypeId::CMD_ID,
            AsyncId::RM_CMD.cmd_id(),
            BranchId(0),
            id.to_le_bytes().to_vec(),
        )
    });
    let junk = (
        any::<u8>(),
        38u16..43,
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(t, cmd, payload)| Frame::new(TypeId(t), CmdId(cmd), BranchId(0), payload));
    prop_oneof![add, rm, junk]
}

proptest! {
    #[test]
    fn the_handshake_survives_any_host(
        reply in prop_oneof![Just(2u8), any::<u8>()],
        host_cert in any::<bool>(),
        mut bytes in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        // Mostly reply 2 followed by a HOST_CERT head, so the later states are reached.
        if let Some(first) = bytes.first_mut() {
            *first = reply;
        }
        if let (true, Some(t)) = (host_cert, bytes.get_mut(HostHeader::LEN)) {
            *t = TypeId::HOST_CERT.0;
        }
        let mut handshake = Handshake::new("p", "");
        let mut at = 0;
        loop {
            let n = handshake.wanted();
            prop_assert!(n <= Handshake::MAX_HOST_CERT);
            let Some(chunk) = bytes.get(at..at + n) else { break };
            at += n;
            match handshake.handle(chunk) {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => {
                    prop_assert_eq!(handshake.wanted(), 0);
                    break;
                }
            }
        }
        prop_assert!(at <= HostHeader::LEN + Frame::HEADER_LEN + Handshake::MAX_HOST_CERT);
    }

    #[test]
    fn the_command_table_stays_one_to_one(frames in prop::collection::vec(announcement(), 0..40)) {
        let mut table = CommandTable::new();
        for frame in &frames {
            let _ = table.apply(frame);
        }
        let mut ids = Vec::new();
        for cmd in table.iter() {
            prop_assert_eq!(table.id(&cmd.name), Some(cmd.cmd_id));
            prop_assert_eq!(table.name_of(cmd.cmd_id), Some(cmd.name.as_str()));
            ids.push(cmd.cmd_id);
        }
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), table.len());
    }
}
