//! Several hosts as one: three nodes on loopback ports sharing one fresh PostgreSQL database
//! and one NATS subject prefix, with clients on different nodes. Casts, channel and account
//! events, locks, rank changes and P2P cross nodes; NATS and PostgreSQL outages are made
//! with a TCP proxy the test cuts, and a NATS restart with a `nats-server` of the test's own
//! killed and started again mid-storm. Without PostgreSQL and NATS the suite prints one
//! `SKIPPED: cluster suite` line and passes without running; without the nats-server binary
//! the restart test prints its own `SKIPPED` line.

use bytes::Bytes;
use mrci_proto::{BranchId, Frame, SessionId, TypeId, async_id::AsyncId, payload::PeerStat};
use mrci_tests::{
    TestClient, TestHost,
    cluster::{Cluster, NatsServer, TcpProxy, authority, with_authority},
};
use tokio::sync::watch;

const PW: &str = "Cluster-tests1!";

async fn login(node: &TestHost, name: &str) -> anyhow::Result<TestClient> {
    let mut client = TestClient::connect(node.addr).await?;
    client.login(name, PW).await?;
    Ok(client)
}

async fn user(node: &TestHost, name: &str, group: &str) -> anyhow::Result<TestClient> {
    node.add_user(name, PW, group).await?;
    login(node, name).await
}

/// The next frame on async id `id`.
async fn next_on(client: &mut TestClient, id: AsyncId) -> anyhow::Result<Frame> {
    let frames = client.until(|f| f.cmd_id == id.cmd_id()).await?;
    Ok(frames.into_iter().last().expect("until returns the match"))
}

/// True once the host closes the connection, whatever frames come before.
async fn ends(client: &mut TestClient) -> bool {
    for _ in 0..10_000 {
        if client.closed().await {
            return true;
        }
    }
    false
}

fn payload(n: u32) -> Bytes {
    let mut p = n.to_le_bytes().to_vec();
    p.extend(std::iter::repeat_n((n % 251) as u8, 64));
    Bytes::from(p)
}

fn number(p: &[u8]) -> anyhow::Result<u32> {
    let n = u32::from_le_bytes(p.get(..4).unwrap_or_default().try_into()?);
    anyhow::ensure!(p == payload(n), "cast {n} corrupted");
    Ok(n)
}

/// Sends casts `range` pipelined (up to 32 in flight), and fails if the sender ever gets
/// one of its own casts back.
async fn storm(sender: &mut TestClient, range: std::ops::Range<u32>) -> anyhow::Result<()> {
    let cast = sender.id("cast")?;
    let mut in_flight = 0;
    let total = range.len();
    let mut idle = 0;
    for n in range {
        sender
            .send(Frame::new(TypeId::BYTES, cast, BranchId(0), payload(n)))
            .await?;
        in_flight += 1;
        if in_flight == 32 {
            let frames = sender
                .until(|f| f.cmd_id == cast && f.type_id == TypeId::IDLE)
                .await?;
            anyhow::ensure!(
                frames.iter().all(|f| f.cmd_id != AsyncId::CAST.cmd_id()),
                "the sender got its own cast"
            );
            in_flight -= 1;
            idle += 1;
        }
    }
    while idle < total {
        let frames = sender
            .until(|f| f.cmd_id == cast && f.type_id == TypeId::IDLE)
            .await?;
        anyhow::ensure!(
            frames.iter().all(|f| f.cmd_id != AsyncId::CAST.cmd_id()),
            "the sender got its own cast"
        );
        idle += 1;
    }
    Ok(())
}

/// Receives casts until cast `last` arrives; returns their numbers in arrival order.
async fn receive_until(r: &mut TestClient, last: u32) -> anyhow::Result<Vec<u32>> {
    let mut got = Vec::new();
    loop {
        let f = next_on(r, AsyncId::CAST).await?;
        if f.type_id != TypeId::BYTES {
            continue;
        }
        let n = number(&f.payload)?;
        got.push(n);
        if n == last {
            return Ok(got);
        }
    }
}

