//! The module supervisor against real processes: the Rust fake module (built on the author
//! API) and a Python module. Timer tests pause tokio's clock once the module is connected,
//! so the 2-minute idle time and 3-second grace pass without sleeping. The `limits` module
//! covers confinement (resource limits, no_new_privs, the module user) and the byte and line
//! bounds.
#![forbid(unsafe_code)]

use std::{
    collections::HashSet,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use mrci_modrun::{
    Config, Context, Ended, Error, Event, ExitCause, ExtRequest, InstanceKey, ListMode, Listing,
    Request, Routed, Runner, Target, list_commands, prepare_runtime_dir,
};
use mrci_proto::{
    BranchId, CmdId, IpcFrame, SubChKey, TypeId, async_cmd::AsyncCmd, async_id::Scope,
    header::Version, text,
};
use tempfile::TempDir;
use tokio::time::timeout;

/// Only a hang reaches this.
const PATIENCE: Duration = Duration::from_secs(30);

const FAKE: &str = env!("CARGO_BIN_EXE_fake_module");

struct Setup {
    dir: TempDir,
    cfg: Config,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = dir.path().join("run");
        prepare_runtime_dir(&run).expect("runtime dir");
        let mut cfg = Config::new(
            run,
            Version {
                major: 2,
                minor: 0,
                patch: 1,
            },
        );
        // Generous where a real process must act in time; the timer tests set their own.
        cfg.timers.connect = Duration::from_secs(20);
        cfg.timers.grace = Duration::from_secs(10);
        cfg.max_payload = 65_536;
        Self { dir, cfg }
    }

    fn cfg(&self) -> Arc<Config> {
        Arc::new(self.cfg.clone())
    }

    /// The fake module started under another file name, which picks its behaviour.
    fn variant(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        symlink(FAKE, &path).expect("symlink");
        path
    }

    fn runner(&self) -> Runner {
        Runner::new(self.cfg(), ctx())
    }

    async fn list(&self, exe: &Path, mode: ListMode) -> mrci_modrun::Result<Listing> {
        let (cfg, ctx, taken) = (self.cfg(), ctx(), HashSet::new());
        let listing = list_commands(cfg, &ctx, exe, mode, &taken);
        timeout(PATIENCE, listing).await.expect("listing hung")
    }

    /// No socket file is left in the runtime directory.
    fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.cfg.runtime_dir)
            .expect("runtime dir")
            .collect();
        assert!(left.is_empty(), "socket files left behind: {left:?}");
    }
}

fn ctx() -> Context {
    Context {
        tag: "t".into(),
        ..Context::default()
    }
}

fn key(cmd: u16, branch: u16) -> InstanceKey {
    InstanceKey {
        cmd_id: CmdId(cmd),
        branch_id: BranchId(branch),
    }
}

fn fake(name: &str) -> Target {
    Target {
        exe: FAKE.into(),
        name: name.into(),
    }
}

fn text_frame(s: &str) -> IpcFrame {
    IpcFrame::with_text(TypeId::TEXT, s)
}

async fn next(runner: &mut Runner) -> (InstanceKey, Event) {
    timeout(PATIENCE, runner.next_event())
        .await
        .expect("no event from the runner")
}

/// Events up to and including the next IDLE or end of `key` (other keys' events are kept in
/// order too, tagged).
async fn until_idle(runner: &mut Runner, key: InstanceKey) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let (k, event) = next(runner).await;
        assert_eq!(k, key, "event for another instance: {event:?}");
        let done = matches!(&event, Event::Ended(_))
            || matches!(&event, Event::Output(f) if f.type_id == TypeId::IDLE);
        events.push(event);
        if done {
            return events;
        }
    }
}

async fn until_ended(runner: &mut Runner, key: InstanceKey) -> (Vec<Event>, Ended) {
    let mut events = Vec::new();
    loop {
        let (k, event) = next(runner).await;
        assert_eq!(k, key);
        match event {
            Event::Ended(ended) => return (events, ended),
            other => events.push(other),
        }
    }
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Output(f) if f.type_id == TypeId::TEXT => Some(text::decode(&f.payload)),
            _ => None,
        })
        .collect()
}

fn is_idle(event: &Event) -> bool {
    matches!(event, Event::Output(f) if f.type_id == TypeId::IDLE)
}

