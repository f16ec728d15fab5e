//! Golden payloads from PROTOCOL.md §4.3 and round trips for every async command.

use proptest::prelude::*;

use super::*;
use crate::ids::SubChKey;

fn s(v: &str) -> String {
    v.to_owned()
}

fn one_of_each() -> Vec<AsyncCmd> {
    let frame = Embedded {
        type_id: TypeId::TEXT,
        data: Bytes::from(text::encode("hi")),
    };
    let mut subs = SubChList::default();
    subs.insert(SubChKey {
        ch_id: 987,
        sub_id: 5,
    });
    vec![
        AsyncCmd::Rdy {
            text: s("\nReady!\n\n"),
        },
        AsyncCmd::SysMsg {
            data: Bytes::from(text::encode("note")),
        },
        AsyncCmd::ExeCrash {
            text: s("err: module failed"),
        },
        AsyncCmd::Exit,
        AsyncCmd::Cast {
            subs,
            frame: frame.clone(),
        },
        AsyncCmd::MaxSes { max: 100 },
        AsyncCmd::Logout,
        AsyncCmd::UserDeleted { user: s("bob") },
        AsyncCmd::GroupRenamed {
            src: s("old"),
            dst: s("new"),
        },
        AsyncCmd::DispRenamed {
            name: s("Bob B."),
            user: s("bob"),
        },
        AsyncCmd::GrpTrans {
            src: s("a"),
            dst: s("b"),
        },
        AsyncCmd::UserGroupChanged {
            user: s("bob"),
            group: s("admin"),
        },
        AsyncCmd::CmdRanksChanged,
        AsyncCmd::Restart,
        AsyncCmd::EnableMod {
            path: s("/opt/mod"),
        },
        AsyncCmd::DisableMod {
            path: s("/opt/mod"),
        },
        AsyncCmd::GroupUpdated {
            name: s("users"),
            rank: 2,
        },
        AsyncCmd::EndSession,
        AsyncCmd::UserLogin {
            user_id: UserId([1; 32]),
        },
        AsyncCmd::RestoreAuth {
            user_id: UserId([2; 32]),
        },
        AsyncCmd::ToPeer {
            dst: SessionId([3; 28]),
            frame: frame.clone(),
        },
        AsyncCmd::LimitedCast {
            subs,
            frame: frame.clone(),
        },
        AsyncCmd::RwMyInfo { user: s("bob") },
        AsyncCmd::P2p {
            dst: SessionId([4; 28]),
            src: SessionId([5; 28]),
            frame,
        },
        AsyncCmd::CloseP2p {
            sid: SessionId([6; 28]),
        },
        AsyncCmd::NewChMember {
            user: s("bob"),
            ch_name: s("lobby"),
            ch_id: 334,
            level: 1,
        },
        AsyncCmd::DelCh {
            ch_name: s("lobby"),
            ch_id: 426,
        },
        AsyncCmd::RenameCh {
            ch_name: s("old"),
            new_name: s("new"),
            ch_id: Some(1),
        },
        AsyncCmd::ChActFlag {
            ch_name: s("c"),
            sub_name: s("s"),
            state: true,
            ch_id: Some(1),
            sub_id: Some(0),
        },
        AsyncCmd::NewSubCh {
            ch_name: s("x"),
            sub_name: s("y"),
            ch_id: 987,
            sub_id: 5,
            level: 2,
        },
        AsyncCmd::RmSubCh {
            ch_name: s("x"),
            sub_name: s("y"),
            ch_id: 987,
            sub_id: 5,
        },
        AsyncCmd::RenameSubCh {
            ch_name: s("x"),
            sub_name: s("y"),
            new_name: s("z"),
            ch_id: None,
            sub_id: None,
        },
        AsyncCmd::InvitedToCh {
            ch_name: s("x"),
            user: s("bob"),
            ch_id: Some(7),
        },
        AsyncCmd::RmChMember {
            ch_name: s("x"),
            user: s("bob"),
            ch_id: 746,
        },
        AsyncCmd::InviteAccepted {
            ch_name: s("x"),
            user: s("bob"),
            ch_id: None,
        },
        AsyncCmd::MemLevelChanged {
            ch_name: s("x"),
            user: s("bob"),
            ch_id: 774,
            level: 2,
        },
        AsyncCmd::SubChLevelChg {
            ch_name: s("x"),
            sub_name: s("y"),
            level: 3,
            ch_id: 645,
            sub_id: 5,
        },
        AsyncCmd::AddRdonly {
            ch_name: s("x"),
            sub_id: 5,
            level: 4,
            ch_id: Some(9),
        },
        AsyncCmd::RmRdonly {
            ch_name: s("x"),
            sub_id: 5,
            level: 4,
            ch_id: None,
        },
        AsyncCmd::AddCmd {
            cmd: NewCmd {
                cmd_id: CmdId(256),
                name: s("ls_cmds"),
                ..NewCmd::default()
            },
        },
        AsyncCmd::RmCmd { cmd_id: CmdId(300) },
        AsyncCmd::UserRenamed {
            old: s("bob"),
            new_name: s("robert"),
        },
        AsyncCmd::PublicAuth,
    ]
}

