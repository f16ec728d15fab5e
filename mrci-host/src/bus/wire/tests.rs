//! Round trips of every message kind, the digest, and refusals of damaged bytes.

use super::*;

fn uid(n: u8) -> UserId {
    UserId([n; 32])
}

fn sid(n: u8) -> SessionId {
    SessionId([n; 28])
}

fn samples() -> Vec<Msg> {
    let mut header = SubChList::default();
    header.0[2] = mrci_proto::SubChKey {
        ch_id: 9,
        sub_id: 4,
    };
    let events = vec![
        Event::SysMsg {
            text: "hi".into(),
            is_err: true,
        },
        Event::Logout {
            notice: Some("bye".into()),
        },
        Event::Logout { notice: None },
        Event::EndSession,
        Event::CmdRanksChanged,
        Event::AccountChanged { user_id: uid(1) },
        Event::UserRenamed {
            user_id: uid(2),
            old: "a".into(),
            new_name: "b".into(),
        },
        Event::Group {
            group: "g".into(),
            change: GroupChange::Reranked(7),
        },
        Event::Group {
            group: "g".into(),
            change: GroupChange::Transferred("h".into()),
        },
        Event::Channel {
            id: AsyncId(30),
            text: "-ch_name x".into(),
            ch: 12,
            effect: ChEffect::ActiveFlag { sub: 3, on: true },
        },
        Event::Channel {
            id: AsyncId(31),
            text: String::new(),
            ch: 12,
            effect: ChEffect::Left { user: uid(4) },
        },
        Event::P2p {
            src: sid(3),
            kind: P2pKind::Open,
            info: Bytes::from_static(b"info"),
        },
        Event::ModulesChanged,
        Event::CloseP2p { sid: sid(5) },
        Event::AccountHint {
            user_name: "mia".into(),
        },
        Event::Banned {
            net: crate::store::IpNet::parse("2001:db8::/32").expect("a range"),
        },
    ];
    let routes = [
        Route::Cast {
            header,
            limited: true,
        },
        Route::Peer(sid(1)),
        Route::Session(sid(2)),
        Route::User(uid(3)),
        Route::Members(vec![1, 2, 3], uid(3)),
        Route::Channel(5, None),
        Route::Channel(5, Some(uid(6))),
        Route::All,
    ];
    let mut out = Vec::new();
    for (n, e) in events.into_iter().enumerate() {
        out.push(Msg::Deliver {
            origin: 77,
            seq: n as u64,
            route: routes[n % routes.len()].clone(),
            body: Body::Event(e),
        });
    }
    out.push(Msg::Deliver {
        origin: 1,
        seq: u64::MAX,
        route: routes[0].clone(),
        body: Body::Cast(WireCast {
            id: AsyncId::CAST,
            src: sid(8),
            type_id: TypeId::TEXT,
            payload: Bytes::from_static(b"\x01\x02"),
        }),
    });
    out.push(Msg::Heartbeat(Beat {
        node: "n1".into(),
        instance: 3,
        sessions_count: 2,
        logged_in: 2,
        undelivered: 5,
        leaving: false,
        digest: 0x0123_4567_89ab_cdef,
        full: true,
        sessions: vec![sid(1), sid(2)],
        open: vec![(sid(2), header)],
    }));
    out.push(Msg::Heartbeat(Beat {
        node: "n3".into(),
        instance: 6,
        sessions_count: 40_000,
        logged_in: 39_000,
        undelivered: 0,
        leaving: false,
        digest: u64::MAX,
        full: false,
        sessions: Vec::new(),
        open: Vec::new(),
    }));
    out.push(Msg::Resync { node: "n3".into() });
    out.push(Msg::Open {
        instance: 4,
        node: "n2".into(),
        sid: sid(9),
        open: header,
    });
    out.push(Msg::Presence {
        instance: 4,
        node: "n2".into(),
        sid: sid(9),
        up: true,
    });
    out
}

#[test]
fn every_message_round_trips_and_every_truncation_is_refused() {
    for msg in samples() {
        let bytes = encode(&msg);
        assert_eq!(decode(&bytes), Ok(msg.clone()));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Err(BadMsg), "{msg:?} cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer), Err(BadMsg));
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = decode(&bytes);
    }
}

#[test]
fn the_digest_ignores_order_and_sees_every_change() {
    let header = SubChList::default();
    let mut other = SubChList::default();
    other.0[0] = mrci_proto::SubChKey {
        ch_id: 1,
        sub_id: 2,
    };
    let (a, b, c) = (sid(1), sid(2), sid(3));
    let base = digest([a, b, c], [(b, other)]);
    assert_eq!(base, digest([c, a, b], [(b, other)]), "order");
    assert_ne!(base, digest([a, b], [(b, other)]), "a session gone");
    assert_ne!(base, digest([a, b, c], []), "an open list gone");
    assert_ne!(
        base,
        digest([a, b, c], [(b, header)]),
        "an open list changed"
    );
    assert_ne!(
        base,
        digest([a, b, c], [(c, other)]),
        "another session's list"
    );
    assert_eq!(digest([], []), 0);
}

#[test]
fn a_beat_that_is_not_full_stays_small_whatever_the_node_holds() {
    let beat = Msg::Heartbeat(Beat {
        node: "node-01".into(),
        instance: 1,
        sessions_count: 100_000,
        logged_in: 90_000,
        undelivered: 12,
        leaving: false,
        digest: 42,
        full: false,
        sessions: Vec::new(),
        open: Vec::new(),
    });
    let bytes = encode(&beat);
    assert!(bytes.len() < 64, "{} bytes", bytes.len());
    assert_eq!(decode(&bytes), Ok(beat));
}