fn process_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn list_modes_get_host_ver_and_return_commands() {
    let setup = Setup::new();
    let public = setup.list(Path::new(FAKE), ListMode::Public).await.unwrap();
    let names: Vec<_> = public
        .commands
        .iter()
        .map(|c| c.cmd.name.as_str())
        .collect();
    assert_eq!(names, ["echo", "whoami"]);
    let echo = &public.commands[0];
    assert_eq!(echo.unique_name, "echo");
    assert!(echo.cmd.gen_file);
    assert_eq!(echo.cmd.summary, "fake echo");
    assert_eq!(echo.cmd.io, "[text]/[text]");
    assert_eq!(echo.cmd.details, "the fake echo command");
    // The module reports the HOST_VER it received as an ERR text, which the host logs.
    assert_eq!(public.errors, ["fake: host 2.0.1"]);
    assert_eq!(public.ended.cause, ExitCause::Finished);
    assert!(process_gone(public.ended.pid));

    let exempt = setup.list(Path::new(FAKE), ListMode::Exempt).await.unwrap();
    assert_eq!(exempt.commands.len(), 1);
    assert_eq!(exempt.commands[0].cmd.name, "exempt_only");
    let user = setup.list(Path::new(FAKE), ListMode::User).await.unwrap();
    assert_eq!(user.commands.len(), 12);
    setup.assert_clean();
}

#[tokio::test]
async fn invalid_and_repeated_new_cmd_frames_are_dropped_and_names_made_unique() {
    let setup = Setup::new();
    let exe = setup.variant("bad_list");
    let taken: HashSet<String> = ["taken".to_string()].into();
    let context = ctx();
    let listing = list_commands(setup.cfg(), &context, &exe, ListMode::User, &taken);
    let listing = timeout(PATIENCE, listing).await.unwrap().unwrap();
    let got: Vec<_> = listing
        .commands
        .iter()
        .map(|c| (c.cmd.name.as_str(), c.unique_name.as_str()))
        .collect();
    assert_eq!(got, [("good", "good"), ("taken", "taken_1")]);
    assert_eq!(listing.commands[0].cmd.summary, "the only valid one");
    assert!(listing.errors.is_empty());
    setup.assert_clean();
}

