//! Channel and sub-channel commands end to end (issue 13): `rename_ch`, `find_ch`,
//! `rename_sub_ch`, `ls_sub_chs`, `set_sub_ch_level`, `set_active_flag`, the read-only flags
//! and `p2p_close`, each with several live sessions of different users and levels, plus the
//! `-level` argument edge (`+2`, `2x`).
//!
//! Every async event is checked as the client receives it: the async id as the frame's
//! command id, branch 0, type TEXT and the exact seed TEXT of PROTOCOL.md §4.3 (with the
//! `-ch_id`/`-sub_id` keys §9 adds). That an event did *not* reach a session is shown with a
//! marker: a display-name change sends that session a MY_INFO through the same ordered event
//! queue, after anything queued before it.

use bytes::Bytes;
use mrci_proto::{
    BranchId, Frame, TypeId,
    async_cmd::AsyncCmd,
    async_id::AsyncId,
    payload::{PeerInfo, PeerStat},
};
use mrci_tests::{TestClient, TestHost};

use crate::events::{assert_seed, next_on, none_on, run_then, seed_on};

const PW: &str = "C0verage-chans!";

async fn user(host: &TestHost, name: &str) -> anyhow::Result<TestClient> {
    host.add_user(name, PW, "users").await?;
    let mut client = TestClient::connect(host.addr).await?;
    client.login(name, PW).await?;
    Ok(client)
}

/// The body rows of a table viewer's output, cells split on whitespace.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Expected table rows.
fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect()
}

/// Creates channel `name` (once the owner's session has applied it) and returns its id.
async fn add_ch(owner: &mut TestClient, name: &str) -> anyhow::Result<u64> {
    let args = format!("-ch_name {name}");
    let (_, frame) = run_then(owner, "add_ch", &args, AsyncId::NEW_CH_MEMBER).await?;
    match AsyncCmd::parse(AsyncId::NEW_CH_MEMBER, &frame.payload)? {
        AsyncCmd::NewChMember { ch_id, .. } => Ok(ch_id),
        other => anyhow::bail!("not NEW_CH_MEMBER: {other:?}"),
    }
}

/// `member` (user `name`) joins `ch`, once its session has applied the membership.
async fn join(
    owner: &mut TestClient,
    member: &mut TestClient,
    ch: &str,
    name: &str,
) -> anyhow::Result<()> {
    owner
        .ok("invite_to_ch", &format!("-ch_name {ch} -user {name}"))
        .await?;
    let args = format!("-ch_name {ch}");
    run_then(member, "accept_ch", &args, AsyncId::INVITE_ACCEPTED).await?;
    Ok(())
}

/// Opens `sub` of `ch` and returns the reply.
async fn open(client: &mut TestClient, ch: &str, sub: &str) -> anyhow::Result<String> {
    let args = format!("-ch_name {ch} -sub_name {sub}");
    client.ok("open_sub_ch", &args).await
}

/// The (sub-channel name, read-only) pairs of the session's open sub-channels.
async fn open_subs(client: &mut TestClient) -> anyhow::Result<Vec<(String, String)>> {
    let out = client.ok("ls_open_chs", "").await?;
    Ok(rows(&out)
        .into_iter()
        .map(|r| (r[1].clone(), r[4].clone()))
        .collect())
}

fn pair(name: &str, read_only: u8) -> (String, String) {
    (name.to_owned(), read_only.to_string())
}

fn sid_hex(client: &TestClient) -> String {
    hex::encode(client.header.session_id.0)
}

/// Sends TEXT to the inline `cast` command and waits for its IDLE.
async fn cast(client: &mut TestClient, text: &str) -> anyhow::Result<()> {
    let id = client.id("cast")?;
    client.send(Frame::text(id, BranchId(0), text)).await?;
    client.collect(id, BranchId(0)).await?;
    Ok(())
}

