//! Hand-made seed inputs for every target, built from the specification's golden vectors
//! and typical traffic, so a fuzzer starts from inputs that already pass the first checks.
//! `cargo run -p mrci-tests --bin fuzz_seeds` writes them as `fuzz/corpus/<target>/seed-*`.
//!
//! Invariant: seeds are deterministic; the session seeds depend only on the command ids a
//! fresh host gives an administrator (see [`super::session_command_ids`]).

use bytes::{BufMut, Bytes, BytesMut};
use mrci_proto::{
    BranchId, CmdId, Frame, IpcFrame, SessionId, SubChKey, SubChList, TypeId,
    async_cmd::{AsyncCmd, Embedded},
    async_id::{AsyncId, HostExtId},
    header::{ClientHeader, HostHeader, Reply, Version},
    payload::{AsyncRequest, MyInfo, NewCmd, PeerInfo, write_ch_id},
    text,
};

use super::stream::Params;

/// One seed: a file name (without the `seed-` prefix) and its bytes.
pub type Seed = (&'static str, Vec<u8>);

/// The seeds of `target`.
///
/// # Errors
/// Only for `session`, when the harness host cannot log an administrator in.
pub fn seeds(target: &str) -> anyhow::Result<Vec<Seed>> {
    Ok(match target {
        "frame" => frame(),
        "header" => header(),
        "payload" => payload(),
        "args" => args(),
        "ipc" => ipc(),
        "session" => session()?,
        other => anyhow::bail!("no fuzz target {other}"),
    })
}

fn frames(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        f.encode(&mut out).expect("a seed frame fits");
    }
    out.to_vec()
}

fn ipc_frames(frames: &[IpcFrame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        f.encode(&mut out).expect("a seed frame fits");
    }
    out.to_vec()
}

fn frame() -> Vec<Seed> {
    // PROTOCOL.md §2.3 and §1.6: an ERR reply, an empty IDLE, ASYNC_RDY, an unknown type.
    let golden = frames(&[
        Frame::err(CmdId(999), BranchId(7), "err: No such command id: 999."),
        Frame::idle(CmdId(256), BranchId(1)),
        Frame::text(CmdId(1), BranchId(0), "\nReady!\n\n"),
        Frame::new(
            TypeId(0xFE),
            CmdId(0x1234),
            BranchId(0x5678),
            vec![0xAA, 0xBB],
        ),
    ]);
    let oversized = [0x02, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0xFF];
    vec![
        ("golden", Params::encode(4096, 3, &golden)),
        ("golden-bytewise", Params::encode(4096, 1, &golden)),
        ("golden-small-max", Params::encode(16, 64, &golden)),
        ("oversized", Params::encode(4096, 8, &oversized)),
        (
            "partial",
            Params::encode(4096, 5, &golden[..golden.len() - 3]),
        ),
    ]
}

fn header() -> Vec<Seed> {
    let client = ClientHeader {
        app_name: "Cli".into(),
        common_name: "host".into(),
    };
    let host = HostHeader {
        reply: Reply::TLS,
        version: Version {
            major: 2,
            minor: 0,
            patch: 1,
        },
        session_id: SessionId([0xAB; 28]),
    };
    vec![
        ("client", client.to_bytes().to_vec()),
        ("host", host.to_bytes().to_vec()),
    ]
}

fn typed(type_id: TypeId, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![type_id.0];
    out.extend_from_slice(payload);
    out
}

fn async_payload(cmd: &AsyncCmd) -> Vec<u8> {
    typed(TypeId(cmd.id().0), &cmd.to_bytes())
}

fn new_cmd(name: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    NewCmd {
        name: name.into(),
        lib: "seed".into(),
        summary: "say hello".into(),
        io: "[text]/[text]".into(),
        ..NewCmd::default()
    }
    .write(&mut out);
    out.to_vec()
}

fn sub_ch_list() -> SubChList {
    let mut subs = SubChList::default();
    subs.insert(SubChKey {
        ch_id: 987,
        sub_id: 5,
    });
    subs
}

fn payload() -> Vec<Seed> {
    let mut ch_id = BytesMut::new();
    write_ch_id(987, &mut ch_id);
    let (mut peer, mut mine) = (BytesMut::new(), BytesMut::new());
    PeerInfo::default().write(&mut peer);
    MyInfo::default().write(&mut mine);
    let gen_file = text::encode("-len 10 -offset 2 -remote_file \"/tmp/a b\" -single_step");
    let new_sub_ch = AsyncCmd::NewSubCh {
        ch_name: "x".into(),
        sub_name: "y".into(),
        ch_id: 987,
        sub_id: 5,
        level: 2,
    };
    let cast = AsyncCmd::Cast {
        subs: sub_ch_list(),
        frame: Embedded {
            type_id: TypeId::TEXT,
            data: Bytes::from(text::encode("h")),
        },
    };
    vec![
        ("host-ver", typed(TypeId::HOST_VER, &[2, 0, 0, 0, 1, 0])),
        ("text", typed(TypeId::TEXT, &text::encode("hello"))),
        ("ch-id", typed(TypeId::CH_ID, &ch_id)),
        ("session-id", typed(TypeId::SESSION_ID, &[7; 28])),
        ("peer-info", typed(TypeId::PEER_INFO, &peer)),
        ("my-info", typed(TypeId::MY_INFO, &mine)),
        ("new-cmd", typed(TypeId::NEW_CMD, &new_cmd("hello"))),
        ("gen-file", typed(TypeId::GEN_FILE, &gen_file)),
        ("async-new-sub-ch", async_payload(&new_sub_ch)),
        ("async-cast", async_payload(&cast)),
    ]
}

