//! Channels, sub-channels, casting and P2P across many live sessions: level rules, invites,
//! read-only flags, casts and limited casts, pings, peer links, and a cast storm with one
//! receiver that does not read.

use bytes::Bytes;
use mrci_proto::{
    BranchId, Frame, TypeId,
    async_id::AsyncId,
    payload::{PeerInfo, PeerStat},
};
use mrci_tests::{TestClient, TestHost};

const PW: &str = "Channel-tests1!";

async fn user(host: &TestHost, name: &str) -> anyhow::Result<TestClient> {
    host.add_user(name, PW, "users").await?;
    let mut client = TestClient::connect(host.addr).await?;
    client.login(name, PW).await?;
    Ok(client)
}

/// The next frame on async id `id`.
async fn next_on(client: &mut TestClient, id: AsyncId) -> anyhow::Result<Frame> {
    let frames = client.until(|f| f.cmd_id == id.cmd_id()).await?;
    Ok(frames.into_iter().last().expect("until returns the match"))
}

/// Runs `name` to its IDLE and then waits for a frame on async id `id`, which may arrive
/// before or after the IDLE. Returns that frame.
async fn run_then(
    client: &mut TestClient,
    name: &str,
    text: &str,
    id: AsyncId,
) -> anyhow::Result<Frame> {
    let cmd = client.id(name)?;
    client.send(Frame::text(cmd, BranchId(0), text)).await?;
    let (mut idle, mut event) = (false, None);
    while !(idle && event.is_some()) {
        let f = client.recv().await?;
        if f.cmd_id == cmd && f.type_id == TypeId::ERR {
            anyhow::bail!("{name}: {}", f.text_payload());
        }
        idle |= f.cmd_id == cmd && f.type_id == TypeId::IDLE;
        if f.cmd_id == id.cmd_id() && event.is_none() {
            event = Some(f);
        }
    }
    Ok(event.expect("loop ends with an event"))
}

fn sid_hex(client: &TestClient) -> String {
    hex::encode(client.header.session_id.0)
}