#[tokio::test]
async fn rename_ch_reaches_members_and_find_ch_searches_by_name_and_id() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut opal = user(&host, "opal").await?;
    let mut pete = user(&host, "pete").await?;
    let mut quin = user(&host, "quin").await?;
    let ch = add_ch(&mut opal, "harbor").await?;
    let other = add_ch(&mut quin, "inlet").await?;
    join(&mut opal, &mut pete, "harbor", "pete").await?;

    // Only the owner renames, not even an admin member; names are checked.
    opal.ok("set_member_level", "-ch_name harbor -user pete -level 2")
        .await?;
    let err = pete
        .refused("rename_ch", "-ch_name harbor -new_name haven")
        .await?;
    assert!(err.contains("Access denied"), "{err}");
    for (args, why) in [
        ("-ch_name harbor -new_name INLET", "taken"),
        ("-ch_name harbor -new_name ab", "invalid channel name"),
        (
            "-ch_name harbor -new_name \"new haven\"",
            "invalid channel name",
        ),
        ("-ch_name harbor", "-new_name is required"),
        (
            "-ch_name nowhere -new_name haven",
            "No channel named nowhere",
        ),
    ] {
        let err = opal.refused("rename_ch", args).await?;
        assert!(
            err.starts_with("err: ") && err.contains(why),
            "{args}: {err}"
        );
    }

    let (out, frame) = run_then(
        &mut opal,
        "rename_ch",
        "-ch_name harbor -new_name haven",
        AsyncId::RENAME_CH,
    )
    .await?;
    assert_eq!(out, "Channel harbor renamed to haven.\n");
    let expected = AsyncCmd::RenameCh {
        ch_name: "harbor".into(),
        new_name: "haven".into(),
        ch_id: Some(ch),
    };
    let seed = format!(r#"-ch_name "harbor" -new_name "haven" -ch_id {ch}"#);
    assert_seed(&frame, &expected, &seed)?;
    seed_on(&mut pete, &expected, &seed).await?;
    none_on(&mut quin, &[AsyncId::RENAME_CH], "Quin Q").await?;

    // find_ch: anyone may search, by literal substring (any case) or by id.
    let (id, other_id) = (ch.to_string(), other.to_string());
    let both = table(&[&[&id, "haven"], &[&other_id, "inlet"]]);
    assert_eq!(rows(&quin.ok("find_ch", "").await?), both);
    assert_eq!(
        rows(&quin.ok("find_ch", "-name AVE").await?),
        table(&[&[&id, "haven"]])
    );
    assert_eq!(
        rows(&quin.ok("find_ch", &format!("-id {other}")).await?),
        table(&[&[&other_id, "inlet"]])
    );
    let none = "No matching rows.\n";
    assert_eq!(quin.ok("find_ch", "-name harbor").await?, none);
    assert_eq!(quin.ok("find_ch", "-name %").await?, none);
    assert_eq!(
        quin.ok("find_ch", &format!("-name inlet -id {ch}")).await?,
        none
    );
    for bad in ["-id x1", "-id 0", "-id -5", "-id +1"] {
        let err = quin.refused("find_ch", bad).await?;
        assert!(err.contains("-id"), "{bad}: {err}");
    }
    host.shutdown().await
}

