//! A scriptable MRCI module for the supervisor tests, written with the `mrci_modrun::module`
//! author API. Its behaviour comes from its own arguments: the file name it was started as
//! (tests start it through symlinks such as `never_connect`) picks a list-mode or start-up
//! behaviour, and the `-run_cmd` name picks what a run does.
//!
//! File names: `never_connect` sleeps without connecting; `exit_early` exits at once with
//! status 3; `bad_list` sends invalid NEW_CMD frames among valid ones; `silent_list` lists one
//! command and then ignores everything, KILL_CMD included; `hang_at_login` lists normally in
//! public mode and hangs (connected, silent) in the logged-in modes; `confine` is the launcher
//! (`mrci_modrun::confine::exec`), which confines itself and becomes the module named after
//! `--`; `sleeper` sleeps (the children of `forkbomb`); anything else is the normal module,
//! which reports the HOST_VER it got as an ERR text. In exempt mode with a session
//! segment (`-mem_ses`), the normal module also lists `mine_<user name>`, so that tests see a list
//! made for the logged-in user.
//!
//! Commands: `echo` (TEXT back, prefixed with the pid), `count` (a per-process counter),
//! `crash` (exits mid-task), `hang` (answers once, then ignores everything), `requests`
//! (valid and forbidden async requests), `hint` (RW_MY_INFO for the user named in the input), `flood` (many forbidden frames), `oversize` (a
//! frame over the host's limit), `whoami` (the session user name and host rank from shared
//! memory), `shm` (the channel lists, flags and peer count from shared memory). Limits and
//! bounds: `status` (NoNewPrivs, ids and resource limits of the process), `hog` (allocates
//! without end), `forkbomb` (starts processes without end), `bigflood` (more big frames than
//! the host may hold; the input TEXT names a socket told when a write blocks),
//! `chatty` (1000 stderr lines and a 100 MiB stdout line without a newline, then exits).
//! Files (GEN_FILE, through `module::send_file` and `module::receive_file`): `file_out` sends
//! the file the client names with `-remote_file` (an absolute path), `file_in` writes the
//! client's upload there; each reports how the transfer ended as a last TEXT.
#![forbid(unsafe_code)]