#[tokio::test]
async fn invites_levels_and_ownership_follow_the_rules() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut alice = user(&host, "alice").await?;
    let mut bob = user(&host, "bob").await?;
    let mut carol = user(&host, "carol").await?;

    let created = run_then(
        &mut alice,
        "add_ch",
        "-ch_name lounge",
        AsyncId::NEW_CH_MEMBER,
    )
    .await?;
    assert!(
        created.text_payload().contains("-ch_name \"lounge\""),
        "{created:?}"
    );
    assert!(
        alice
            .refused("add_ch", "-ch_name LOUNGE")
            .await?
            .contains("taken")
    );
    assert!(
        alice
            .refused("add_ch", "-ch_name ab")
            .await?
            .starts_with("err: ")
    );

    alice
        .ok("invite_to_ch", "-ch_name lounge -user bob")
        .await?;
    let invited = next_on(&mut bob, AsyncId::INVITED_TO_CH).await?;
    assert!(
        invited.text_payload().contains("-user \"bob\""),
        "{invited:?}"
    );
    assert!(
        alice
            .refused("invite_to_ch", "-ch_name lounge -user bob")
            .await?
            .contains("already invited")
    );
    // A pending invitee has no rights yet.
    assert!(
        bob.refused("ls_ch_members", "-ch_name lounge")
            .await?
            .contains("Access denied")
    );
    bob.ok("accept_ch", "-ch_name lounge").await?;
    next_on(&mut alice, AsyncId::INVITE_ACCEPTED).await?;
    let members = bob.ok("ls_ch_members", "-ch_name lounge").await?;
    assert!(
        members.contains("alice") && members.contains("bob"),
        "{members}"
    );

    alice
        .ok("invite_to_ch", "-ch_name lounge -user carol")
        .await?;
    next_on(&mut carol, AsyncId::INVITED_TO_CH).await?;
    carol.ok("decline_ch", "-ch_name lounge").await?;
    next_on(&mut alice, AsyncId::RM_CH_MEMBER).await?;
    assert!(
        carol
            .refused("accept_ch", "-ch_name lounge")
            .await?
            .contains("no invite")
    );

    // Regular members manage nothing; the owner cannot leave.
    let denied = bob
        .refused("add_sub_ch", "-ch_name lounge -sub_name talk")
        .await?;
    assert!(denied.contains("Access denied"), "{denied}");
    assert!(
        bob.refused("remove_ch_member", "-ch_name lounge -user alice")
            .await?
            .contains("Access denied")
    );
    assert!(
        bob.refused("set_member_level", "-ch_name lounge -user alice -level 4")
            .await?
            .contains("Access denied")
    );
    assert!(
        alice
            .refused("remove_ch_member", "-ch_name lounge -user alice")
            .await?
            .contains("cannot leave")
    );

    alice
        .ok("set_member_level", "-ch_name lounge -user bob -level 2")
        .await?;
    let changed = next_on(&mut bob, AsyncId::MEM_LEVEL_CHANGED).await?;
    assert!(changed.text_payload().contains("-level 2"), "{changed:?}");
    bob.ok("add_sub_ch", "-ch_name lounge -sub_name talk")
        .await?;
    let new_sub = next_on(&mut alice, AsyncId::NEW_SUB_CH).await?;
    assert!(new_sub.text_payload().contains("-sub_id 0"), "{new_sub:?}");
    // An admin may not promote to a level above its own or touch another admin.
    assert!(
        bob.refused("set_member_level", "-ch_name lounge -user bob -level 1")
            .await?
            .contains("Access denied")
    );

    // Handing over ownership demotes the old owner to admin.
    alice
        .ok("set_member_level", "-ch_name lounge -user bob -level 1")
        .await?;
    let mut levels = Vec::new();
    for _ in 0..2 {
        levels.push(
            next_on(&mut bob, AsyncId::MEM_LEVEL_CHANGED)
                .await?
                .text_payload(),
        );
    }
    assert!(
        levels
            .iter()
            .any(|t| t.contains("-user \"bob\"") && t.contains("-level 1")),
        "{levels:?}"
    );
    assert!(
        levels
            .iter()
            .any(|t| t.contains("-user \"alice\"") && t.contains("-level 2")),
        "{levels:?}"
    );
    assert!(
        alice
            .refused("rm_ch", "-ch_name lounge")
            .await?
            .contains("Access denied")
    );
    alice
        .ok("remove_ch_member", "-ch_name lounge -user alice")
        .await?;
    let chs = alice.ok("ls_chs", "").await?;
    assert_eq!(chs, "No matching rows.\n");
    host.shutdown().await
}

