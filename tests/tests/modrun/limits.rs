//! Bounds on module processes (issues 12 and 16): resource limits, `no_new_privs` and the
//! switch to `nobody` (when the tests run as root) through the launcher, here the fake module
//! started as `confine`; the byte budget between a session and its modules; and the cap and
//! rate limit on module output lines.

use std::{
    fs::Permissions,
    os::unix::fs::{MetadataExt, PermissionsExt},
};

use mrci_modrun::{Confine, Launcher, Limits, OutputLimits, RunAs};
use tokio::io::AsyncReadExt;

use super::*;

/// `bigflood` in the fake module: frames of this size, this many.
const FLOOD_FRAME: usize = 512 * 1024;
const FLOOD_FRAMES: usize = 48;

fn root() -> bool {
    std::fs::metadata("/proc/self").expect("procfs").uid() == 0
}

impl Setup {
    /// Modules start through the fake launcher with `limits`, as `nobody` when the tests
    /// run as root.
    fn confine(&mut self, limits: Limits) {
        // `nobody` must be able to enter the temporary directory to reach its sockets.
        std::fs::set_permissions(self.dir.path(), Permissions::from_mode(0o711)).expect("chmod");
        let launcher = self.variant("confine");
        self.cfg.confine = Confine {
            launcher: Some(Launcher {
                program: launcher,
                args: Vec::new(),
            }),
            limits,
            run_as: root().then(|| RunAs::lookup("nobody", None).expect("user nobody")),
        };
    }
}