/// A channel `ch` with sub-channel `sub` that anyone of level 5 may open, owned by `owner`.
async fn open_channel(owner: &mut TestClient, ch: &str, sub: &str) -> anyhow::Result<()> {
    owner.ok("add_ch", &format!("-ch_name {ch}")).await?;
    owner
        .ok("add_sub_ch", &format!("-ch_name {ch} -sub_name {sub}"))
        .await?;
    owner
        .ok(
            "set_sub_ch_level",
            &format!("-ch_name {ch} -sub_name {sub} -level 5"),
        )
        .await?;
    owner
        .ok("open_sub_ch", &format!("-ch_name {ch} -sub_name {sub}"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_cast_storm_reaches_every_node_once_and_in_order() -> anyhow::Result<()> {
    const CASTS: u32 = 300;
    let Some(cluster) = Cluster::start(3, |_, _| {}).await? else {
        return Ok(());
    };
    let n = &cluster.nodes;
    let mut sender = user(&n[0], "caster", "users").await?;
    open_channel(&mut sender, "storm", "wave").await?;
    n[0].add_user("reader", PW, "users").await?;
    let mut readers = Vec::new();
    for i in 0..6 {
        let mut r = login(&n[i % 3], "reader").await?;
        r.ok("open_sub_ch", "-ch_name storm -sub_name wave").await?;
        readers.push(r);
    }
    // A session on the third node with another sub-channel open gets nothing.
    cluster.settled().await;
    let receive = futures::future::try_join_all(
        readers
            .iter_mut()
            .map(|r| async move { receive_until(r, CASTS - 1).await }),
    );
    let ((), received) = tokio::try_join!(storm(&mut sender, 0..CASTS), receive)?;
    for got in received {
        assert_eq!(got, (0..CASTS).collect::<Vec<_>>(), "once each, in order");
    }
    for node in n {
        assert_eq!(node.bus().undelivered(), 0);
        assert_eq!(node.bus().bad_messages(), 0);
    }
    // Every node sees the two others and their sessions.
    let seen = n[2].bus().nodes();
    let names: Vec<&str> = seen.iter().map(|s| s.node.as_str()).collect();
    assert_eq!(names, ["n1", "n2"]);
    assert_eq!(seen[0].sessions, 3, "{seen:?}");
    // What `mrci host status` shows: every node heard on NATS, with its sessions.
    let heard = mrci_host::bus::nodes_seen(
        &cluster.services.nats,
        &cluster.prefix,
        std::time::Duration::from_millis(500),
    )
    .await?;
    let sessions: Vec<(&str, usize)> = heard
        .iter()
        .map(|s| (s.node.as_str(), s.sessions))
        .collect();
    assert_eq!(sessions, [("n1", 3), ("n2", 2), ("n3", 2)]);
    cluster.stop().await
}

#[tokio::test]
async fn channel_and_account_events_cross_nodes() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start(3, |_, _| {}).await? else {
        return Ok(());
    };
    let n = &cluster.nodes;
    let mut owner = user(&n[0], "olga", "users").await?;
    let mut bob = user(&n[1], "bob", "users").await?;
    let mut bob2 = login(&n[2], "bob").await?;
    cluster.settled().await;

    owner.ok("add_ch", "-ch_name lounge").await?;
    owner
        .ok("invite_to_ch", "-ch_name lounge -user bob")
        .await?;
    let invited = next_on(&mut bob, AsyncId::INVITED_TO_CH).await?;
    assert!(
        invited.text_payload().contains("-user \"bob\""),
        "{invited:?}"
    );
    next_on(&mut bob2, AsyncId::INVITED_TO_CH).await?;
    bob.ok("accept_ch", "-ch_name lounge").await?;
    next_on(&mut owner, AsyncId::INVITE_ACCEPTED).await?;
    cluster.settled().await;

    owner
        .ok("set_member_level", "-ch_name lounge -user bob -level 2")
        .await?;
    next_on(&mut bob, AsyncId::MEM_LEVEL_CHANGED).await?;
    next_on(&mut bob2, AsyncId::MEM_LEVEL_CHANGED).await?;

    owner
        .ok("rename_ch", "-ch_name lounge -new_name parlour")
        .await?;
    let renamed = next_on(&mut bob2, AsyncId::RENAME_CH).await?;
    assert!(renamed.text_payload().contains("parlour"), "{renamed:?}");

    // A display-name change on node 2 reaches bob's session on node 3.
    bob.ok("set_disp_name", "-new_name \"Bob Two\"").await?;
    assert_eq!(bob2.next_my_info().await?.peer.display_name, "Bob Two");

    owner.ok("rm_ch", "-ch_name parlour").await?;
    next_on(&mut bob, AsyncId::DEL_CH).await?;
    next_on(&mut bob2, AsyncId::DEL_CH).await?;
    cluster.stop().await
}

#[tokio::test]
async fn locks_rank_and_module_changes_on_one_node_reach_sessions_on_the_others()
-> anyhow::Result<()> {
    let Some(cluster) = Cluster::start(3, |_, _| {}).await? else {
        return Ok(());
    };
    let n = &cluster.nodes;
    let mut admin = user(&n[0], "root_admin", "admin").await?;
    let mut carl = user(&n[1], "carl", "users").await?;
    let mut erin = user(&n[1], "erin", "users").await?;
    let mut erin2 = login(&n[2], "erin").await?;
    cluster.settled().await;

    // A command rank set on node 1 re-announces commands on node 2.
    assert!(!carl.commands.contains_key("host_info"));
    admin
        .ok("add_ranked_cmd", "-command host_info -rank 2")
        .await?;
    carl.until_command("host_info", true).await?;
    let info = carl.ok("host_info", "").await?;
    assert!(info.contains("sessions"), "{info}");

    // A module added on node 1 is loaded on node 2 and its commands announced there;
    // removed, they go again.
    let module = env!("CARGO_BIN_EXE_fake_module");
    admin.ok("add_mod", &format!("-mod_path {module}")).await?;
    carl.until_command("exempt_only", true).await?;
    let mut guest = TestClient::connect(n[2].addr).await?;
    guest.until_command("whoami", true).await?;
    admin.ok("rm_mod", &format!("-mod_path {module}")).await?;
    carl.until_command("exempt_only", false).await?;
    guest.until_command("whoami", false).await?;

    // A lock on node 1 ends erin's sessions on nodes 2 and 3.
    admin.ok("lock_acct", "-user erin -state 1").await?;
    assert!(ends(&mut erin).await, "a locked user's session ends");
    assert!(ends(&mut erin2).await, "on every node");
    cluster.stop().await
}

#[tokio::test]
async fn p2p_crosses_nodes_and_a_killed_node_closes_its_links() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start(3, |_, _| {}).await? else {
        return Ok(());
    };
    let n = &cluster.nodes;
    let mut a = user(&n[0], "pia", "users").await?;
    let mut b = user(&n[2], "pat", "users").await?;
    let (a_sid, b_sid) = (a.header.session_id, b.header.session_id);
    n[0].bus().until_known(&b_sid).await;
    n[2].bus().until_known(&a_sid).await;

    a.ok("p2p_request", &hex::encode(b_sid.0)).await?;
    let req = next_on(&mut b, AsyncId::P2P).await?;
    assert_eq!(req.type_id, TypeId::P2P_REQUEST);
    b.ok("p2p_open", &hex::encode(a_sid.0)).await?;
    let open = next_on(&mut a, AsyncId::P2P).await?;
    assert_eq!(open.type_id, TypeId::P2P_OPEN);

    let to_peer = a.id("to_peer")?;
    let mut data = b_sid.0.to_vec();
    data.extend_from_slice(b"across");
    a.send(Frame::new(
        TypeId::BYTES,
        to_peer,
        BranchId(0),
        Bytes::from(data),
    ))
    .await?;
    let got = next_on(&mut b, AsyncId::P2P).await?;
    assert_eq!(got.type_id, TypeId::BYTES);
    assert_eq!(&got.payload[..28], &a_sid.0[..]);
    assert_eq!(&got.payload[28..], b"across");

    // Node 3 vanishes from the cluster without a word: after the missed heartbeats, pia's
    // link to pat is closed.
    n[2].bus().halt();
    let closed = next_on(&mut a, AsyncId::P2P).await?;
    assert_eq!(closed.type_id, TypeId::P2P_CLOSE);
    assert_eq!(&closed.payload[..], &b_sid.0[..]);
    assert_eq!(a.ok("ls_p2p", "").await?, "No matching rows.\n");
    drop(b);
    cluster.stop().await
}

/// The next PEER_STAT about session `sid`.
async fn peer_stat_of(client: &mut TestClient, sid: SessionId) -> anyhow::Result<PeerStat> {
    loop {
        let f = next_on(client, AsyncId::LIMITED_CAST).await?;
        if f.type_id == TypeId::PEER_STAT {
            let stat = PeerStat::parse(&f.payload)?;
            if stat.session_id == sid {
                return Ok(stat);
            }
        }
    }
}

#[tokio::test]
async fn a_killed_nodes_sessions_leave_their_sub_channels_with_peer_stat() -> anyhow::Result<()> {
    let Some(cluster) = Cluster::start(3, |_, _| {}).await? else {
        return Ok(());
    };
    let n = &cluster.nodes;
    let mut ann = user(&n[0], "ann", "users").await?;
    open_channel(&mut ann, "room", "hall").await?;
    let mut bea = user(&n[1], "bea", "users").await?;
    let mut pat = user(&n[2], "pat", "users").await?;
    let pat_sid = pat.header.session_id;
    for node in &n[..2] {
        node.bus().until_known(&pat_sid).await;
    }
    bea.ok("open_sub_ch", "-ch_name room -sub_name hall")
        .await?;
    cluster.settled().await;

    // Pat opens the sub-channel on node 3: the peers on nodes 1 and 2 hear of it.
    pat.ok("open_sub_ch", "-ch_name room -sub_name hall")
        .await?;
    for peer in [&mut ann, &mut bea] {
        let stat = peer_stat_of(peer, pat_sid).await?;
        assert!(
            !stat.disconnected && stat.sub_channels.len() == 1,
            "{stat:?}"
        );
    }

    // Node 3 dies without a word: after the missed heartbeats its sessions' peers get the
    // PEER_STAT pat would have sent on leaving.
    n[2].bus().halt();
    for peer in [&mut ann, &mut bea] {
        let stat = peer_stat_of(peer, pat_sid).await?;
        assert!(stat.disconnected, "{stat:?}");
        assert!(stat.sub_channels.is_empty(), "{stat:?}");
    }
    drop(pat);
    cluster.stop().await
}

#[tokio::test]
async fn a_nats_outage_mid_storm_loses_counted_casts_and_delivery_resumes() -> anyhow::Result<()> {
    let Some(services) = mrci_tests::cluster::Services::find().await else {
        return Ok(());
    };
    let target = authority(&services.nats).expect("host:port in the NATS URL");
    let proxy = TcpProxy::start(target).await?;
    let via_proxy = with_authority(&services.nats, proxy.addr);
    let Some(cluster) = Cluster::start(2, |i, c| {
        if i == 0 {
            c.cluster.nats_url = Some(via_proxy.clone());
        }
    })
    .await?
    else {
        return Ok(());
    };
    let n = &cluster.nodes;
    let mut sender = user(&n[0], "caster", "users").await?;
    open_channel(&mut sender, "storm", "wave").await?;
    n[0].add_user("reader", PW, "users").await?;
    let mut local = login(&n[0], "reader").await?;
    let mut remote = login(&n[1], "reader").await?;
    for r in [&mut local, &mut remote] {
        r.ok("open_sub_ch", "-ch_name storm -sub_name wave").await?;
    }
    cluster.settled().await;

    // Before the outage: the remote reader has every cast when the connection is cut (a
    // cast still inside the proxy at the cut would be lost uncounted: NATS core delivers at
    // most once, and the publisher cannot know what the cut swallowed).
    storm(&mut sender, 0..100).await?;
    let mut got = receive_until(&mut remote, 99).await?;
    proxy.cut();
    n[0].bus().until_disconnected().await;
    // During the outage, known to the node: local delivery goes on, the rest is counted.
    storm(&mut sender, 100..200).await?;
    // The host has taken them; the node's publisher drops them one by one (one subject each,
    // the sub-channel's).
    n[0].bus().until_undelivered(100).await;
    proxy.restore();
    n[0].bus().until_connected().await;
    storm(&mut sender, 200..300).await?;

    let all = receive_until(&mut local, 299).await?;
    assert_eq!(all, (0..300).collect::<Vec<_>>(), "local delivery went on");
    got.extend(receive_until(&mut remote, 299).await?);
    let expected: Vec<u32> = (0..100).chain(200..300).collect();
    assert_eq!(
        got, expected,
        "the remote reader got everything before and after the outage, once and in order"
    );
    assert_eq!(
        n[0].bus().undelivered(),
        100,
        "the outage's casts are counted, nothing else"
    );
    cluster.stop().await
}

/// Casts numbers from `from` on, up to 32 in flight, until `stop` names the end; `acked`
/// follows how many the host has taken (answered with IDLE). Returns one past the last.
async fn storm_until(
    sender: &mut TestClient,
    from: u32,
    acked: &watch::Sender<u32>,
    mut stop: watch::Receiver<Option<u32>>,
) -> anyhow::Result<u32> {
    let cast = sender.id("cast")?;
    let (mut next, mut in_flight) = (from, 0);
    loop {
        let end = stop.borrow_and_update().unwrap_or(u32::MAX);
        while next < end && in_flight < 32 {
            sender
                .send(Frame::new(TypeId::BYTES, cast, BranchId(0), payload(next)))
                .await?;
            (next, in_flight) = (next + 1, in_flight + 1);
        }
        if in_flight == 0 {
            return Ok(next);
        }
        let frames = sender
            .until(|f| f.cmd_id == cast && f.type_id == TypeId::IDLE)
            .await?;
        anyhow::ensure!(
            frames.iter().all(|f| f.cmd_id != AsyncId::CAST.cmd_id()),
            "the sender got its own cast"
        );
        in_flight -= 1;
        acked.send_modify(|n| *n += 1);
    }
}

/// Receives casts until the one before `stop`'s end, telling `progress` the last number
/// seen; returns the numbers in arrival order.
async fn receive_until_stop(
    r: &mut TestClient,
    progress: &watch::Sender<u32>,
    stop: watch::Receiver<Option<u32>>,
) -> anyhow::Result<Vec<u32>> {
    let mut got = Vec::new();
    loop {
        let f = next_on(r, AsyncId::CAST).await?;
        if f.type_id != TypeId::BYTES {
            continue;
        }
        let n = number(&f.payload)?;
        got.push(n);
        progress.send_replace(n);
        if *stop.borrow() == Some(n + 1) {
            return Ok(got);
        }
    }
}

#[tokio::test]
async fn a_nats_restart_mid_storm_loses_counted_casts_and_delivery_resumes() -> anyhow::Result<()> {
    const TEST: &str = "NATS restart mid-storm";
    let Some(mut nats) = NatsServer::start(TEST).await? else {
        return Ok(());
    };
    let url = nats.url.clone();
    let Some(cluster) = Cluster::start(3, |_, c| c.cluster.nats_url = Some(url.clone())).await?
    else {
        return Ok(());
    };
    let n = &cluster.nodes;
    let mut sender = user(&n[0], "caster", "users").await?;
    open_channel(&mut sender, "storm", "wave").await?;
    n[0].add_user("reader", PW, "users").await?;
    let mut readers = Vec::new();
    for node in n {
        let mut r = login(node, "reader").await?;
        r.ok("open_sub_ch", "-ch_name storm -sub_name wave").await?;
        readers.push(r);
    }
    cluster.settled().await;

    let acked = watch::Sender::new(0u32);
    let (stop_tx, stop) = watch::channel(None);
    let progress: Vec<watch::Sender<u32>> = (0..3).map(|_| watch::Sender::new(0)).collect();
    let cast = storm_until(&mut sender, 0, &acked, stop.clone());
    let receive = futures::future::try_join_all(
        readers
            .iter_mut()
            .zip(&progress)
            .map(|(r, p)| receive_until_stop(r, p, stop.clone())),
    );
    let control = async {
        // Storming; every reader has cast 100 when the server dies.
        for p in &progress {
            p.subscribe().wait_for(|&k| k >= 100).await?;
        }
        nats.kill().await?;
        for node in n {
            node.bus().until_disconnected().await;
        }
        // A hundred casts taken while every node knows NATS is down.
        let down = *acked.borrow();
        acked.subscribe().wait_for(|&k| k >= down + 100).await?;
        nats.restart().await?;
        for node in n {
            node.bus().until_connected().await;
        }
        // Casts the sender writes from now on were taken after every node reconnected
        // (at most 32 were in flight before).
        let resumed = *acked.borrow() + 32;
        let end = resumed + 100;
        stop_tx.send_replace(Some(end));
        anyhow::Ok((resumed, end))
    };
    let (last, received, (resumed, end)) = tokio::try_join!(cast, receive, control)?;
    assert_eq!(last, end);

    let counted = n[0].bus().undelivered();
    assert!(
        counted >= 1,
        "the casts taken while NATS was down are counted"
    );
    let mut losses = Vec::new();
    for (i, got) in received.iter().enumerate() {
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "reader on n{}: at most once, in order",
            i + 1
        );
        assert!(
            (0..=100).chain(resumed..end).all(|k| got.contains(&k)),
            "reader on n{}: everything before the kill and after the restart",
            i + 1
        );
        let lost = u64::from(end) - got.len() as u64;
        if i == 0 {
            assert_eq!(lost, 0, "local delivery never stops");
        } else {
            assert!(
                lost >= counted,
                "n{}: {lost} lost, {counted} counted",
                i + 1
            );
        }
        losses.push(lost);
    }
    eprintln!(
        "NATS restart mid-storm: {end} casts, lost per reader (n1, n2, n3) {losses:?}, \
         {counted} counted undelivered on the sender's node"
    );
    for node in n {
        assert_eq!(node.bus().bad_messages(), 0);
    }
    cluster.stop().await
}