#[tokio::test]
async fn rename_sub_ch_is_announced_and_ls_sub_chs_shows_non_members_only_public_ones()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut rita = user(&host, "rita").await?;
    let mut sven = user(&host, "sven").await?;
    let mut tom = user(&host, "tom").await?;
    let ch = add_ch(&mut rita, "studio").await?;
    join(&mut rita, &mut sven, "studio", "sven").await?;
    for sub in ["lobby", "office", "vault"] {
        rita.ok("add_sub_ch", &format!("-ch_name studio -sub_name {sub}"))
            .await?;
    }
    rita.ok(
        "set_sub_ch_level",
        "-ch_name studio -sub_name lobby -level 5",
    )
    .await?;
    rita.ok(
        "set_sub_ch_level",
        "-ch_name studio -sub_name vault -level 2",
    )
    .await?;
    open(&mut sven, "studio", "office").await?;

    let all = table(&[
        &["0", "lobby", "5", "0"],
        &["1", "office", "4", "0"],
        &["2", "vault", "2", "0"],
    ]);
    assert_eq!(rows(&sven.ok("ls_sub_chs", "-ch_name studio").await?), all);
    let public = table(&[&["0", "lobby", "5", "0"]]);
    assert_eq!(
        rows(&tom.ok("ls_sub_chs", "-ch_name studio").await?),
        public
    );
    let err = tom.refused("ls_sub_chs", "-ch_name nowhere").await?;
    assert!(err.contains("No channel named"), "{err}");

    for (owner, args, why) in [
        (true, "-sub_name office -new_name LOBBY", "taken"),
        (true, "-sub_name office -new_name ab", "invalid"),
        (
            true,
            "-sub_name attic -new_name booth",
            "no sub-channel attic",
        ),
        (true, "-sub_name office", "-new_name is required"),
        (false, "-sub_name office -new_name booth", "Access denied"),
    ] {
        let who = if owner { &mut rita } else { &mut sven };
        let err = who
            .refused("rename_sub_ch", &format!("-ch_name studio {args}"))
            .await?;
        assert!(err.contains(why), "{args}: {err}");
    }
    let (out, frame) = run_then(
        &mut rita,
        "rename_sub_ch",
        "-ch_name studio -sub_name office -new_name booth",
        AsyncId::RENAME_SUB_CH,
    )
    .await?;
    assert_eq!(out, "Sub-channel office renamed to booth.\n");
    let expected = AsyncCmd::RenameSubCh {
        ch_name: "studio".into(),
        sub_name: "office".into(),
        new_name: "booth".into(),
        ch_id: Some(ch),
        sub_id: Some(1),
    };
    let seed =
        format!(r#"-ch_name "studio" -sub_name "office" -new_name "booth" -ch_id {ch} -sub_id 1"#);
    assert_seed(&frame, &expected, &seed)?;
    seed_on(&mut sven, &expected, &seed).await?;
    none_on(&mut tom, &[AsyncId::RENAME_SUB_CH], "Tom T").await?;
    // A rename keeps the sub-channel open under its new name.
    assert_eq!(open_subs(&mut sven).await?, [pair("booth", 0)]);
    let renamed = sven.ok("ls_sub_chs", "-ch_name studio").await?;
    assert_eq!(rows(&renamed)[1], ["1", "booth", "4", "0"]);
    assert_eq!(
        rows(&tom.ok("ls_sub_chs", "-ch_name studio").await?),
        public
    );

    // With active updates on host-wide, the per-sub-channel flag is stored but has no effect.
    let out = rita
        .ok(
            "set_active_flag",
            "-ch_name studio -sub_name lobby -state 1",
        )
        .await?;
    assert!(out.contains("has no effect"), "{out}");
    let flagged = rows(&tom.ok("ls_sub_chs", "-ch_name studio").await?);
    assert_eq!(flagged, table(&[&["0", "lobby", "5", "1"]]));
    host.shutdown().await
}

