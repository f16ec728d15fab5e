//! Property tests over the public wire API: every wire type round-trips, any chunking of a
//! valid stream yields the same frames, and arbitrary bytes never panic or over-allocate.
#![forbid(unsafe_code)]

use bytes::{Bytes, BytesMut};
use mrci_proto::codec::{IpcCodec, MrciCodec};
use mrci_proto::frame::Frame;
use mrci_proto::header::{ClientHeader, HostHeader, Reply, Version};
use mrci_proto::ids::{BranchId, CmdId, SessionId, SubChKey, SubChList, UserId};
use mrci_proto::ipc::IpcFrame;
use mrci_proto::payload::{
    AsyncRequest, ChMemberInfo, FileInfo, MyInfo, NewCmd, Payload, PeerInfo, PeerStat,
};
use mrci_proto::type_id::TypeId;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Text that survives a fixed field: no NUL, no surrounding whitespace, at most `max` units.
fn fixed_text(max: usize) -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.@é€😀-]{0,40}".prop_map(move |s| {
        let mut out = String::new();
        for ch in s.chars() {
            if mrci_proto::text::units(&out) + ch.len_utf16() > max {
                break;
            }
            out.push(ch);
        }
        out
    })
}

/// Text for NTEXT fields: anything without NUL.
fn term_text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,30}"
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(t, c, b, p)| Frame::new(TypeId(t), CmdId(c), BranchId(b), p))
}

fn session_id() -> impl Strategy<Value = SessionId> {
    any::<[u8; 28]>().prop_map(SessionId)
}

fn user_id() -> impl Strategy<Value = UserId> {
    any::<[u8; 32]>().prop_map(UserId)
}

fn peer_info() -> impl Strategy<Value = PeerInfo> {
    (
        session_id(),
        user_id(),
        fixed_text(24),
        fixed_text(67),
        fixed_text(32),
    )
        .prop_map(
            |(session_id, user_id, user_name, app_name, display_name)| PeerInfo {
                session_id,
                user_id,
                user_name,
                app_name,
                display_name,
            },
        )
}

fn sub_list() -> impl Strategy<Value = SubChList> {
    prop::collection::vec((1u64.., any::<u8>()), 0..6).prop_map(|keys| {
        let mut list = SubChList::default();
        for (ch_id, sub_id) in keys {
            list.insert(SubChKey { ch_id, sub_id });
        }
        list
    })
}

fn payload() -> impl Strategy<Value = (TypeId, Payload)> {
    prop_oneof![
        term_text().prop_map(|s| (TypeId::TEXT, Payload::Text(s))),
        Just((TypeId::IDLE, Payload::Empty)),
        peer_info().prop_map(|p| (TypeId::PEER_INFO, Payload::PeerInfo(p))),
        (peer_info(), fixed_text(64), any::<u32>(), any::<bool>()).prop_map(
            |(peer, email, host_rank, email_verified)| {
                (
                    TypeId::MY_INFO,
                    Payload::MyInfo(MyInfo {
                        peer,
                        email,
                        host_rank,
                        email_verified,
                    }),
                )
            }
        ),
        (session_id(), sub_list(), any::<bool>()).prop_map(
            |(session_id, sub_channels, disconnected)| {
                (
                    TypeId::PEER_STAT,
                    Payload::PeerStat(PeerStat {
                        session_id,
                        sub_channels,
                        disconnected,
                    }),
                )
            }
        ),
        (
            any::<u8>(),
            any::<i64>(),
            any::<i64>(),
            any::<u64>(),
            term_text(),
            term_text()
        )
            .prop_map(
                |(flags, created_ms, modified_ms, size, name, symlink_target)| {
                    (
                        TypeId::FILE_INFO,
                        Payload::FileInfo(FileInfo {
                            flags,
                            created_ms,
                            modified_ms,
                            size,
                            name,
                            symlink_target,
                        }),
                    )
                }
            ),
        (
            any::<u16>(),
            any::<bool>(),
            "[a-z0-9_]{1,64}",
            fixed_text(64),
            term_text(),
            term_text(),
            term_text()
        )
            .prop_map(|(id, gen_file, name, lib, summary, io, details)| {
                (
                    TypeId::NEW_CMD,
                    Payload::NewCmd(NewCmd {
                        cmd_id: CmdId(id),
                        gen_file,
                        name,
                        lib,
                        summary,
                        io,
                        details,
                    }),
                )
            }),
        any::<u16>().prop_map(|id| (TypeId::CMD_ID, Payload::CmdId(CmdId(id)))),
        any::<u64>().prop_map(|id| (TypeId::CH_ID, Payload::ChId(id))),
        session_id().prop_map(|sid| (TypeId::P2P_CLOSE, Payload::SessionId(sid))),
        any::<[u16; 3]>().prop_map(|[major, minor, patch]| {
            (
                TypeId::HOST_VER,
                Payload::HostVer(Version {
                    major,
                    minor,
                    patch,
                }),
            )
        }),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(id, data)| {
            (
                TypeId::PUB_IPC,
                Payload::AsyncRequest(AsyncRequest {
                    async_id: CmdId(id),
                    data: Bytes::from(data),
                }),
            )
        }),
        (
            any::<u64>(),
            user_id(),
            any::<bool>(),
            any::<u8>(),
            term_text(),
            term_text(),
            term_text()
        )
            .prop_map(
                |(ch_id, user_id, pending, level, user_name, display_name, ch_name)| {
                    (
                        TypeId::CH_MEMBER_INFO,
                        Payload::ChMemberInfo(ChMemberInfo {
                            ch_id,
                            user_id,
                            pending,
                            level,
                            user_name,
                            display_name,
                            ch_name,
                        }),
                    )
                }
            ),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| (TypeId::BYTES, Payload::Bytes(Bytes::from(b)))),
    ]
}