#[tokio::test]
async fn a_postgres_outage_gives_clear_errs_and_sessions_recover() -> anyhow::Result<()> {
    let Some(services) = mrci_tests::cluster::Services::find().await else {
        return Ok(());
    };
    let db = mrci_tests::cluster::TestDb::create(&services.pg).await?;
    let target = authority(&db.url).expect("host:port in the PostgreSQL URL");
    let proxy = TcpProxy::start(target).await?;
    let via_proxy = with_authority(&db.url, proxy.addr);
    let node = TestHost::start_with(|c| {
        c.cluster.database_url = Some(via_proxy.clone());
        c.security.auth_attempts_per_minute = 10_000;
    })
    .await?;
    let mut ann = user(&node, "ann", "users").await?;
    ann.ok("add_ch", "-ch_name before").await?;

    proxy.cut();
    let err = ann.refused("add_ch", "-ch_name during").await?;
    assert!(err.contains("database is unreachable"), "{err}");
    proxy.restore();
    // The session stayed up and the next command works.
    ann.ok("add_ch", "-ch_name after").await?;
    let listed = ann.ok("ls_chs", "").await?;
    assert!(
        listed.contains("before") && listed.contains("after"),
        "{listed}"
    );
    assert!(!listed.contains("during"), "{listed}");
    node.shutdown().await?;
    db.drop_db().await
}