#[test]
fn every_async_id_has_a_payload_that_round_trips() {
    let all = one_of_each();
    let ids: Vec<AsyncId> = all.iter().map(AsyncCmd::id).collect();
    assert_eq!(ids, AsyncId::ALL, "one sample per seed id, in seed order");
    for cmd in all {
        let bytes = cmd.to_bytes();
        assert_eq!(AsyncCmd::parse(cmd.id(), &bytes).unwrap(), cmd);
    }
}

#[test]
fn golden_text_payloads() {
    // PROTOCOL.md §4.3 id 30, written exactly as the spec shows it.
    let cmd = AsyncCmd::NewSubCh {
        ch_name: s("x"),
        sub_name: s("y"),
        ch_id: 987,
        sub_id: 5,
        level: 2,
    };
    assert_eq!(
        text::decode(&cmd.to_bytes()),
        r#"-ch_name "x" -sub_name "y" -ch_id 987 -sub_id 5 -level 2"#
    );
    let cmd = AsyncCmd::UserRenamed {
        old: s("old_user_name"),
        new_name: s("new_user_name"),
    };
    assert_eq!(
        text::decode(&cmd.to_bytes()),
        r#"-old "old_user_name" -new_name "new_user_name""#
    );
    // A receiver accepts the seed form without the appended routing ids.
    let seed = text::encode(r#"-ch_name "channel_name" -new_name "new_name""#);
    assert_eq!(
        AsyncCmd::parse(AsyncId::RENAME_CH, &seed).unwrap(),
        AsyncCmd::RenameCh {
            ch_name: s("channel_name"),
            new_name: s("new_name"),
            ch_id: None
        }
    );
}

#[test]
fn golden_binary_payloads() {
    // §4.1: CAST is [SUBCH_LIST 54][u8 type][data].
    let mut raw = vec![0u8; 54];
    raw[..8].copy_from_slice(&987u64.to_le_bytes());
    raw[8] = 5;
    raw.extend_from_slice(&[2, b'h', 0]);
    let AsyncCmd::Cast { subs, frame } = AsyncCmd::parse(AsyncId::CAST, &raw).unwrap() else {
        panic!("cast")
    };
    assert!(subs.contains(SubChKey {
        ch_id: 987,
        sub_id: 5
    }));
    assert_eq!(
        (frame.type_id, &frame.data[..]),
        (TypeId::TEXT, &[b'h', 0][..])
    );
    // P2P is [SID dst][SID src][type][data]; shorter than 57 bytes is refused.
    assert!(AsyncCmd::parse(AsyncId::P2P, &[0; 56]).is_err());
    assert!(AsyncCmd::parse(AsyncId::CAST, &[0; 54]).is_err());
    assert!(AsyncCmd::parse(AsyncId::MAXSES, &[1, 0, 0]).is_err());
    assert_eq!(
        AsyncCmd::parse(AsyncId::MAXSES, &[1, 0, 0, 0]).unwrap(),
        AsyncCmd::MaxSes { max: 1 }
    );
    assert!(AsyncCmd::parse(AsyncId::USER_LOGIN, &[0; 31]).is_err());
    assert!(AsyncCmd::parse(AsyncId::EXIT, &[1]).is_err());
}

#[test]
fn bad_arguments_are_errors() {
    let missing = text::encode(r#"-ch_name "x""#);
    assert!(AsyncCmd::parse(AsyncId::DEL_CH, &missing).is_err());
    let too_big = text::encode(r#"-ch_name "x" -sub_name "y" -ch_id 1 -sub_id 256 -level 2"#);
    assert!(AsyncCmd::parse(AsyncId::NEW_SUB_CH, &too_big).is_err());
    assert!(AsyncCmd::parse(AsyncId(44), &[]).is_err());
}

proptest! {
    #[test]
    fn text_payloads_round_trip(a in "\\PC*", b in "\\PC*", ch_id in any::<u64>(), level in any::<u8>()) {
        let cmds = [
            AsyncCmd::MemLevelChanged { ch_name: a.clone(), user: b.clone(), ch_id, level },
            AsyncCmd::DispRenamed { name: a.clone(), user: b.clone() },
            AsyncCmd::RenameSubCh { ch_name: a, sub_name: b, new_name: s("n"), ch_id: Some(ch_id), sub_id: Some(level) },
        ];
        for cmd in cmds {
            prop_assert_eq!(AsyncCmd::parse(cmd.id(), &cmd.to_bytes()).unwrap(), cmd);
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        for id in 0..=60u8 {
            let _ = AsyncCmd::parse(AsyncId(id), &data);
        }
    }
}