#[tokio::test]
async fn set_sub_ch_level_closes_it_where_open_and_changes_who_may_open() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut uma = user(&host, "uma").await?;
    let mut vera = user(&host, "vera").await?;
    let mut walt = user(&host, "walt").await?;
    let ch = add_ch(&mut uma, "arena").await?;
    join(&mut uma, &mut vera, "arena", "vera").await?;
    for sub in ["ring", "side"] {
        uma.ok("add_sub_ch", &format!("-ch_name arena -sub_name {sub}"))
            .await?;
        open(&mut vera, "arena", sub).await?;
    }
    assert!(
        walt.refused("open_sub_ch", "-ch_name arena -sub_name ring")
            .await?
            .contains("Access denied")
    );
    let err = vera
        .refused("set_sub_ch_level", "-ch_name arena -sub_name ring -level 5")
        .await?;
    assert!(err.contains("Access denied"), "{err}");

    let level_chg = |level: u8| {
        let cmd = AsyncCmd::SubChLevelChg {
            ch_name: "arena".into(),
            sub_name: "ring".into(),
            level,
            ch_id: ch,
            sub_id: 0,
        };
        let seed =
            format!(r#"-ch_name "arena" -sub_name "ring" -level {level} -ch_id {ch} -sub_id 0"#);
        (cmd, seed)
    };
    let (out, frame) = run_then(
        &mut uma,
        "set_sub_ch_level",
        "-ch_name arena -sub_name ring -level 5",
        AsyncId::SUB_CH_LEVEL_CHG,
    )
    .await?;
    assert_eq!(out, "ring now opens for level 5 and better.\n");
    let (expected, seed) = level_chg(5);
    assert_seed(&frame, &expected, &seed)?;
    seed_on(&mut vera, &expected, &seed).await?;
    assert_eq!(
        open_subs(&mut vera).await?,
        [pair("side", 0)],
        "ring closed"
    );
    none_on(&mut walt, &[AsyncId::SUB_CH_LEVEL_CHG], "Walt W").await?;

    // Public now: the outsider may open it. Back to level 3 closes it for him and for the
    // regular member, who may no longer reopen it; the owner still may.
    assert_eq!(
        open(&mut walt, "arena", "ring").await?,
        "Sub-channel opened.\n"
    );
    open(&mut vera, "arena", "ring").await?;
    uma.ok("set_sub_ch_level", "-ch_name arena -sub_name ring -level 3")
        .await?;
    let (expected, seed) = level_chg(3);
    for c in [&mut walt, &mut vera] {
        seed_on(c, &expected, &seed).await?;
    }
    assert_eq!(walt.ok("ls_open_chs", "").await?, "No matching rows.\n");
    assert_eq!(open_subs(&mut vera).await?, [pair("side", 0)]);
    for c in [&mut walt, &mut vera] {
        let err = c
            .refused("open_sub_ch", "-ch_name arena -sub_name ring")
            .await?;
        assert!(err.contains("opens for level 3"), "{err}");
    }
    open(&mut uma, "arena", "ring").await?;
    for bad in ["0", "6"] {
        let args = format!("-ch_name arena -sub_name ring -level {bad}");
        assert!(
            uma.refused("set_sub_ch_level", &args)
                .await?
                .contains("-level")
        );
    }
    host.shutdown().await
}

