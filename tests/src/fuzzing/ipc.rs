//! Target `ipc`: everything a module process sends the host (PROTOCOL.md §5): IPC frames
//! through the codec, each frame's payload, and the host's filter in list mode and run mode
//! (`mrci_modrun::filter`), including the async requests it validates.
//!
//! Invariant checked: nothing panics; the filter's answers keep its documented promises: list
//! mode yields only NEW_CMD announcements (which round-trip) and ERR texts; run mode forwards
//! a frame unchanged only when its type is one a module may send and its payload parses,
//! swallows only KEEP_ALIVE, and passes on only requests for defined, module-requestable ids
//! whose payload round-trips.

use bytes::{Bytes, BytesMut};
use mrci_modrun::{
    Request,
    filter::{Classified, classify_list, classify_run},
};
use mrci_proto::{
    IpcFrame, TypeId,
    async_id::{HostExtId, RequestId, Scope},
    codec::IpcCodec,
    payload::{AsyncRequest, NewCmd, Payload},
};

use super::{
    proto,
    stream::{self, Params},
};

/// Bytes 0–2 choose the codec's maximum and piece size (see `Params`); the rest is an IPC
/// byte stream whose frames are classified, and is also classified as one frame whose type is
/// its first byte and whose payload is the remainder.
pub fn ipc(data: &[u8]) {
    let Some(p) = Params::parse(data) else {
        return;
    };
    for frame in stream::check(&IpcCodec::with_max(p.max), &p) {
        classify(&frame);
    }
    if let [type_id, payload @ ..] = p.stream {
        classify(&IpcFrame::new(
            TypeId(*type_id),
            Bytes::copy_from_slice(payload),
        ));
    }
}

fn classify(frame: &IpcFrame) {
    let parsed = Payload::parse(frame.type_id, &frame.payload);
    match classify_list(frame) {
        Classified::NewCmd(cmd) => {
            assert_eq!(frame.type_id, TypeId::NEW_CMD);
            let mut out = BytesMut::new();
            cmd.write(&mut out);
            assert_eq!(NewCmd::parse(&out).ok(), Some(cmd), "NEW_CMD round trip");
        }
        Classified::ErrText(_) => assert_eq!(frame.type_id, TypeId::ERR),
        Classified::Drop(why) => assert!(!why.is_empty()),
        other => panic!("list mode answered {other:?}"),
    }
    match classify_run(frame.clone()) {
        Classified::Output(out) => {
            assert_eq!(&out, frame, "run mode changed a forwarded frame");
            assert!(parsed.is_ok(), "forwarded a malformed {:?}", frame.type_id);
            assert!(
                !frame.type_id.is_blocked_from_module() && !frame.type_id.is_ipc_request(),
                "forwarded a {:?} frame to the client",
                frame.type_id
            );
        }
        Classified::Request(req) => {
            assert_eq!(req.via, frame.type_id);
            assert!(frame.type_id.is_ipc_request());
            assert_ne!(req.scope(), Scope::HostOnly, "passed {req:?}");
            if let Request::Seed(cmd) = &req.request {
                assert!(!cmd.id().is_host_only(), "passed host-only {:?}", cmd.id());
                let again = proto::async_cmd(cmd.id(), &cmd.to_bytes());
                assert_eq!(again.as_ref(), Some(cmd));
                request_round_trip(frame, cmd.id().cmd_id().0);
            }
        }
        Classified::Swallow => {
            let req = AsyncRequest::parse(&frame.payload).expect("a swallowed request parses");
            assert_eq!(
                RequestId::from_wire(req.async_id.0),
                Some(RequestId::Ext(HostExtId::KEEP_ALIVE))
            );
        }
        Classified::Drop(why) => assert!(!why.is_empty()),
        other => panic!("run mode answered {other:?}"),
    }
}

/// An accepted request's `[u16 id][data]` is what [`AsyncRequest`] writes back.
fn request_round_trip(frame: &IpcFrame, id: u16) {
    let req = AsyncRequest::parse(&frame.payload).expect("an accepted request parses");
    assert_eq!(req.async_id.0, id);
    let mut out = BytesMut::new();
    req.write(&mut out);
    assert_eq!(&out[..], &frame.payload[..], "async request round trip");
}