#[tokio::test]
async fn casts_reach_matching_open_sub_channels_once_and_respect_read_only() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut owner = user(&host, "owner").await?;
    let mut member = user(&host, "member").await?;
    let mut stranger = user(&host, "stranger").await?;
    let mut other = user(&host, "other").await?;
    owner.ok("add_ch", "-ch_name plaza").await?;
    owner
        .ok("add_sub_ch", "-ch_name plaza -sub_name main")
        .await?;
    owner
        .ok("add_sub_ch", "-ch_name plaza -sub_name side")
        .await?;
    owner
        .ok("invite_to_ch", "-ch_name plaza -user member")
        .await?;
    member.ok("accept_ch", "-ch_name plaza").await?;

    // Not public yet: the stranger may not open it.
    assert!(
        stranger
            .refused("open_sub_ch", "-ch_name plaza -sub_name main")
            .await?
            .contains("Access denied")
    );
    owner
        .ok("set_sub_ch_level", "-ch_name plaza -sub_name main -level 5")
        .await?;
    for c in [&mut owner, &mut member, &mut stranger] {
        c.ok("open_sub_ch", "-ch_name plaza -sub_name main").await?;
    }
    other
        .refused("open_sub_ch", "-ch_name plaza -sub_name side")
        .await?;
    assert!(
        owner
            .refused("open_sub_ch", "-ch_name plaza -sub_name main")
            .await?
            .contains("already open")
    );

    let cast = owner.id("cast")?;
    for n in 0..5u8 {
        owner
            .send(Frame::new(
                TypeId::BYTES,
                cast,
                BranchId(0),
                Bytes::from(vec![n; 3]),
            ))
            .await?;
    }
    for c in [&mut member, &mut stranger] {
        for n in 0..5u8 {
            let f = next_on(c, AsyncId::CAST).await?;
            assert_eq!((f.type_id, &f.payload[..]), (TypeId::BYTES, &[n; 3][..]));
        }
    }
    // The owner's own client saw only the IDLEs of its casts, never the data.
    let own = owner.collect(cast, BranchId(0)).await?;
    assert!(own.is_empty(), "{own:?}");

    // A read-only flag at level 5 closes the sub-channel for everyone who has it open.
    owner
        .ok("add_rdonly_flag", "-ch_name plaza -sub_id 0 -level 5")
        .await?;
    let flag = next_on(&mut stranger, AsyncId::ADD_RDONLY).await?;
    assert!(flag.text_payload().contains("-sub_id 0"), "{flag:?}");
    let reopened = stranger
        .ok("open_sub_ch", "-ch_name plaza -sub_name main")
        .await?;
    assert_eq!(reopened, "Sub-channel opened read-only.\n");
    let open = stranger.ok("ls_open_chs", "").await?;
    assert!(
        open.lines()
            .nth(1)
            .is_some_and(|l| l.trim_end().ends_with('1')),
        "{open}"
    );
    member
        .ok("open_sub_ch", "-ch_name plaza -sub_name main")
        .await?;
    owner
        .ok("open_sub_ch", "-ch_name plaza -sub_name main")
        .await?;
    let stranger_cast = stranger.id("cast")?;
    stranger
        .send(Frame::text(stranger_cast, BranchId(0), "from a reader"))
        .await?;
    stranger.collect(stranger_cast, BranchId(0)).await?;
    owner.send(Frame::text(cast, BranchId(0), "marker")).await?;
    let f = next_on(&mut member, AsyncId::CAST).await?;
    assert_eq!(
        f.text_payload(),
        "marker",
        "the read-only session's cast went nowhere"
    );

    // Deleting the channel closes every open sub-channel, members' or not.
    owner.ok("rm_ch", "-ch_name plaza").await?;
    next_on(&mut stranger, AsyncId::DEL_CH).await?;
    assert_eq!(stranger.ok("ls_open_chs", "").await?, "No matching rows.\n");
    assert_eq!(member.ok("ls_chs", "").await?, "No matching rows.\n");
    host.shutdown().await
}

#[tokio::test]
async fn peer_stat_pings_and_owner_override() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("boss", PW, "admin").await?;
    let mut a = user(&host, "ann").await?;
    let mut b = user(&host, "ben").await?;
    a.ok("add_ch", "-ch_name room").await?;
    a.ok("add_sub_ch", "-ch_name room -sub_name hall").await?;
    a.ok("set_sub_ch_level", "-ch_name room -sub_name hall -level 5")
        .await?;
    a.ok("open_sub_ch", "-ch_name room -sub_name hall").await?;
    b.ok("open_sub_ch", "-ch_name room -sub_name hall").await?;
    // Active updates are on host-wide by default: ann hears of ben opening.
    let stat = next_on(&mut a, AsyncId::LIMITED_CAST).await?;
    assert_eq!(stat.type_id, TypeId::PEER_STAT);
    let stat = PeerStat::parse(&stat.payload)?;
    assert_eq!(stat.session_id, b.header.session_id);
    assert!(!stat.disconnected && stat.sub_channels.len() == 1);

    let answer = run_then(&mut a, "ping_peers", "", AsyncId::TO_PEER).await?;
    assert_eq!(PeerInfo::parse(&answer.payload)?.user_name, "ben");
    let seen = next_on(&mut b, AsyncId::LIMITED_CAST).await?;
    assert_eq!(
        (seen.type_id, PeerInfo::parse(&seen.payload)?.user_name),
        (TypeId::PEER_INFO, "ann".to_owned())
    );

    // A display-name change reaches the active peers as PEER_INFO.
    b.ok("set_disp_name", "-new_name \"Ben B\"").await?;
    let info = next_on(&mut a, AsyncId::LIMITED_CAST).await?;
    assert_eq!(info.type_id, TypeId::PEER_INFO);
    assert_eq!(PeerInfo::parse(&info.payload)?.display_name, "Ben B");

    b.ok("close_sub_ch", "-ch_name room -sub_name hall").await?;
    let stat = next_on(&mut a, AsyncId::LIMITED_CAST).await?;
    assert!(PeerStat::parse(&stat.payload)?.sub_channels.is_empty());
    assert!(
        b.refused("close_sub_ch", "-ch_name room -sub_name hall")
            .await?
            .contains("not open")
    );

    // A host admin with the owner override can delete someone else's channel.
    let mut boss = TestClient::connect(host.addr).await?;
    boss.login("boss", PW).await?;
    assert!(
        boss.refused("rm_ch", "-ch_name room")
            .await?
            .contains("Access denied")
    );
    boss.ok("ch_owner_override", "-state 1").await?;
    boss.ok("rm_ch", "-ch_name room").await?;
    let info = boss.ok("host_info", "").await?;
    assert!(info.contains("Dropped:      0 casts"), "{info}");
    next_on(&mut a, AsyncId::DEL_CH).await?;
    host.shutdown().await
}