#[tokio::test]
async fn set_active_flag_turns_presence_updates_on_and_off() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| c.channels.active_updates = false).await?;
    let mut xeno = user(&host, "xeno").await?;
    let mut yara = user(&host, "yara").await?;
    let ch = add_ch(&mut xeno, "beacon").await?;
    join(&mut xeno, &mut yara, "beacon", "yara").await?;
    xeno.ok("add_sub_ch", "-ch_name beacon -sub_name lamp")
        .await?;
    open(&mut xeno, "beacon", "lamp").await?;
    open(&mut yara, "beacon", "lamp").await?;
    let idle = xeno.refused("ping_peers", "").await?;
    assert!(idle.contains("not active-updating"), "{idle}");
    for (owner, args, why) in [
        (false, "-state 1", "Access denied"),
        (true, "-state 2", "-state must be 0 or 1"),
        (true, "", "-state must be 0 or 1"),
    ] {
        let who = if owner { &mut xeno } else { &mut yara };
        let args = format!("-ch_name beacon -sub_name lamp {args}");
        let err = who.refused("set_active_flag", &args).await?;
        assert!(err.contains(why), "{args}: {err}");
    }

    let flag = |state: bool| {
        let cmd = AsyncCmd::ChActFlag {
            ch_name: "beacon".into(),
            sub_name: "lamp".into(),
            state,
            ch_id: Some(ch),
            sub_id: Some(0),
        };
        let n = u8::from(state);
        let seed =
            format!(r#"-ch_name "beacon" -sub_name "lamp" -state {n} -ch_id {ch} -sub_id 0"#);
        (cmd, seed)
    };
    let set = "-ch_name beacon -sub_name lamp -state";
    let (out, frame) = run_then(
        &mut xeno,
        "set_active_flag",
        &format!("{set} 1"),
        AsyncId::CH_ACT_FLAG,
    )
    .await?;
    assert_eq!(out, "Active updates of lamp are on.\n");
    let (expected, seed) = flag(true);
    assert_seed(&frame, &expected, &seed)?;
    seed_on(&mut yara, &expected, &seed).await?;
    let subs = rows(&yara.ok("ls_sub_chs", "-ch_name beacon").await?);
    assert_eq!(subs, table(&[&["0", "lamp", "4", "1"]]));

    // Both sessions are active now: a ping is answered, and a close is announced.
    let (out, answer) = run_then(&mut xeno, "ping_peers", "", AsyncId::TO_PEER).await?;
    assert_eq!(out, "Ping sent to 1 peers.\n");
    assert_eq!(answer.type_id, TypeId::PEER_INFO);
    assert_eq!(PeerInfo::parse(&answer.payload)?.user_name, "yara");
    let ping = next_on(&mut yara, AsyncId::LIMITED_CAST).await?;
    assert_eq!(ping.type_id, TypeId::PEER_INFO);
    assert_eq!(PeerInfo::parse(&ping.payload)?.user_name, "xeno");
    yara.ok("close_sub_ch", "-ch_name beacon -sub_name lamp")
        .await?;
    let stat = next_on(&mut xeno, AsyncId::LIMITED_CAST).await?;
    assert_eq!(stat.type_id, TypeId::PEER_STAT);
    let stat = PeerStat::parse(&stat.payload)?;
    assert_eq!(stat.session_id, yara.header.session_id);
    assert!(stat.sub_channels.is_empty() && !stat.disconnected);
    open(&mut yara, "beacon", "lamp").await?;
    let stat = next_on(&mut xeno, AsyncId::LIMITED_CAST).await?;
    assert_eq!(PeerStat::parse(&stat.payload)?.sub_channels.len(), 1);

    // Off again: the open sub-channels stop making their sessions active.
    let (out, frame) = run_then(
        &mut xeno,
        "set_active_flag",
        &format!("{set} 0"),
        AsyncId::CH_ACT_FLAG,
    )
    .await?;
    assert_eq!(out, "Active updates of lamp are off.\n");
    let (expected, seed) = flag(false);
    assert_seed(&frame, &expected, &seed)?;
    seed_on(&mut yara, &expected, &seed).await?;
    for c in [&mut xeno, &mut yara] {
        let err = c.refused("ping_peers", "").await?;
        assert!(err.contains("not active-updating"), "{err}");
    }
    host.shutdown().await
}

