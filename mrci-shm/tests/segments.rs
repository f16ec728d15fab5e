//! Cross-process tests of the shared-memory segments. This binary is its own test harness:
//! run with `MRCI_SHM_ROLE` set it plays the child process (attach and read, or lock and wait
//! to be killed); otherwise it runs every check and exits non-zero on the first failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mrci_shm::{Error, HostShm, SessionShm, SubCh, cleanup_stale};
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;
use nix::unistd::ftruncate;

const ROLE: &str = "MRCI_SHM_ROLE";

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        let key = std::env::args().nth(1).expect("key argument");
        child(&role, &key);
        return;
    }
    let tests: [(&str, fn()); 7] = [
        (
            "child_attaches_and_reads_what_the_parent_wrote",
            child_reads,
        ),
        ("sigkilled_holder_does_not_block_the_lock", sigkilled_holder),
        ("foreign_or_short_segments_are_refused", refused),
        ("owner_drop_unlinks", owner_drop_unlinks),
        ("stale_segments_of_dead_hosts_are_removed", stale_cleanup),
        ("lists_round_trip_and_respect_their_capacity", lists),
        ("relocking_in_one_thread_is_an_error_not_a_deadlock", relock),
    ];
    for (name, test) in tests {
        print!("test {name} ... ");
        test();
        println!("ok");
    }
    println!("test result: ok. {} passed", tests.len());
}