#[tokio::test]
async fn several_branches_run_at_once_in_separate_processes() {
    let setup = Setup::new();
    let mut runner = setup.runner();
    for branch in 0..3 {
        let frame = text_frame(&format!("branch {branch}"));
        let routed = runner
            .route(key(256, branch), &fake("echo"), frame)
            .unwrap();
        assert_eq!(routed, Routed::Started);
    }
    assert_eq!(runner.len(), 3);
    let mut pids = HashSet::new();
    let mut idles = 0;
    while idles < 3 {
        let (k, event) = next(&mut runner).await;
        match event {
            Event::Output(f) if f.type_id == TypeId::TEXT => {
                let reply = text::decode(&f.payload);
                let (pid, said) = reply.split_once(':').unwrap();
                assert_eq!(said, format!("branch {}", k.branch_id.0));
                pids.insert(pid.to_string());
            }
            Event::Output(f) if f.type_id == TypeId::IDLE => idles += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pids.len(), 3, "one process per branch");
    let ended = runner.shutdown().await;
    assert_eq!(ended.len(), 3);
    for (_, event) in ended {
        let Event::Ended(ended) = event else {
            panic!("only ends after shutdown")
        };
        assert_eq!(ended.cause, ExitCause::Stopped);
        assert!(ended.client_error().is_none());
    }
    setup.assert_clean();
}

#[tokio::test]
async fn a_process_is_reused_after_idle_and_control_frames_start_nothing() {
    let setup = Setup::new();
    let mut runner = setup.runner();
    let k = key(300, 1);
    // Control frames for a pair with no process start nothing.
    for t in [
        TypeId::KILL_CMD,
        TypeId::TERM_CMD,
        TypeId::HALT_CMD,
        TypeId::RESUME_CMD,
    ] {
        let routed = runner.route(k, &fake("count"), IpcFrame::new(t, Bytes::new()));
        assert_eq!(routed.unwrap(), Routed::NoInstance);
    }
    assert!(runner.is_empty());

    assert_eq!(
        runner.route(k, &fake("count"), text_frame("a")).unwrap(),
        Routed::Started
    );
    let first = until_idle(&mut runner, k).await;
    assert_eq!(
        runner.route(k, &fake("count"), text_frame("b")).unwrap(),
        Routed::Sent
    );
    let second = until_idle(&mut runner, k).await;
    let (first, second) = (texts(&first), texts(&second));
    let pid = first[0].rsplit(' ').next().unwrap().to_string();
    assert_eq!(first, [format!("count 1 pid {pid}")]);
    assert_eq!(
        second,
        [format!("count 2 pid {pid}")],
        "same process, state kept"
    );

    // TERM_CMD with no open task goes to the process and changes nothing.
    let term = IpcFrame::new(TypeId::TERM_CMD, Bytes::new());
    assert_eq!(runner.route(k, &fake("count"), term).unwrap(), Routed::Sent);
    // A client KILL_CMD: the module exits within the grace time.
    let kill = IpcFrame::new(TypeId::KILL_CMD, Bytes::new());
    assert_eq!(runner.route(k, &fake("count"), kill).unwrap(), Routed::Sent);
    let (events, ended) = until_ended(&mut runner, k).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(ended.cause, ExitCause::Stopped);
    assert!(!ended.task_open);
    assert!(process_gone(ended.pid));
    assert!(runner.is_empty());
    setup.assert_clean();
}

#[tokio::test]
async fn an_idle_module_that_ignores_kill_cmd_is_force_killed_after_the_grace_time() {
    let setup = Setup::new();
    let mut runner = setup.runner();
    let k = key(257, 0);
    runner.route(k, &fake("hang"), text_frame("x")).unwrap();
    assert_eq!(texts(&until_idle(&mut runner, k).await), ["hanging"]);
    // The module is connected and idle and will not react to anything, so from here on no
    // real time is needed: the 2-minute idle time and the 3-second grace pass at once.
    tokio::time::pause();
    let start = tokio::time::Instant::now();
    // No `timeout` here: with the clock paused it would fire at once.
    let (k2, event) = runner.next_event().await;
    let elapsed = start.elapsed();
    assert_eq!(k2, k);
    let Event::Ended(ended) = event else {
        panic!("unexpected {event:?}")
    };
    assert_eq!(ended.cause, ExitCause::ForceKilled);
    assert!(ended.cause.is_failure());
    assert!(!ended.task_open && ended.client_error().is_none());
    let timers = setup.cfg.timers;
    assert!(elapsed >= timers.idle + timers.grace, "{elapsed:?}");
    assert!(process_gone(ended.pid));
    setup.assert_clean();
}

#[tokio::test]
async fn an_idle_module_that_obeys_kill_cmd_is_idle_stopped() {
    let mut setup = Setup::new();
    // A module that reacts needs real time to do so (paused time would run the grace timer
    // out first), so: a short idle time and a grace time no machine needs.
    setup.cfg.timers.idle = Duration::from_millis(200);
    setup.cfg.timers.grace = Duration::from_secs(20);
    let mut runner = setup.runner();
    let k = key(256, 0);
    runner.route(k, &fake("echo"), text_frame("x")).unwrap();
    let (events, ended) = until_ended(&mut runner, k).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(is_idle(&events[1]));
    assert_eq!(ended.cause, ExitCause::IdleStopped);
    assert!(!ended.cause.is_failure());
    assert!(process_gone(ended.pid));
    setup.assert_clean();
}

#[tokio::test]
async fn a_silent_list_module_is_force_killed_and_its_list_kept() {
    let setup = Setup::new();
    let exe = setup.variant("silent_list");
    // Paused time would also advance past the connect deadline while the real process
    // starts, so this one uses short real timers; the module never exits by itself, so the
    // outcome does not depend on how fast anything runs.
    let mut cfg = setup.cfg.clone();
    cfg.timers.idle = Duration::from_millis(300);
    cfg.timers.grace = Duration::from_millis(300);
    let (context, taken) = (ctx(), HashSet::new());
    let listing = list_commands(Arc::new(cfg), &context, &exe, ListMode::Public, &taken);
    let listing = timeout(PATIENCE, listing).await.unwrap();
    let listing = listing.unwrap();
    assert_eq!(listing.commands.len(), 1);
    assert_eq!(listing.commands[0].cmd.name, "lonely");
    assert_eq!(listing.ended.cause, ExitCause::ForceKilled);
    assert!(process_gone(listing.ended.pid));
    setup.assert_clean();
}

#[tokio::test]
async fn a_crash_mid_command_is_reported_with_the_unexpected_stop_error() {
    let setup = Setup::new();
    let mut runner = setup.runner();
    let k = key(256, 4);
    runner.route(k, &fake("crash"), text_frame("go")).unwrap();
    let (events, ended) = until_ended(&mut runner, k).await;
    assert_eq!(texts(&events), ["dying"]);
    assert_eq!(ended.cause, ExitCause::Crashed);
    assert_eq!(ended.status.and_then(|s| s.code()), Some(2));
    assert!(ended.connected && ended.task_open);
    assert!(
        ended
            .client_error()
            .unwrap()
            .contains("stopped unexpectedly")
    );
    assert!(process_gone(ended.pid));
    // The next frame starts a fresh process.
    assert_eq!(
        runner.route(k, &fake("echo"), text_frame("again")).unwrap(),
        Routed::Started
    );
    assert!(texts(&until_idle(&mut runner, k).await)[0].ends_with(":again"));
    drop(runner);
    setup.assert_clean();
}

#[tokio::test]
async fn a_module_that_never_connects_is_killed_at_the_deadline() {
    let mut setup = Setup::new();
    setup.cfg.timers.connect = Duration::from_millis(500);
    let exe = setup.variant("never_connect");
    let mut runner = setup.runner();
    let k = key(256, 0);
    let target = Target {
        exe: exe.clone(),
        name: "echo".into(),
    };
    runner.route(k, &target, text_frame("queued")).unwrap();
    runner.route(k, &target, text_frame("queued too")).unwrap();
    let (events, ended) = until_ended(&mut runner, k).await;
    assert!(events.is_empty());
    assert_eq!(ended.cause, ExitCause::NeverConnected);
    assert!(!ended.connected && ended.task_open);
    assert_eq!(ended.client_error(), Some(mrci_modrun::FAILED_TO_START));
    assert!(process_gone(ended.pid));

    let err = setup.list(&exe, ListMode::Public).await.unwrap_err();
    assert!(matches!(err, Error::NeverConnected(_)), "{err}");
    setup.cfg.timers.connect = Duration::from_secs(20);
    let early = setup.variant("exit_early");
    let err = setup.list(&early, ListMode::Public).await.unwrap_err();
    assert!(
        matches!(err, Error::ExitedEarly { status, .. } if status.code() == Some(3)),
        "{err}"
    );
    let missing = setup.dir.path().join("no_such_module");
    assert!(matches!(
        setup.list(&missing, ListMode::Public).await,
        Err(Error::Spawn { .. })
    ));
    assert!(matches!(
        runner.route(
            k,
            &Target {
                exe: missing,
                name: "x".into()
            },
            text_frame("x")
        ),
        Err(Error::Spawn { .. })
    ));
    setup.assert_clean();
}

#[tokio::test]
async fn forbidden_requests_and_frames_are_dropped_valid_ones_delivered() {
    let setup = Setup::new();
    let mut runner = setup.runner();
    let k = key(260, 0);
    runner
        .route(k, &fake("requests"), text_frame("go"))
        .unwrap();
    let events = until_idle(&mut runner, k).await;
    let [
        Event::Request(end),
        Event::Request(open),
        Event::Output(done),
        idle,
    ] = &events[..]
    else {
        panic!("unexpected events {events:#?}");
    };
    assert_eq!(end.request, Request::Seed(AsyncCmd::EndSession));
    assert_eq!(end.via, TypeId::PRIV_IPC);
    assert_eq!(end.scope(), Scope::Private);
    assert_eq!(
        open.request,
        Request::Ext(ExtRequest::OpenSubCh(SubChKey {
            ch_id: 7,
            sub_id: 2
        }))
    );
    assert_eq!(text::decode(&done.payload), "done");
    assert!(is_idle(idle));
    // The module's own KILL_CMD frame was dropped, not obeyed by the host: it still runs.
    assert!(runner.is_running(k));
}

#[tokio::test]
async fn a_flood_of_forbidden_frames_is_dropped_without_harm() {
    let setup = Setup::new();
    let mut runner = setup.runner();
    let k = key(261, 0);
    runner.route(k, &fake("flood"), text_frame("go")).unwrap();
    let events = until_idle(&mut runner, k).await;
    assert_eq!(texts(&events), ["survived"]);
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn an_oversize_frame_kills_the_module() {
    let setup = Setup::new();
    let mut runner = setup.runner();
    let k = key(262, 0);
    runner
        .route(k, &fake("oversize"), text_frame("go"))
        .unwrap();
    let (events, ended) = until_ended(&mut runner, k).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(ended.cause, ExitCause::Protocol);
    assert!(ended.task_open && ended.client_error().is_some());
    assert!(process_gone(ended.pid));
    setup.assert_clean();
}

#[tokio::test]
async fn a_module_reads_the_session_user_from_shared_memory() {
    let setup = Setup::new();
    let shm = mrci_shm::SessionShm::create().expect("session segment");
    {
        let mut seg = shm.lock().expect("lock");
        seg.set_user_name("alice");
        seg.set_host_rank(2);
    }
    let mut context = ctx();
    context.mem_ses = shm.key().to_string();
    let mut runner = Runner::new(setup.cfg(), context);
    let k = key(263, 0);
    runner.route(k, &fake("whoami"), text_frame("")).unwrap();
    let events = until_idle(&mut runner, k).await;
    assert_eq!(texts(&events), ["user alice rank 2"]);
}

#[tokio::test]
async fn a_python_module_lists_and_runs() {
    let setup = Setup::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/py_echo.py");
    let listing = setup.list(&script, ListMode::Public).await.unwrap();
    assert_eq!(listing.commands.len(), 1);
    assert_eq!(listing.commands[0].cmd.name, "py_echo");
    assert_eq!(listing.commands[0].cmd.lib, "python example");
    assert_eq!(listing.ended.cause, ExitCause::Finished);

    let mut runner = setup.runner();
    let k = key(256, 0);
    let target = Target {
        exe: script,
        name: "py_echo".into(),
    };
    runner.route(k, &target, text_frame("hello")).unwrap();
    assert_eq!(texts(&until_idle(&mut runner, k).await), ["HELLO"]);
    runner.route(k, &target, text_frame("again")).unwrap();
    assert_eq!(texts(&until_idle(&mut runner, k).await), ["AGAIN"]);
    let ended = runner.shutdown().await;
    assert!(matches!(&ended[..], [(_, Event::Ended(e))] if e.cause == ExitCause::Stopped));
    setup.assert_clean();
}

#[tokio::test]
async fn the_instance_cap_refuses_new_processes_and_stop_command_ends_all_branches() {
    let mut setup = Setup::new();
    setup.cfg.max_instances = 2;
    let mut runner = setup.runner();
    for branch in 0..2 {
        let routed = runner.route(key(256, branch), &fake("echo"), text_frame("x"));
        assert_eq!(routed.unwrap(), Routed::Started);
    }
    let third = runner.route(key(257, 0), &fake("echo"), text_frame("x"));
    assert_eq!(third.unwrap(), Routed::TooMany);
    runner.stop_command(CmdId(256));
    let mut ended = 0;
    while ended < 2 {
        let (k, event) = next(&mut runner).await;
        assert_eq!(k.cmd_id, CmdId(256));
        if let Event::Ended(e) = event {
            // Stopped whether it had connected (KILL_CMD) or not yet (killed at once).
            assert!(matches!(e.cause, ExitCause::Stopped), "{e:?}");
            ended += 1;
        }
    }
    assert!(runner.is_empty());
    setup.assert_clean();
}

#[path = "modrun/limits.rs"]
mod limits;

/// A GEN_FILE frame from the client: the arguments (text) or file data.
fn gen_file(payload: impl Into<Bytes>) -> IpcFrame {
    IpcFrame::new(TypeId::GEN_FILE, payload.into())
}

/// Frames of `key` up to its IDLE, file data joined; the other frames' types and texts
/// (the IDLE left out).
async fn file_frames(runner: &mut Runner, key: InstanceKey) -> (Vec<u8>, Vec<String>) {
    let (mut data, mut rest) = (Vec::new(), Vec::new());
    for event in until_idle(runner, key).await {
        match event {
            Event::Output(f) if f.type_id == TypeId::GEN_FILE => data.extend_from_slice(&f.payload),
            Event::Output(f) if f.type_id == TypeId::IDLE => {}
            Event::Output(f) => rest.push(format!("{:?} {}", f.type_id, text::decode(&f.payload))),
            other => panic!("unexpected {other:?}"),
        }
    }
    (data, rest)
}

/// The module's reply that opens a transfer.
async fn transfer_reply(runner: &mut Runner) -> mrci_proto::payload::GenFileArgs {
    let f = match next(runner).await {
        (_, Event::Output(f)) => f,
        (_, other) => panic!("expected the reply, got {other:?}"),
    };
    assert_eq!(f.type_id, TypeId::GEN_FILE, "{}", text::decode(&f.payload));
    mrci_proto::payload::GenFileArgs::parse(&f.payload).unwrap()
}

#[tokio::test]
async fn a_module_command_sends_and_receives_files_with_the_author_api() {
    let mut setup = Setup::new();
    setup.cfg.max_payload = mrci_proto::frame::MAX_PAYLOAD;
    setup.cfg.queue_bytes = 2 << 20;
    let mut runner = setup.runner();
    let data: Vec<u8> = (0..(5 << 20) + 77).map(|i| (i % 253) as u8).collect();
    let src = setup.dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();

    // Download from an offset, single-step: each chunk waits for the acknowledgement.
    let down = key(300, 0);
    let args = mrci_proto::payload::GenFileArgs {
        remote_file: Some(src.display().to_string()),
        offset: 1000,
        len: Some(0),
        single_step: true,
        ..Default::default()
    };
    let routed = runner.route(down, &fake("file_out"), gen_file(args.to_bytes()));
    assert_eq!(routed.unwrap(), Routed::Started);
    let reply = transfer_reply(&mut runner).await;
    assert!(reply.from_host && !reply.to_host && reply.single_step);
    assert_eq!(reply.len, Some(data.len() as u64 - 1000));
    runner
        .route(down, &fake("file_out"), gen_file(Bytes::new()))
        .unwrap();
    let mut got = Vec::new();
    loop {
        let f = match next(&mut runner).await {
            (_, Event::Output(f)) => f,
            (_, other) => panic!("unexpected {other:?}"),
        };
        match f.type_id {
            TypeId::GEN_FILE => {
                assert!(f.payload.len() <= mrci_modrun::module::CHUNK);
                got.extend_from_slice(&f.payload);
                if got.len() < data.len() - 1000 {
                    // No more data comes until the acknowledgement (progress TEXT may).
                    while let Ok((_, event)) =
                        timeout(Duration::from_millis(200), runner.next_event()).await
                    {
                        assert!(
                            matches!(&event, Event::Output(t) if t.type_id == TypeId::TEXT),
                            "sent on without an acknowledgement: {event:?}"
                        );
                    }
                    runner
                        .route(down, &fake("file_out"), gen_file(Bytes::new()))
                        .unwrap();
                }
            }
            TypeId::TEXT => {}
            TypeId::IDLE => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, data[1000..]);

    // Upload: the reply, the empty "ready", then the client's chunks, paced by the module.
    let up = key(301, 0);
    let dst = setup.dir.path().join("dst.bin");
    let args = mrci_proto::payload::GenFileArgs {
        remote_file: Some(dst.display().to_string()),
        len: Some(data.len() as u64),
        ..Default::default()
    };
    runner
        .route(up, &fake("file_in"), gen_file(args.to_bytes()))
        .unwrap();
    let reply = transfer_reply(&mut runner).await;
    assert!(reply.to_host && !reply.from_host);
    assert_eq!(reply.len, Some(data.len() as u64));
    let (_, ready) = next(&mut runner).await;
    assert!(
        matches!(&ready, Event::Output(f) if f.type_id == TypeId::GEN_FILE && f.payload.is_empty()),
        "{ready:?}"
    );
    for chunk in data.chunks(1 << 20) {
        // Over the 2 MiB budget this waits for the module instead of refusing the chunk.
        if let Some(paced) = runner
            .route_paced(up, gen_file(Bytes::copy_from_slice(chunk)))
            .unwrap()
        {
            timeout(PATIENCE, paced)
                .await
                .expect("the module never took the chunk");
        }
    }
    let (data_back, texts) = file_frames(&mut runner, up).await;
    assert!(data_back.is_empty());
    assert_eq!(
        texts.last().map(String::as_str),
        Some(format!("TEXT file_in: Complete({})", data.len()).as_str()),
        "{texts:?}"
    );
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    // TERM_CMD stops an upload half-way; the process stays for the next task.
    runner
        .route(up, &fake("file_in"), gen_file(args.to_bytes()))
        .unwrap();
    transfer_reply(&mut runner).await;
    next(&mut runner).await;
    let routed = runner
        .route_paced(up, gen_file(Bytes::copy_from_slice(&data[..1 << 20])))
        .unwrap();
    assert!(routed.is_none(), "one chunk fits");
    runner
        .route(
            up,
            &fake("file_in"),
            IpcFrame::new(TypeId::TERM_CMD, Bytes::new()),
        )
        .unwrap();
    let (_, texts) = file_frames(&mut runner, up).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some(format!("TEXT file_in: Stopped({})", 1 << 20).as_str()),
        "{texts:?}"
    );
    assert_eq!(runner.shutdown().await.len(), 2);
    setup.assert_clean();
}