#[tokio::test]
async fn read_only_flags_close_the_sub_channel_and_removing_one_restores_casting()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut wade = user(&host, "wade").await?;
    let mut wade_two = TestClient::connect(host.addr).await?;
    wade_two.login("wade", PW).await?;
    let mut xena = user(&host, "xena").await?;
    let mut zed = user(&host, "zed").await?;
    let ch = add_ch(&mut wade, "forge").await?;
    join(&mut wade, &mut xena, "forge", "xena").await?;
    for sub in ["anvil", "bellows"] {
        wade.ok("add_sub_ch", &format!("-ch_name forge -sub_name {sub}"))
            .await?;
    }
    wade.ok(
        "set_sub_ch_level",
        "-ch_name forge -sub_name anvil -level 5",
    )
    .await?;
    for c in [&mut wade, &mut wade_two, &mut xena, &mut zed] {
        open(c, "forge", "anvil").await?;
    }

    let seed = format!(r#"-ch_name "forge" -sub_id 0 -level 4 -ch_id {ch}"#);
    let (ch_name, sub_id, level, ch_id) = ("forge".to_owned(), 0, 4, Some(ch));
    let removed = AsyncCmd::RmRdonly {
        ch_name: ch_name.clone(),
        sub_id,
        level,
        ch_id,
    };
    let added = AsyncCmd::AddRdonly {
        ch_name,
        sub_id,
        level,
        ch_id,
    };
    let flag_args = "-ch_name forge -sub_id 0 -level 4";
    let (out, frame) =
        run_then(&mut wade, "add_rdonly_flag", flag_args, AsyncId::ADD_RDONLY).await?;
    assert_eq!(out, "Read-only flag for sub-channel 0 at level 4 added.\n");
    assert_seed(&frame, &added, &seed)?;
    // Every session with it open gets the event and has it closed, member or not.
    for c in [&mut wade_two, &mut xena, &mut zed] {
        seed_on(c, &added, &seed).await?;
    }
    for c in [&mut wade, &mut wade_two, &mut xena, &mut zed] {
        assert_eq!(c.ok("ls_open_chs", "").await?, "No matching rows.\n");
    }
    let reopened = open(&mut xena, "forge", "anvil").await?;
    assert_eq!(reopened, "Sub-channel opened read-only.\n");
    assert_eq!(open_subs(&mut xena).await?, [pair("anvil", 1)]);
    for c in [&mut wade, &mut wade_two, &mut zed] {
        assert_eq!(open(c, "forge", "anvil").await?, "Sub-channel opened.\n");
    }
    // The reader receives but cannot send: wade gets wade_two's marker, not xena's cast.
    cast(&mut xena, "from the reader").await?;
    cast(&mut wade_two, "marker").await?;
    for c in [&mut wade, &mut xena] {
        assert_eq!(next_on(c, AsyncId::CAST).await?.text_payload(), "marker");
    }

    // Flags are listed per channel; non-members see only those of public sub-channels. A
    // flag may name a sub-channel id that does not exist.
    wade.ok("add_rdonly_flag", "-ch_name forge -sub_id 1 -level 3")
        .await?;
    wade.ok("add_rdonly_flag", "-ch_name forge -sub_id 7 -level 2")
        .await?;
    let id = ch.to_string();
    let all = table(&[
        &["forge", &id, "0", "4"],
        &["forge", &id, "1", "3"],
        &["forge", &id, "7", "2"],
    ]);
    assert_eq!(
        rows(&xena.ok("ls_rdonly_flags", "-ch_name forge").await?),
        all
    );
    assert_eq!(
        rows(&zed.ok("ls_rdonly_flags", "-ch_name forge").await?),
        table(&[&["forge", &id, "0", "4"]])
    );
    for (owner, cmd, args, why) in [
        (true, "add_rdonly_flag", "-sub_id 0 -level 4", "exists"),
        (true, "rm_rdonly_flag", "-sub_id 5 -level 4", "no such"),
        (true, "add_rdonly_flag", "-sub_id 256 -level 4", "-sub_id"),
        (true, "add_rdonly_flag", "-sub_id 0 -level 6", "-level"),
        (
            false,
            "add_rdonly_flag",
            "-sub_id 2 -level 4",
            "Access denied",
        ),
        (
            false,
            "rm_rdonly_flag",
            "-sub_id 0 -level 4",
            "Access denied",
        ),
    ] {
        let who = if owner { &mut wade } else { &mut xena };
        let err = who.refused(cmd, &format!("-ch_name forge {args}")).await?;
        assert!(err.contains(why), "{cmd} {args}: {err}");
    }

    let (out, frame) = run_then(&mut wade, "rm_rdonly_flag", flag_args, AsyncId::RM_RDONLY).await?;
    assert_eq!(
        out,
        "Read-only flag for sub-channel 0 at level 4 removed.\n"
    );
    assert_seed(&frame, &removed, &seed)?;
    seed_on(&mut xena, &removed, &seed).await?;
    assert_eq!(xena.ok("ls_open_chs", "").await?, "No matching rows.\n");
    assert_eq!(
        open(&mut xena, "forge", "anvil").await?,
        "Sub-channel opened.\n"
    );
    open(&mut wade, "forge", "anvil").await?;
    cast(&mut xena, "writable again").await?;
    assert_eq!(
        next_on(&mut wade, AsyncId::CAST).await?.text_payload(),
        "writable again"
    );
    host.shutdown().await
}