fn child(role: &str, key: &str) {
    let shm = SessionShm::attach(key).expect("attach");
    let mut out = std::io::stdout();
    match role {
        "read" => {
            let seg = shm.lock().expect("lock");
            writeln!(
                out,
                "{}|{}|{}|{}|{:?}|{}",
                seg.user_name(),
                seg.client_app(),
                seg.host_rank(),
                seg.session_id()[0],
                seg.channels(),
                shm.owner_pid()
            )
            .expect("stdout");
        }
        "hold" => {
            let _seg = shm.lock().expect("lock");
            writeln!(out, "locked").expect("stdout");
            out.flush().expect("flush");
            loop {
                std::thread::park();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, key: &str) -> Child {
    Command::new(std::env::current_exe().expect("own path"))
        .arg(key)
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

fn child_reads() {
    let shm = SessionShm::create().expect("create");
    {
        let mut seg = shm.lock().expect("lock");
        seg.set_session_id(&[7; 28]);
        seg.set_user_name("alice");
        seg.set_client_app("MRCI terminal");
        seg.set_host_rank(2);
        seg.set_channels(&[5, 9]);
    }
    let mut child = spawn("read", shm.key());
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("read");
    assert!(child.wait().expect("wait").success());
    let expected = format!("alice|MRCI terminal|2|7|[5, 9]|{}\n", std::process::id());
    assert_eq!(out, expected);
}

fn sigkilled_holder() {
    let shm = SessionShm::create().expect("create");
    let mut child = spawn("hold", shm.key());
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "locked\n");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let start = Instant::now();
    let seg = shm.lock().expect("lock after the holder died");
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    assert!(
        seg.recovered(),
        "the lock should report that it was recovered"
    );
    drop(seg);
    assert!(!shm.lock().expect("lock again").recovered());
}

fn raw_segment(name: &str, len: i64) {
    let fd = shm_open(
        name,
        OFlag::O_CREAT | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .expect("shm_open");
    ftruncate(&fd, len).expect("ftruncate");
}

fn refused() {
    let pid = std::process::id();
    let short = format!("/mrci-{pid}-ses-short");
    raw_segment(&short, 100);
    assert!(matches!(
        SessionShm::attach(&short),
        Err(Error::BadSize { .. })
    ));
    let foreign = format!("/mrci-{pid}-ses-foreign");
    raw_segment(&foreign, 10_000);
    assert!(matches!(
        SessionShm::attach(&foreign),
        Err(Error::BadHeader(_))
    ));
    let _ = shm_unlink(short.as_str());
    let _ = shm_unlink(foreign.as_str());
    assert!(matches!(
        SessionShm::attach("/etc/passwd"),
        Err(Error::BadKey(_))
    ));
    assert!(matches!(SessionShm::attach("other"), Err(Error::BadKey(_))));
    // A host segment is not a session segment: its header names a different layout size.
    let host = HostShm::create().expect("create host");
    assert!(SessionShm::attach(host.key()).is_err());
    // The owner's files are private to the user.
    let path = format!("/dev/shm{}", host.key());
    let mode = std::fs::metadata(path).expect("stat").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

fn owner_drop_unlinks() {
    let shm = SessionShm::create().expect("create");
    let key = shm.key().to_owned();
    let attached = SessionShm::attach(&key).expect("attach while alive");
    drop(shm);
    assert!(SessionShm::attach(&key).is_err());
    // Processes still attached keep a working mapping.
    attached.lock().expect("lock").set_host_rank(3);
}

fn stale_cleanup() {
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let pid = dead.id();
    dead.wait().expect("reap");
    let name = format!("/mrci-{pid}-ses-stale");
    raw_segment(&name, 64);
    assert!(cleanup_stale() >= 1);
    assert!(shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty()).is_err());
    // Our own live segments are kept.
    let live = SessionShm::create().expect("create");
    cleanup_stale();
    assert!(SessionShm::attach(live.key()).is_ok());
}

fn lists() {
    let shm = SessionShm::create().expect("create");
    let mut seg = shm.lock().expect("lock");
    let ids: Vec<u64> = (1..=250).collect();
    assert_eq!(seg.set_channels(&ids), 200);
    assert_eq!(seg.channels(), (1..=200).collect::<Vec<_>>());
    let subs: Vec<SubCh> = (1..=8).map(|ch_id| SubCh { ch_id, sub_id: 0 }).collect();
    assert_eq!(seg.set_open_subs(&subs), 6);
    assert_eq!(seg.open_subs(), subs[..6]);
    assert_eq!(
        seg.set_writable_subs(&[
            SubCh {
                ch_id: 3,
                sub_id: 255
            },
            SubCh {
                ch_id: 3,
                sub_id: 255
            }
        ]),
        1
    );
    assert_eq!(
        seg.writable_subs(),
        [SubCh {
            ch_id: 3,
            sub_id: 255
        }]
    );
    let sids: Vec<[u8; 28]> = (1..=120u8).map(|b| [b; 28]).collect();
    assert_eq!(seg.set_pending_p2p(&sids), 100);
    assert_eq!(seg.pending_p2p().len(), 100);
    assert_eq!(seg.set_accepted_p2p(&[[0; 28], [9; 28]]), 1);
    assert_eq!(seg.accepted_p2p(), [[9; 28]]);
    seg.set_user_name(&"x".repeat(40));
    assert_eq!(seg.user_name(), "x".repeat(24));
    seg.set_active_update(true);
    seg.set_owner_override(true);
    assert!(seg.active_update() && seg.owner_override());
    seg.set_user_id(&[4; 32]);
    assert_eq!(seg.user_id(), [4; 32]);
    seg.set_client_ip("::ffff:10.0.0.1");
    assert_eq!(seg.client_ip(), "::ffff:10.0.0.1");
    seg.set_display_name("Alice A.");
    assert_eq!(seg.display_name(), "Alice A.");
    drop(seg);
    let host = HostShm::create().expect("create host");
    host.lock().expect("lock").set_sessions(42);
    let attached = HostShm::attach(host.key()).expect("attach host");
    assert_eq!(attached.lock().expect("lock").sessions(), 42);
}

fn relock() {
    let shm = SessionShm::create().expect("create");
    let held = shm.lock().expect("lock");
    assert!(matches!(shm.lock(), Err(Error::Lock(_))));
    drop(held);
    assert!(shm.lock().is_ok());
}