#[tokio::test]
async fn p2p_request_open_data_close_and_disconnect() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut a = user(&host, "pia").await?;
    let mut b = user(&host, "pat").await?;
    let to_peer = a.id("to_peer")?;
    let mut data = b.header.session_id.0.to_vec();
    data.extend_from_slice(b"hello");
    a.send(Frame::new(
        TypeId::BYTES,
        to_peer,
        BranchId(0),
        Bytes::from(data.clone()),
    ))
    .await?;
    assert!(
        a.expect(to_peer, TypeId::ERR)
            .await?
            .contains("no accepted P2P link")
    );

    a.ok("p2p_request", &sid_hex(&b)).await?;
    let req = next_on(&mut b, AsyncId::P2P).await?;
    assert_eq!(req.type_id, TypeId::P2P_REQUEST);
    assert_eq!(PeerInfo::parse(&req.payload)?.user_name, "pia");
    assert!(
        a.refused("p2p_open", &sid_hex(&b))
            .await?
            .contains("not asked")
    );
    assert!(
        a.refused("p2p_request", &sid_hex(&b))
            .await?
            .contains("pending")
    );
    b.ok("p2p_open", &sid_hex(&a)).await?;
    let open = next_on(&mut a, AsyncId::P2P).await?;
    assert_eq!(
        (open.type_id, &open.payload[..]),
        (TypeId::P2P_OPEN, &b.header.session_id.0[..])
    );
    let listed = a.ok("ls_p2p", "").await?;
    assert!(listed.contains(&sid_hex(&b)), "{listed}");

    a.send(Frame::new(
        TypeId::BYTES,
        to_peer,
        BranchId(0),
        Bytes::from(data),
    ))
    .await?;
    let got = next_on(&mut b, AsyncId::P2P).await?;
    assert_eq!(got.type_id, TypeId::BYTES);
    assert_eq!(&got.payload[..28], &a.header.session_id.0[..]);
    assert_eq!(&got.payload[28..], b"hello");

    drop(b);
    let closed = next_on(&mut a, AsyncId::P2P).await?;
    assert_eq!(closed.type_id, TypeId::P2P_CLOSE);
    assert_eq!(a.ok("ls_p2p", "").await?, "No matching rows.\n");
    host.shutdown().await
}