#[tokio::test]
async fn p2p_close_from_either_side_reaches_the_peer_and_clears_ls_p2p() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut abe = user(&host, "abe").await?;
    let mut bea = user(&host, "bea").await?;
    let mut cal = user(&host, "cal").await?;

    /// `from` closes its link or request with `to`; `to` sees P2P_CLOSE on id 24 carrying
    /// `from`'s session id, and neither lists the other any more.
    async fn close(from: &mut TestClient, to: &mut TestClient) -> anyhow::Result<()> {
        assert_eq!(from.ok("p2p_close", &sid_hex(to)).await?, "Link closed.\n");
        let f = next_on(to, AsyncId::P2P).await?;
        assert_eq!(
            (f.branch_id, f.type_id, &f.payload[..]),
            (
                BranchId(0),
                TypeId::P2P_CLOSE,
                &from.header.session_id.0[..]
            )
        );
        for c in [from, to] {
            assert_eq!(c.ok("ls_p2p", "").await?, "No matching rows.\n");
        }
        Ok(())
    }
    async fn request(from: &mut TestClient, to: &mut TestClient) -> anyhow::Result<()> {
        from.ok("p2p_request", &sid_hex(to)).await?;
        let req = next_on(to, AsyncId::P2P).await?;
        assert_eq!(req.type_id, TypeId::P2P_REQUEST);
        Ok(())
    }
    async fn link(a: &mut TestClient, b: &mut TestClient) -> anyhow::Result<()> {
        request(a, b).await?;
        b.ok("p2p_open", &sid_hex(a)).await?;
        assert_eq!(next_on(a, AsyncId::P2P).await?.type_id, TypeId::P2P_OPEN);
        assert_eq!(rows(&a.ok("ls_p2p", "").await?), [[sid_hex(b), "0".into()]]);
        assert_eq!(rows(&b.ok("ls_p2p", "").await?), [[sid_hex(a), "0".into()]]);
        Ok(())
    }

    // An open link, closed by the side that asked, then by the side that accepted.
    link(&mut abe, &mut bea).await?;
    close(&mut abe, &mut bea).await?;
    let to_peer = abe.id("to_peer")?;
    let mut data = bea.header.session_id.0.to_vec();
    data.extend_from_slice(b"after close");
    let frame = Frame::new(TypeId::BYTES, to_peer, BranchId(0), Bytes::from(data));
    abe.send(frame).await?;
    let err = abe.expect(to_peer, TypeId::ERR).await?;
    assert!(err.contains("no accepted P2P link"), "{err}");
    link(&mut abe, &mut bea).await?;
    close(&mut bea, &mut abe).await?;

    // A pending request, declined by its receiver, then withdrawn by its sender.
    request(&mut cal, &mut abe).await?;
    assert_eq!(
        rows(&abe.ok("ls_p2p", "").await?),
        [[sid_hex(&cal), "1".into()]]
    );
    close(&mut abe, &mut cal).await?;
    request(&mut cal, &mut abe).await?;
    close(&mut cal, &mut abe).await?;

    for (args, why) in [
        (sid_hex(&bea), "no pending request or link"),
        (sid_hex(&abe), "your own session"),
        ("not-a-session".to_owned(), "28-byte session id"),
    ] {
        let err = abe.refused("p2p_close", &args).await?;
        assert!(err.contains(why), "{args}: {err}");
    }
    host.shutdown().await
}