#[tokio::test]
async fn a_node_that_joins_late_learns_sessions_and_open_lists_from_a_full_beat()
-> anyhow::Result<()> {
    let Some(mut cluster) = Cluster::start(2, |_, _| {}).await? else {
        return Ok(());
    };
    let mut ann = user(&cluster.nodes[0], "ann", "users").await?;
    open_channel(&mut ann, "room", "hall").await?;
    let ann_sid = ann.header.session_id;
    cluster.settled().await;

    // A third node starts after ann's presence and open list went out: heartbeats carry
    // only a digest, so it must ask for a full beat to learn them.
    let late = cluster.add_node().await?;
    late.bus().until_known(&ann_sid).await;
    assert!(
        late.bus().resyncs_asked() >= 1,
        "the late node asked for a full beat"
    );
    let mut bea = user(late, "bea", "users").await?;
    bea.ok("open_sub_ch", "-ch_name room -sub_name hall")
        .await?;
    cluster.settled().await;

    // Ann's node dies: the late node knows where ann's leaving PEER_STAT goes only from
    // the full beat.
    cluster.nodes[0].bus().halt();
    let stat = peer_stat_of(&mut bea, ann_sid).await?;
    assert!(stat.disconnected, "{stat:?}");
    assert!(stat.sub_channels.is_empty(), "{stat:?}");
    drop(ann);
    cluster.stop().await
}
