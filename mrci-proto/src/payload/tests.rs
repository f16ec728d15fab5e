//! Payload-level tests that span the families: dispatch by type id and rejection rules.

use super::*;

#[test]
fn dispatch_by_type_id() {
    let sid = [7u8; 28];
    assert_eq!(
        Payload::parse(TypeId::P2P_OPEN, &sid).unwrap(),
        Payload::SessionId(SessionId(sid))
    );
    assert_eq!(
        Payload::parse(TypeId::CH_ID, &[1, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
        Payload::ChId(1)
    );
    assert_eq!(Payload::parse(TypeId::IDLE, &[]).unwrap(), Payload::Empty);
    assert!(Payload::parse(TypeId::KILL_CMD, &[1]).is_err());
    assert_eq!(
        Payload::parse(TypeId::HOST_VER, &[2, 0, 0, 0, 1, 0]).unwrap(),
        Payload::HostVer(Version {
            major: 2,
            minor: 0,
            patch: 1
        })
    );
    assert_eq!(
        Payload::parse(TypeId(200), &[1, 2]).unwrap(),
        Payload::Unknown(Bytes::from_static(&[1, 2]))
    );
    assert_eq!(
        Payload::parse(TypeId::ERR, &text::encode("no")).unwrap(),
        Payload::Text("no".into())
    );
}

#[test]
fn write_then_parse_is_identity_for_fixed_layouts() {
    let values = [
        (TypeId::PEER_INFO, Payload::PeerInfo(PeerInfo::default())),
        (TypeId::MY_INFO, Payload::MyInfo(MyInfo::default())),
        (TypeId::PEER_STAT, Payload::PeerStat(PeerStat::default())),
        (TypeId::CMD_ID, Payload::CmdId(CmdId(300))),
        (TypeId::SESSION_ID, Payload::SessionId(SessionId([3; 28]))),
    ];
    for (type_id, value) in values {
        assert_eq!(
            Payload::parse(type_id, &value.to_bytes()).unwrap(),
            value,
            "{type_id:?}"
        );
    }
}