#[tokio::test]
async fn signed_or_suffixed_levels_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut lev = user(&host, "lev").await?;
    let mut max = user(&host, "max").await?;
    let ch = add_ch(&mut lev, "levels").await?;
    join(&mut lev, &mut max, "levels", "max").await?;
    lev.ok("add_sub_ch", "-ch_name levels -sub_name stage")
        .await?;
    open(&mut max, "levels", "stage").await?;

    for bad in ["+2", "2x"] {
        for (cmd, args) in [
            ("set_member_level", "-user max"),
            ("set_sub_ch_level", "-sub_name stage"),
            ("add_rdonly_flag", "-sub_id 0"),
        ] {
            let args = format!("-ch_name levels {args} -level {bad}");
            let err = lev.refused(cmd, &args).await?;
            assert!(
                err.starts_with("err: -level: invalid channel level"),
                "{cmd} {args}: {err}"
            );
        }
    }
    let members = rows(&lev.ok("ls_ch_members", "-ch_name levels").await?);
    assert!(
        members
            .iter()
            .any(|r| r[1] == "max" && r[r.len() - 1] == "4"),
        "{members:?}"
    );
    let subs = rows(&lev.ok("ls_sub_chs", "-ch_name levels").await?);
    assert_eq!(subs, table(&[&["0", "stage", "4", "0"]]));
    let flags = lev.ok("ls_rdonly_flags", "-ch_name levels").await?;
    assert_eq!(flags, "No matching rows.\n");
    let quiet = [
        AsyncId::MEM_LEVEL_CHANGED,
        AsyncId::SUB_CH_LEVEL_CHG,
        AsyncId::ADD_RDONLY,
    ];
    none_on(&mut max, &quiet, "Max M").await?;
    assert_eq!(open_subs(&mut max).await?, [pair("stage", 0)]);

    // The same commands with plain digits do change the level.
    lev.ok("set_member_level", "-ch_name levels -user max -level 3")
        .await?;
    let expected = AsyncCmd::MemLevelChanged {
        ch_name: "levels".into(),
        user: "max".into(),
        ch_id: ch,
        level: 3,
    };
    let seed = format!(r#"-ch_name "levels" -user "max" -ch_id {ch} -level 3"#);
    seed_on(&mut max, &expected, &seed).await?;
    assert_eq!(max.ok("ls_open_chs", "").await?, "No matching rows.\n");
    host.shutdown().await
}

#[tokio::test]
async fn a_non_member_with_a_public_sub_channel_open_sees_only_what_concerns_it()
-> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut owner = user(&host, "olga").await?;
    let mut memb = user(&host, "memb").await?;
    let mut evee = user(&host, "evee").await?;
    host.add_user("bobb", PW, "users").await?;
    add_ch(&mut owner, "plaza").await?;
    join(&mut owner, &mut memb, "plaza", "memb").await?;
    owner
        .ok("add_sub_ch", "-ch_name plaza -sub_name hall")
        .await?;
    owner
        .ok("set_sub_ch_level", "-ch_name plaza -sub_name hall -level 5")
        .await?;
    open(&mut evee, "plaza", "hall").await?;
    owner
        .ok("invite_to_ch", "-ch_name plaza -user bobb")
        .await?;
    owner
        .ok("set_member_level", "-ch_name plaza -user memb -level 3")
        .await?;
    owner
        .ok("rename_ch", "-ch_name plaza -new_name piazza")
        .await?;
    owner
        .ok("add_sub_ch", "-ch_name piazza -sub_name back")
        .await?;
    next_on(&mut memb, AsyncId::NEW_SUB_CH).await?;
    let member_only = [
        AsyncId::RENAME_CH,
        AsyncId::NEW_SUB_CH,
        AsyncId::INVITED_TO_CH,
        AsyncId::MEM_LEVEL_CHANGED,
    ];
    none_on(&mut evee, &member_only, "Evee E").await?;
    // What concerns the open sub-channel still reaches the non-member.
    owner
        .ok(
            "set_sub_ch_level",
            "-ch_name piazza -sub_name hall -level 4",
        )
        .await?;
    next_on(&mut evee, AsyncId::SUB_CH_LEVEL_CHG).await?;
    host.shutdown().await
}