#[tokio::test]
async fn a_cast_storm_reaches_fifty_readers_intact_while_one_client_never_reads()
-> anyhow::Result<()> {
    const CASTS: u32 = 400;
    let host = TestHost::start_with(|c| c.security.auth_attempts_per_minute = 1000).await?;
    let mut sender = user(&host, "caster").await?;
    sender.ok("add_ch", "-ch_name storm").await?;
    sender
        .ok("add_sub_ch", "-ch_name storm -sub_name wave")
        .await?;
    sender
        .ok("set_sub_ch_level", "-ch_name storm -sub_name wave -level 5")
        .await?;
    sender
        .ok("open_sub_ch", "-ch_name storm -sub_name wave")
        .await?;
    host.ctx
        .store
        .create_user(
            "reader",
            None,
            "users",
            &host.ctx.hasher().hash(PW).await?,
            false,
            false,
        )
        .await?;
    let mut readers = Vec::new();
    for _ in 0..51 {
        let mut r = TestClient::connect(host.addr).await?;
        r.login("reader", PW).await?;
        r.ok("open_sub_ch", "-ch_name storm -sub_name wave").await?;
        readers.push(r);
    }
    let stalled = readers.pop().expect("51 readers");
    // Pipelined: up to 64 casts in flight, each one a distinct, checkable payload.
    let cast = sender.id("cast")?;
    let payload = |n: u32| {
        let mut p = n.to_le_bytes().to_vec();
        p.extend(std::iter::repeat_n((n % 251) as u8, 200));
        Bytes::from(p)
    };
    let send = async {
        let mut in_flight = 0;
        for n in 0..CASTS {
            sender
                .send(Frame::new(TypeId::BYTES, cast, BranchId(0), payload(n)))
                .await?;
            in_flight += 1;
            if in_flight == 64 {
                sender
                    .until(|f| f.cmd_id == cast && f.type_id == TypeId::IDLE)
                    .await?;
                in_flight -= 1;
            }
        }
        anyhow::Ok(())
    };
    let receive = futures::future::try_join_all(readers.iter_mut().map(|r| async move {
        let mut got = Vec::with_capacity(CASTS as usize);
        while got.len() < CASTS as usize {
            let f = next_on(r, AsyncId::CAST).await?;
            if f.type_id == TypeId::BYTES {
                got.push(f.payload);
            }
        }
        anyhow::Ok(got)
    }));
    let ((), received) = tokio::try_join!(send, receive)?;
    for got in received {
        for (n, p) in got.iter().enumerate() {
            assert_eq!(p, &payload(n as u32), "in order, intact, no duplicates");
        }
    }
    drop(stalled);
    host.shutdown().await
}

#[tokio::test]
async fn membership_and_sub_channel_changes_close_what_they_affect() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut owner = user(&host, "olga").await?;
    let mut member = user(&host, "mark").await?;
    owner.ok("add_ch", "-ch_name forum").await?;
    owner
        .ok("add_sub_ch", "-ch_name forum -sub_name talk")
        .await?;
    owner
        .ok("add_sub_ch", "-ch_name forum -sub_name news")
        .await?;
    owner
        .ok("invite_to_ch", "-ch_name forum -user mark")
        .await?;
    member.ok("accept_ch", "-ch_name forum").await?;
    member
        .ok("open_sub_ch", "-ch_name forum -sub_name talk")
        .await?;
    member
        .ok("open_sub_ch", "-ch_name forum -sub_name news")
        .await?;
    // Removing one sub-channel closes only that one.
    owner
        .ok("rm_sub_ch", "-ch_name forum -sub_name news")
        .await?;
    next_on(&mut member, AsyncId::RM_SUB_CH).await?;
    let open = member.ok("ls_open_chs", "").await?;
    assert!(open.contains("talk") && !open.contains("news"), "{open}");
    // A level change closes every sub-channel of the channel for that member.
    owner
        .ok("set_member_level", "-ch_name forum -user mark -level 3")
        .await?;
    next_on(&mut member, AsyncId::MEM_LEVEL_CHANGED).await?;
    assert_eq!(member.ok("ls_open_chs", "").await?, "No matching rows.\n");
    // So does being removed, which also drops the channel from the member's list.
    member
        .ok("open_sub_ch", "-ch_name forum -sub_name talk")
        .await?;
    owner
        .ok("remove_ch_member", "-ch_name forum -user mark")
        .await?;
    next_on(&mut member, AsyncId::RM_CH_MEMBER).await?;
    assert_eq!(member.ok("ls_open_chs", "").await?, "No matching rows.\n");
    assert!(
        member
            .refused("open_sub_ch", "-ch_name forum -sub_name talk")
            .await?
            .contains("Access denied")
    );
    // At most six sub-channels open at once.
    for n in 0..7 {
        owner
            .ok("add_sub_ch", &format!("-ch_name forum -sub_name sub{n}x"))
            .await?;
    }
    for n in 0..5 {
        owner
            .ok("open_sub_ch", &format!("-ch_name forum -sub_name sub{n}x"))
            .await?;
    }
    owner
        .ok("open_sub_ch", "-ch_name forum -sub_name talk")
        .await?;
    let full = owner
        .refused("open_sub_ch", "-ch_name forum -sub_name sub6x")
        .await?;
    assert!(full.contains("maximum of 6"), "{full}");
    host.shutdown().await
}