use std::{
    fs::OpenOptions,
    io::{ErrorKind, Read, Seek, SeekFrom, Write},
    os::unix::{net::UnixStream, process::CommandExt},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use bytes::{BufMut, BytesMut};
use mrci_modrun::module::{
    self, Flow, GenFileArgs, IpcFrame, ListMode, Mode, ModuleArgs, NewCmd, Pipe, Transferred,
    TypeId,
};
use mrci_proto::text;

/// `bigflood`: frames of this many bytes…
const FLOOD_FRAME: usize = 512 * 1024;
/// …this many of them (24 MiB, far over the tests' 4 MiB budget).
const FLOOD_FRAMES: usize = 48;

fn main() -> mrci_modrun::Result<()> {
    let program = std::env::args().next().unwrap_or_default();
    let role = Path::new(&program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match role.as_str() {
        "never_connect" => {
            thread::sleep(Duration::from_secs(3600));
            return Ok(());
        }
        "exit_early" => std::process::exit(3),
        "sleeper" => loop {
            thread::sleep(Duration::from_secs(3600));
        },
        "confine" => {
            let Err(e) = mrci_modrun::confine::exec(std::env::args_os().skip(1));
            eprintln!("fake launcher: {e}");
            std::process::exit(127);
        }
        _ => {}
    }
    let args = ModuleArgs::from_env()?;
    match (&args.mode, role.as_str()) {
        (Mode::List(_), "bad_list") => bad_list(&args),
        (Mode::List(_), "silent_list") => silent_list(&args),
        (Mode::List(ListMode::Exempt | ListMode::User), "hang_at_login") => hang_at_login(&args),
        (Mode::List(mode), _) => normal_list(&args, *mode),
        (Mode::Run(name), _) if name == "bigflood" => big_flood(&args),
        (Mode::Run(_), _) => run(&args),
    }
}

fn listed(mode: ListMode) -> Vec<NewCmd> {
    let names: &[&str] = match mode {
        ListMode::Public => &["echo", "whoami"],
        ListMode::Exempt => &["exempt_only"],
        ListMode::User => &[
            "echo", "count", "crash", "hang", "requests", "flood", "oversize", "whoami", "shm",
            "hint", "file_in", "file_out",
        ],
    };
    names
        .iter()
        .map(|name| NewCmd {
            gen_file: *name == "echo" || name.starts_with("file_"),
            io: "[text]/[text]".into(),
            details: format!("the fake {name} command"),
            ..module::command(name, &format!("fake {name}"))
        })
        .collect()
}

/// The user logged in to the session whose segment `key` names, if any.
fn session_user(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let shm = mrci_shm::SessionShm::attach(key).ok()?;
    let guard = shm.lock().ok()?;
    let name = guard.user_name();
    (!name.is_empty()).then(|| name.to_lowercase())
}

fn normal_list(args: &ModuleArgs, mode: ListMode) -> mrci_modrun::Result<()> {
    let mut pipe = Pipe::connect(&args.pipe)?;
    let mut cmds = listed(mode);
    if mode == ListMode::Exempt
        && let Some(user) = session_user(&args.mem_ses)
    {
        let name = format!("mine_{user}");
        cmds.push(module::command(&name, "listed for this user only"));
    }
    let version = module::serve_list(&mut pipe, &cmds)?;
    let version = version
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into());
    pipe.send_err(&format!("fake: host {version}"))
}

fn bad_list(args: &ModuleArgs) -> mrci_modrun::Result<()> {
    let mut pipe = Pipe::connect(&args.pipe)?;
    let _host_ver = pipe.recv()?;
    // Too short: 258 bytes.
    pipe.send(&IpcFrame::new(TypeId::NEW_CMD, vec![0u8; 258]))?;
    // Invalid names.
    for name in ["two words", "", "tab\tname"] {
        pipe.send_new_cmd(&module::command(name, "bad"))?;
    }
    // Not a list-mode type.
    pipe.send_text("ignored")?;
    pipe.send_new_cmd(&module::command("good", "the only valid one"))?;
    // A repeat of a name this module already listed.
    pipe.send_new_cmd(&module::command("good", "repeat"))?;
    pipe.send_new_cmd(&module::command("Taken", "collides with another module"))?;
    Ok(())
}

fn silent_list(args: &ModuleArgs) -> mrci_modrun::Result<()> {
    let mut pipe = Pipe::connect(&args.pipe)?;
    module::serve_list(
        &mut pipe,
        &[module::command("lonely", "listed, then silent")],
    )?;
    ignore_everything(&mut pipe)
}

fn hang_at_login(args: &ModuleArgs) -> mrci_modrun::Result<()> {
    let mut pipe = Pipe::connect(&args.pipe)?;
    ignore_everything(&mut pipe)
}

fn run(args: &ModuleArgs) -> mrci_modrun::Result<()> {
    let mut count = 0u32;
    let mem_ses = args.mem_ses.clone();
    module::serve(
        args,
        |_| Vec::new(),
        |name, frame, pipe| {
            let input = text::decode(&frame.payload);
            match name {
                "echo" => pipe.send_text(&format!("{}:{input}", std::process::id()))?,
                "count" => {
                    count += 1;
                    pipe.send_text(&format!("count {count} pid {}", std::process::id()))?;
                }
                "crash" => {
                    pipe.send_text("dying")?;
                    std::process::exit(2);
                }
                "hang" => {
                    // The handler never returns, so KILL_CMD is never seen.
                    pipe.send_text("hanging")?;
                    pipe.send_idle()?;
                    ignore_everything(pipe)
                }
                "requests" => requests(pipe)?,
                "hint" => {
                    // Seed 002's RW_MY_INFO: "this user's account changed".
                    let notice = mrci_proto::async_cmd::AsyncCmd::RwMyInfo {
                        user: input.to_string(),
                    };
                    pipe.send_request(
                        TypeId::PUB_IPC,
                        u16::from(notice.id().0),
                        &notice.to_bytes(),
                    )?;
                    pipe.send_text("hinted")?;
                }
                "flood" => {
                    for _ in 0..5000 {
                        pipe.send(&IpcFrame::new(TypeId::HOST_CERT, vec![0u8; 16]))?;
                    }
                    pipe.send_text("survived")?;
                }
                "oversize" => pipe.send(&IpcFrame::new(TypeId::BYTES, vec![7u8; 200_000]))?,
                "whoami" => {
                    let shm = mrci_shm::SessionShm::attach(&mem_ses)
                        .map_err(|e| mrci_modrun::Error::Usage(e.to_string()))?;
                    let guard = shm
                        .lock()
                        .map_err(|e| mrci_modrun::Error::Usage(e.to_string()))?;
                    let (user, rank) = (guard.user_name(), guard.host_rank());
                    drop(guard);
                    pipe.send_text(&format!("user {user} rank {rank}"))?;
                }
                "shm" => {
                    let shm = mrci_shm::SessionShm::attach(&mem_ses)
                        .map_err(|e| mrci_modrun::Error::Usage(e.to_string()))?;
                    let seg = shm
                        .lock()
                        .map_err(|e| mrci_modrun::Error::Usage(e.to_string()))?;
                    let subs = |list: Vec<mrci_shm::SubCh>| -> Vec<String> {
                        list.iter()
                            .map(|s| format!("{}:{}", s.ch_id, s.sub_id))
                            .collect()
                    };
                    let text = format!(
                        "channels {:?} open {:?} writable {:?} active {} override {} peers {}",
                        seg.channels(),
                        subs(seg.open_subs()),
                        subs(seg.writable_subs()),
                        seg.active_update(),
                        seg.owner_override(),
                        seg.accepted_p2p().len()
                    );
                    drop(seg);
                    pipe.send_text(&text)?;
                }
                "status" | "hog" | "forkbomb" | "chatty" => return bounds(name, pipe),
                "file_in" | "file_out" => return transfer(name, &frame, pipe),
                other => pipe.send_err(&format!("err: fake module has no {other}"))?,
            }
            Ok(Flow::Idle)
        },
    )
}

/// `file_in` and `file_out`: a GEN_FILE transfer to or from `-remote_file`.
fn transfer(name: &str, frame: &IpcFrame, pipe: &mut Pipe) -> mrci_modrun::Result<Flow> {
    let args = match GenFileArgs::parse(&frame.payload) {
        Ok(args) if frame.type_id == TypeId::GEN_FILE => args,
        _ => {
            pipe.send_err("err: open this command with GEN_FILE arguments")?;
            return Ok(Flow::Idle);
        }
    };
    let path = args.remote_file.clone().unwrap_or_default();
    let ended = if name == "file_out" {
        match std::fs::File::open(&path) {
            Ok(file) => module::send_file(pipe, &args, file)?,
            Err(e) => {
                pipe.send_err(&format!("err: {path}: {e}"))?;
                Transferred::Refused
            }
        }
    } else {
        // Keep the first `-offset` bytes (a resume), write from there, sync when complete.
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(args.offset)?;
        file.seek(SeekFrom::Start(args.offset))?;
        let ended = module::receive_file(pipe, &args, &mut file)?;
        if let Transferred::Complete(_) = ended {
            file.sync_all()?;
        }
        ended
    };
    pipe.send_text(&format!("{name}: {ended:?}"))?;
    Ok(ended.flow())
}

/// Reads and ignores frames until the pipe closes, then sleeps: a module that will not stop.
fn ignore_everything(pipe: &mut Pipe) -> ! {
    while let Ok(Some(_)) = pipe.recv() {}
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

/// Valid requests (END_SESSION, KEEP_ALIVE, OPEN_SUBCH) among forbidden ones.
fn requests(pipe: &mut Pipe) -> mrci_modrun::Result<()> {
    pipe.send_request(TypeId::PRIV_IPC, 18, &[])?;
    pipe.keep_alive()?;
    // Host-only, undefined and malformed requests.
    pipe.send_request(TypeId::PUB_IPC, 1, &text::encode("ready"))?;
    pipe.send_request(TypeId::PUB_IPC, 21, &[0u8; 40])?;
    pipe.send_request(TypeId::PRIV_IPC, 99, &[])?;
    pipe.send_request(TypeId::PRIV_IPC, 6, &[1, 2])?;
    pipe.send(&IpcFrame::new(TypeId::PRIV_IPC, vec![5]))?;
    // Types a module may not send to a client.
    pipe.send(&IpcFrame::new(TypeId::HOST_VER, vec![2, 0, 0, 0, 1, 0]))?;
    pipe.send(&IpcFrame::new(TypeId::KILL_CMD, Vec::new()))?;
    pipe.send(&IpcFrame::new(TypeId::CMD_ID, vec![0x2C, 0x01]))?;
    let mut key = BytesMut::new();
    key.put_u64_le(7);
    key.put_u8(2);
    pipe.send_request(TypeId::PRIV_IPC, 45, &key)?;
    pipe.send_text("done")
}

/// The commands that meet the host's limits and bounds.
fn bounds(name: &str, pipe: &mut Pipe) -> mrci_modrun::Result<Flow> {
    match name {
        "status" => pipe.send_text(&status())?,
        "hog" => {
            hog(pipe)?;
            return Ok(Flow::Exit);
        }
        "forkbomb" => fork_bomb(pipe)?,
        _ => {
            chatty()?;
            return Ok(Flow::Exit);
        }
    }
    Ok(Flow::Idle)
}

/// The lines of `/proc/self/status` and `/proc/self/limits` the confinement tests check.
fn status() -> String {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let (status, limits) = (read("/proc/self/status"), read("/proc/self/limits"));
    let wanted = [
        "NoNewPrivs:",
        "Uid:",
        "Gid:",
        "Groups:",
        "Max cpu time",
        "Max address space",
        "Max open files",
        "Max processes",
        "Max core file size",
    ];
    status
        .lines()
        .chain(limits.lines())
        .filter(|l| wanted.iter().any(|w| l.starts_with(w)))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Allocates and touches 16 MiB blocks until an allocation fails (which aborts the process)
/// or, if no limit stops it, 1 GiB is reached and it says so (and exits).
fn hog(pipe: &mut Pipe) -> mrci_modrun::Result<()> {
    let mut blocks = Vec::new();
    for _ in 0..64 {
        blocks.push(std::hint::black_box(vec![1u8; 16 << 20]));
    }
    pipe.send_text(&format!(
        "allocated {} MiB without a limit",
        blocks.len() * 16
    ))
}

/// Starts sleeping copies of itself without end; reports the first refusal once, then keeps
/// trying (burning CPU) until a limit ends it. Stops starting new ones after 200 if nothing
/// refuses.
fn fork_bomb(pipe: &mut Pipe) -> mrci_modrun::Result<()> {
    let me = std::env::current_exe()?;
    let mut started = 0u32;
    let mut reported = false;
    for _ in 0..10_000_000u64 {
        if started >= 200 && !reported {
            pipe.send_text("no refusal after 200")?;
            reported = true;
        }
        if started >= 200 {
            continue;
        }
        // The children keep stdout and stderr, so the host's output pipes end only when the
        // last of them is gone.
        let child = Command::new(&me)
            .arg0("sleeper")
            .stdin(Stdio::null())
            .spawn();
        match child {
            Ok(_) => started += 1,
            Err(e) if !reported => {
                pipe.send_text(&format!("refused after {started}: {e}"))?;
                reported = true;
            }
            Err(_) => {}
        }
    }
    pipe.send_text("survived")
}

/// 1000 lines on stderr and one 100 MiB line without a newline on stdout.
fn chatty() -> mrci_modrun::Result<()> {
    let mut err = std::io::stderr().lock();
    for i in 0..1000 {
        writeln!(err, "chatty line {i}")?;
    }
    let chunk = vec![b'x'; 1 << 20];
    let mut out = std::io::stdout().lock();
    for _ in 0..100 {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}

/// Writes [`FLOOD_FRAMES`] frames of [`FLOOD_FRAME`] bytes (frame `i` filled with `i`) on
/// its own connection, with a write timeout: the first write that makes no progress for
/// 500 ms proves the host stopped reading, and its frame number is sent to the Unix socket
/// named by the input TEXT (the test's). Then TEXT "blocked at frame N" and IDLE.
fn big_flood(args: &ModuleArgs) -> mrci_modrun::Result<()> {
    let mut stream = UnixStream::connect(&args.pipe)?;
    let mut buf = BytesMut::new();
    let marker = loop {
        if let Some(frame) = IpcFrame::decode(&mut buf, 1 << 20)? {
            break text::decode(&frame.payload);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    stream.set_write_timeout(Some(Duration::from_millis(500)))?;
    let mut blocked = None;
    for i in 0..FLOOD_FRAMES {
        let mut out = BytesMut::new();
        IpcFrame::new(TypeId::BYTES, vec![i as u8; FLOOD_FRAME]).encode(&mut out)?;
        let mut off = 0;
        while off < out.len() {
            match stream.write(&out[off..]) {
                Ok(n) => off += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if blocked.is_none() {
                        blocked = Some(i);
                        UnixStream::connect(&marker)?.write_all(i.to_string().as_bytes())?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let said = format!("blocked at frame {}", blocked.map_or(-1, |i| i as i64));
    let mut out = BytesMut::new();
    IpcFrame::with_text(TypeId::TEXT, &said).encode(&mut out)?;
    IpcFrame::new(TypeId::IDLE, Vec::new()).encode(&mut out)?;
    stream.set_write_timeout(None)?;
    stream.write_all(&out)?;
    // Anything more from the host is KILL_CMD; exit on it or on the end of the pipe.
    let _ = stream.read(&mut [0u8; 64])?;
    Ok(())
}