fn args() -> Vec<Seed> {
    // PROTOCOL.md §8.3 and the builder's spec style (§4.3 id 30).
    [
        ("spaces", r#"-ch_name "my lobby" -sub_id 5"#),
        ("escaped-quote", r"-name 'O\'Brien' -user bob"),
        ("backslashes", r"-path C:\dir\file"),
        ("unterminated", r#"-x "unterminated"#),
        ("joined", r#"a"b c"d -x """#),
        (
            "builder",
            r#"-ch_name "x" -sub_name "y" -ch_id 987 -sub_id 5 -level 2"#,
        ),
        (
            "numbers",
            "-a 255 -b 256 -c 4294967295 -d 4294967296 -e +1 -g 1x",
        ),
        ("quoted-key", r#""-ch_name" x -FLAG -sub_name "-dash" end\"#),
    ]
    .into_iter()
    .map(|(name, line)| (name, line.as_bytes().to_vec()))
    .collect()
}

fn request(via: TypeId, id: u16, data: &[u8]) -> IpcFrame {
    let mut out = BytesMut::new();
    AsyncRequest {
        async_id: CmdId(id),
        data: Bytes::copy_from_slice(data),
    }
    .write(&mut out);
    IpcFrame::new(via, out.freeze())
}

fn ipc() -> Vec<Seed> {
    // PROTOCOL.md §5.4.1: HOST_VER 2.0.1 as the host sends it; then a module's list answer.
    let list = ipc_frames(&[
        IpcFrame::new(TypeId::HOST_VER, vec![2, 0, 0, 0, 1, 0]),
        IpcFrame::new(TypeId::NEW_CMD, new_cmd("hello")),
        IpcFrame::with_text(TypeId::ERR, "too old"),
    ]);
    let mut key = BytesMut::new();
    key.put_slice(
        &SubChKey {
            ch_id: 7,
            sub_id: 2,
        }
        .to_bytes(),
    );
    let cast = AsyncCmd::Cast {
        subs: sub_ch_list(),
        frame: Embedded {
            type_id: TypeId::TEXT,
            data: Bytes::from(text::encode("hi")),
        },
    };
    let run = ipc_frames(&[
        IpcFrame::with_text(TypeId::TEXT, "hi"),
        IpcFrame::new(TypeId::IDLE, Bytes::new()),
        request(TypeId::PRIV_IPC, AsyncId::END_SESSION.0.into(), &[]),
        request(TypeId::PRIV_IPC, HostExtId::KEEP_ALIVE.value().into(), &[]),
        request(TypeId::PRIV_IPC, HostExtId::OPEN_SUBCH.value().into(), &key),
        request(TypeId::PUB_IPC, AsyncId::CAST.0.into(), &cast.to_bytes()),
        request(
            TypeId::PRIV_IPC,
            HostExtId::SET_DIR.value().into(),
            &text::encode("/tmp"),
        ),
    ]);
    vec![
        ("list-mode", Params::encode(4096, 7, &list)),
        ("run-mode", Params::encode(4096, 11, &run)),
        ("run-mode-small-max", Params::encode(8, 255, &run)),
    ]
}

fn session() -> anyhow::Result<Vec<Seed>> {
    let ids = super::session_command_ids()?;
    let text = |name: &str, branch: u16, args: &str| -> anyhow::Result<Frame> {
        let id = ids
            .get(name)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("{name} is not announced to an administrator"))?;
        Ok(Frame::text(id, BranchId(branch), args))
    };
    let info = frames(&[
        text("my_info", 0, "")?,
        text("host_info", 1, "")?,
        text("ls_cmds", 0, "")?,
        text("cmd_info", 2, "-cmd_name auth")?,
        text("ls_users", 0, "")?,
        text("ls_groups", 0, "")?,
    ]);
    let channels = frames(&[
        text("add_ch", 0, "-ch_name fuzzlobby")?,
        text("add_sub_ch", 0, "-ch_name fuzzlobby -sub_name talk")?,
        text("open_sub_ch", 0, "-ch_name fuzzlobby -sub_name talk")?,
        text("ls_open_chs", 0, "")?,
        text("ls_chs", 0, "")?,
        text("rm_ch", 0, "-ch_name fuzzlobby")?,
    ]);
    let account = frames(&[
        text("set_disp_name", 0, "-new_name \"Fuzz Admin\"")?,
        text("add_acct", 0, "-name fuzzer -email f@example.org")?,
        text("add_acct", 0, "Fresh-Pass1!")?,
        text("logout", 0, "")?,
        text("my_info", 0, "")?,
    ]);
    let my_info = ids.get("my_info").copied().unwrap_or(CmdId(256));
    let control = frames(&[
        text("ls_users", 3, "")?,
        Frame::new(TypeId::TERM_CMD, my_info, BranchId(3), Bytes::new()),
        Frame::new(TypeId::KILL_CMD, my_info, BranchId(3), Bytes::new()),
        Frame::text(CmdId(999), BranchId(7), "nothing here"),
        Frame::new(
            TypeId::HOST_VER,
            CmdId(1),
            BranchId(0),
            vec![2, 0, 0, 0, 1, 0],
        ),
    ]);
    let mut cut = info.clone();
    cut.extend_from_slice(&[0x02, 0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0xFF]);
    Ok(vec![
        ("info", info),
        ("channels", channels),
        ("account", account),
        ("control", control),
        ("oversized-tail", cut),
    ])
}