/// Processes in process group `pgid` that are neither dead nor dying: not zombies, not
/// exiting, and without a SIGKILL waiting for them. A member SIGKILLed a moment ago may still
/// be scheduled to die on a busy machine; it is not left behind.
fn live_group_members(pgid: u32) -> Vec<u32> {
    /// `PF_EXITING` in the `flags` field of `/proc/PID/stat`.
    const PF_EXITING: u64 = 0x4;
    /// SIGKILL (9) in the pending-signal masks of `/proc/PID/status`.
    const SIGKILL_BIT: u64 = 1 << 8;
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("procfs").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp session tty tpgid flags …`; comm may hold spaces, so
        // count after the last ')'.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<_> = after.split_whitespace().take(7).collect();
        if fields.get(2) != Some(&pgid.to_string().as_str()) {
            continue;
        }
        if matches!(fields.first(), Some(&"Z" | &"X")) {
            continue;
        }
        let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
        if flags & PF_EXITING != 0 {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let kill_pending = status
            .lines()
            .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
            .any(|mask| mask & SIGKILL_BIT != 0);
        if !kill_pending {
            members.push(pid);
        }
    }
    members
}

async fn echo_works(runner: &mut Runner, k: InstanceKey) {
    runner.route(k, &fake("echo"), text_frame("still")).unwrap();
    assert!(texts(&until_idle(runner, k).await)[0].ends_with(":still"));
}

#[tokio::test]
async fn confined_modules_have_their_limits_no_new_privs_and_the_module_user() {
    let mut setup = Setup::new();
    setup.confine(Limits {
        address_space: Some(512 << 20),
        cpu_secs: Some(30),
        open_files: Some(64),
        processes: Some(64),
    });
    let shm = mrci_shm::SessionShm::create().expect("session segment");
    {
        let mut seg = shm.lock().expect("lock");
        seg.set_user_name("alice");
        seg.set_host_rank(2);
    }
    let mut context = ctx();
    context.mem_ses = shm.key().to_string();
    let mut runner = Runner::new(setup.cfg(), context);
    let k = key(270, 0);
    runner.route(k, &fake("status"), text_frame("")).unwrap();
    let status = texts(&until_idle(&mut runner, k).await).join("\n");
    for line in [
        "NoNewPrivs: 1",
        "Max cpu time 30 31 seconds",
        "Max address space 536870912 536870912 bytes",
        "Max open files 64 64 files",
        "Max core file size 0 0 bytes",
    ] {
        assert!(
            status.lines().any(|l| l == line),
            "{line:?} not in\n{status}"
        );
    }
    if root() {
        for line in [
            "Uid: 65534 65534 65534 65534",
            "Gid: 65534 65534 65534 65534",
            "Groups: 65534",
            "Max processes 64 64 processes",
        ] {
            assert!(
                status.lines().any(|l| l == line),
                "{line:?} not in\n{status}"
            );
        }
    } else {
        // Without a user switch the per-user process limit is not applied.
        assert!(!status.contains("Max processes 64 64"), "{status}");
    }
    // As `nobody`, the module still reaches the session's shared memory.
    let k2 = key(271, 0);
    runner.route(k2, &fake("whoami"), text_frame("")).unwrap();
    assert_eq!(
        texts(&until_idle(&mut runner, k2).await),
        ["user alice rank 2"]
    );
    // A missing module fails at once, as it does unconfined.
    let missing = Target {
        exe: setup.dir.path().join("no_such_module"),
        name: "x".into(),
    };
    let routed = runner.route(key(272, 9), &missing, text_frame("x"));
    assert!(matches!(routed, Err(Error::Spawn { .. })), "{routed:?}");
    // List mode goes through the launcher too.
    let listing = setup.list(Path::new(FAKE), ListMode::Public).await.unwrap();
    assert_eq!(listing.commands.len(), 2);
    assert!(listing.ended.confined);
    for (_, event) in runner.shutdown().await {
        assert!(matches!(event, Event::Ended(e) if e.cause == ExitCause::Stopped && e.confined));
    }
    setup.assert_clean();
}

#[tokio::test]
async fn a_module_that_allocates_without_end_is_ended_and_reported() {
    let mut setup = Setup::new();
    setup.confine(Limits {
        address_space: Some(256 << 20),
        ..Limits::NONE
    });
    let mut runner = setup.runner();
    let k = key(272, 0);
    runner.route(k, &fake("hog"), text_frame("")).unwrap();
    let (events, ended) = until_ended(&mut runner, k).await;
    assert!(texts(&events).is_empty(), "no limit stopped it: {events:?}");
    // Rust aborts when an allocation fails; the host can only say what that usually means.
    assert_eq!(ended.cause, ExitCause::Crashed);
    assert_eq!(ended.signal(), Some(6), "{ended}");
    assert!(ended.to_string().contains("address-space limit"), "{ended}");
    assert!(ended.task_open && ended.client_error().is_some());
    assert!(process_gone(ended.pid));
    echo_works(&mut runner, key(272, 1)).await;
    drop(runner);
    setup.assert_clean();
}

#[tokio::test]
async fn a_module_that_forks_without_end_is_contained_ended_and_reported() {
    let mut setup = Setup::new();
    setup.confine(Limits {
        cpu_secs: Some(1),
        processes: Some(16),
        ..Limits::NONE
    });
    let mut runner = setup.runner();
    let k = key(273, 0);
    runner.route(k, &fake("forkbomb"), text_frame("")).unwrap();
    let (events, ended) = until_ended(&mut runner, k).await;
    let said = texts(&events);
    if root() {
        // As `nobody`, the per-user process limit refuses it well before 16 processes.
        let refused = said.first().and_then(|t| t.strip_prefix("refused after "));
        let started: u32 = refused
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no refusal: {said:?}"));
        assert!(started < 16, "{said:?}");
    }
    assert!(!said.iter().any(|t| t == "survived"), "{said:?}");
    // It kept trying until its CPU time ran out, and was ended by SIGXCPU.
    assert_eq!(ended.cause, ExitCause::CpuLimit, "{ended}");
    assert!(ended.cause.is_failure());
    assert_eq!(ended.signal(), Some(24));
    assert!(ended.task_open && ended.client_error().is_some());
    // Its whole process group is gone: the children share its output pipes, and `Ended`
    // comes only after those ended (or a 2-second wait for them, which would leave them here).
    let left = live_group_members(ended.pid);
    assert!(left.is_empty(), "left behind: {left:?}");
    // The host side is unharmed: the next module starts and answers.
    setup.cfg.confine.limits.processes = Some(64);
    let mut runner = setup.runner();
    echo_works(&mut runner, key(273, 1)).await;
    drop(runner);
    setup.assert_clean();
}

#[tokio::test]
async fn a_module_flooding_big_frames_is_paused_at_the_byte_budget_and_loses_nothing() {
    let mut setup = Setup::new();
    setup.cfg.max_payload = 1 << 20;
    setup.cfg.queue_bytes = 4 << 20;
    let budget = setup.cfg.queue_bytes;
    let told = setup.dir.path().join("blocked");
    let listener = tokio::net::UnixListener::bind(&told).expect("test socket");
    let mut runner = setup.runner();
    let k = key(274, 0);
    let path = told.to_str().expect("UTF-8 temp path");
    runner
        .route(k, &fake("bigflood"), text_frame(path))
        .unwrap();
    // Nobody consumes: the budget fills, the host stops reading and the module's writes
    // block (it tells the test after a write made no progress for 500 ms).
    let accepted = timeout(PATIENCE, listener.accept()).await;
    let (mut stream, _) = accepted.expect("the module never blocked").unwrap();
    let mut blocked_at = String::new();
    stream.read_to_string(&mut blocked_at).await.unwrap();
    let blocked_at: usize = blocked_at.parse().unwrap();
    let held = runner.held_bytes();
    assert!(held <= budget && held + FLOOD_FRAME + 4 > budget, "{held}");
    // What it wrote before blocking: the budget, plus socket buffers and read-ahead.
    assert!(
        blocked_at * FLOOD_FRAME <= budget + (2 << 20),
        "{blocked_at}"
    );
    // Consuming resumes the flow; every frame arrives, in order.
    let (mut frames, mut said) = (0, String::new());
    loop {
        let (k2, event) = next(&mut runner).await;
        assert_eq!(k2, k);
        assert!(runner.held_bytes() <= budget);
        match event {
            Event::Output(f) if f.type_id == TypeId::BYTES => {
                assert_eq!(f.payload.len(), FLOOD_FRAME);
                assert!(f.payload.iter().all(|&b| usize::from(b) == frames));
                frames += 1;
            }
            Event::Output(f) if f.type_id == TypeId::TEXT => said = text::decode(&f.payload),
            event if is_idle(&event) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(frames, FLOOD_FRAMES);
    assert_eq!(said, format!("blocked at frame {blocked_at}"));
}

#[tokio::test]
async fn module_output_lines_are_capped_and_rate_limited() {
    let mut setup = Setup::new();
    // No refill: exactly the burst is logged, whatever the timing.
    setup.cfg.output = OutputLimits {
        line_max: 4096,
        lines_per_sec: 0,
        burst: 100,
    };
    let mut runner = setup.runner();
    let k = key(275, 0);
    runner.route(k, &fake("chatty"), text_frame("")).unwrap();
    let (events, ended) = until_ended(&mut runner, k).await;
    assert!(matches!(&events[..], [idle] if is_idle(idle)), "{events:?}");
    assert_eq!(ended.cause, ExitCause::Finished);
    let out = ended.output;
    // 1000 stderr lines and one stdout line of 100 MiB, cut to 4 KiB.
    assert_eq!((out.logged, out.dropped), (100, 901), "{out:?}");
    assert_eq!(out.truncated, 1);
    assert_eq!(out.truncated_bytes, (100 << 20) - 4096);
}