proptest! {
    #[test]
    fn frame_round_trip(frame in frame()) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).unwrap();
        prop_assert_eq!(buf.len(), frame.encoded_len());
        prop_assert_eq!(Frame::decode(&mut buf, 1 << 20).unwrap(), Some(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn ipc_round_trip(t in any::<u8>(), payload in prop::collection::vec(any::<u8>(), 0..300)) {
        let frame = IpcFrame::new(TypeId(t), payload);
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).unwrap();
        prop_assert_eq!(IpcFrame::decode(&mut buf, 1 << 20).unwrap(), Some(frame));
    }

    #[test]
    fn payload_round_trip((type_id, value) in payload()) {
        let bytes = value.to_bytes();
        prop_assert_eq!(Payload::parse(type_id, &bytes).unwrap(), value);
    }

    #[test]
    fn header_round_trip(app in fixed_text(67), cn in fixed_text(136), reply in any::<u8>(),
                         v in any::<[u16; 3]>(), sid in session_id()) {
        let client = ClientHeader { app_name: app, common_name: cn };
        prop_assert_eq!(ClientHeader::parse(&client.to_bytes()).unwrap(), client);
        let host = HostHeader {
            reply: Reply(reply),
            version: Version { major: v[0], minor: v[1], patch: v[2] },
            session_id: sid,
        };
        prop_assert_eq!(HostHeader::parse(&host.to_bytes()).unwrap(), host);
    }

    #[test]
    fn any_chunking_yields_the_same_frames(frames in prop::collection::vec(frame(), 1..8),
                                           cuts in prop::collection::vec(1usize..64, 1..40)) {
        let mut stream = BytesMut::new();
        for f in &frames {
            f.encode(&mut stream).unwrap();
        }
        let mut codec = MrciCodec::with_max(1 << 20);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = &stream[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        prop_assert_eq!(out, frames);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_over_reserve(bytes in prop::collection::vec(any::<u8>(), 0..600),
                                                   max in 0usize..256) {
        let mut buf = BytesMut::from(&bytes[..]);
        let mut codec = MrciCodec::with_max(max);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        // Never anything near a hostile length: at most one frame beyond what was given.
        prop_assert!(buf.capacity() <= 2 * (bytes.len() + Frame::HEADER_LEN + max) + 64);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut ipc = IpcCodec::with_max(max);
        while let Ok(Some(_)) = ipc.decode(&mut buf) {}
        let _ = ClientHeader::parse(&bytes);
        let _ = HostHeader::parse(&bytes);
        for t in 0..=u8::MAX {
            let _ = Payload::parse(TypeId(t), &bytes);
        }
    }
}
