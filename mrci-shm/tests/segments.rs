//! Cross-process tests of the shared-memory segments. This binary is its own test harness:
//! run with `MRCI_SHM_ROLE` set it plays the child process (attach and read, lock and wait
//! to be killed, or read the object raw without this crate the way a C or Python module
//! does); otherwise it runs every check and exits non-zero on the first failure.

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
    let tests: [(&str, fn()); 11] = [
        (
            "child_attaches_and_reads_what_the_parent_wrote",
            child_reads,
        ),
        ("sigkilled_holder_does_not_block_the_lock", sigkilled_holder),
        (
            "a_raw_reader_finds_the_seed_fields_at_the_seed_offsets",
            raw_reader,
        ),
        (
            "raw_sequence_readers_never_see_a_torn_snapshot",
            seqlock_readers,
        ),
        ("each_locked_write_adds_two_to_the_sequence", sequence_steps),
        ("foreign_or_short_segments_are_refused", refused),
        ("owner_drop_unlinks", owner_drop_unlinks),
        ("stale_segments_of_dead_hosts_are_removed", stale_cleanup),
        ("lists_round_trip_and_respect_their_capacity", lists),
        ("fields_land_at_the_seed_offsets", offsets),
        ("relocking_in_one_thread_is_an_error_not_a_deadlock", relock),
    ];
    // Enough of the libtest command line for `cargo nextest` and name filters.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            for (name, _) in tests {
                println!("{name}: test");
            }
        }
        return;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected = |name: &str| {
        filters.is_empty()
            || filters.iter().any(|f| {
                if exact {
                    name == f.as_str()
                } else {
                    name.contains(f.as_str())
                }
            })
    };
    let mut passed = 0;
    for (name, test) in tests {
        if !selected(name) {
            continue;
        }
        passed += 1;
        print!("test {name} ... ");
        test();
        println!("ok");
    }
    println!("test result: ok. {passed} passed");
}

fn child(role: &str, key: &str) {
    match role {
        "raw" => return raw::print_fields(key),
        "raw_hold" => raw::hold_lock(key),
        "torn" => return raw::check_snapshots(key),
        _ => {}
    }
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
    // Once with a child that locks through this crate, once with one that calls
    // pthread_mutex_lock on the documented offset of a raw mapping.
    for role in ["hold", "raw_hold"] {
        sigkilled_holder_of(role);
    }
}

fn sigkilled_holder_of(role: &str) {
    let shm = SessionShm::create().expect("create");
    let mut child = spawn(role, shm.key());
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
    shm.lock().expect("lock").set_host_rank(3);
    drop(shm);
    assert!(matches!(
        SessionShm::attach(&key),
        Err(Error::Os { op: "shm_open", .. })
    ));
    assert!(!std::path::Path::new(&format!("/dev/shm{key}")).exists());
    // Processes still attached keep a working mapping.
    assert_eq!(attached.lock().expect("lock").host_rank(), 3);
}

fn stale_cleanup() {
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let pid = dead.id();
    dead.wait().expect("reap");
    let name = format!("/mrci-{pid}-ses-stale");
    raw_segment(&name, 64);
    // Segments of live processes are kept: our own, and one named after pid 1 (always alive;
    // `kill(1, 0)` answers EPERM or success, never ESRCH).
    let live = SessionShm::create().expect("create");
    let init = "/mrci-1-ses-init-test";
    raw_segment(init, 64);
    // Another test process may run the cleanup at the same time, so check the outcome rather
    // than the count.
    cleanup_stale();
    assert!(shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty()).is_err());
    assert!(SessionShm::attach(live.key()).is_ok());
    assert!(shm_open(init, OFlag::O_RDWR, Mode::empty()).is_ok());
    shm_unlink(init).expect("unlink the pid-1 segment");
}

fn lists() {
    let shm = SessionShm::create().expect("create");
    let mut seg = shm.lock().expect("lock");
    let ids: Vec<u64> = (1..=250).collect();
    assert_eq!(seg.set_channels(&ids), 200);
    assert_eq!(seg.channels(), (1..=200).collect::<Vec<_>>());
    let subs: Vec<SubCh> = (1..=8)
        .map(|ch_id| SubCh {
            ch_id,
            sub_id: (ch_id * 30) as u8,
        })
        .collect();
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

/// Writes every field through the API and checks the raw bytes of the object (read through
/// `/dev/shm`) at the seed offsets, and the extension after them.
fn offsets() {
    use mrci_shm::layout as l;

    let shm = SessionShm::create().expect("create");
    {
        let mut seg = shm.lock().expect("lock");
        seg.set_session_id(&[0x11; 28]);
        seg.set_user_id(&[0x22; 32]);
        seg.set_client_ip("1.2");
        seg.set_client_app("app");
        seg.set_user_name("bob");
        seg.set_display_name("B");
        seg.set_host_rank(0x0403_0201);
        seg.set_active_update(true);
        seg.set_owner_override(true);
        seg.set_channels(&[0x0102_0304_0506_0708, 9]);
        seg.set_open_subs(&[SubCh {
            ch_id: 0x0A0B,
            sub_id: 7,
        }]);
        seg.set_writable_subs(&[SubCh {
            ch_id: 5,
            sub_id: 6,
        }]);
        seg.set_pending_p2p(&[[0x33; 28]]);
        seg.set_accepted_p2p(&[[0x44; 28]]);
    }
    let file = std::fs::read(format!("/dev/shm{}", shm.key())).expect("read the object");
    assert_eq!(file.len(), l::SESSION_SEGMENT_LEN);
    let at = |offset: usize, len: usize| &file[offset..][..len];
    assert_eq!(
        at(l::SESSION_ID, 29),
        [[0x11; 28].as_slice(), &[0x22]].concat()
    );
    assert_eq!(at(l::USER_ID, 33), [[0x22; 32].as_slice(), b"1"].concat());
    assert_eq!(at(l::CLIENT_IP, 8), b"1\0.\x002\0\0\0");
    assert!(
        at(l::CLIENT_IP + 6, l::CLIENT_IP_LEN - 6)
            .iter()
            .all(|b| *b == 0)
    );
    assert_eq!(at(l::CLIENT_APP, 6), b"a\0p\0p\0");
    assert_eq!(at(l::USER_NAME, 6), b"b\0o\0b\0");
    assert_eq!(at(l::DISP_NAME - 2, 4), b"\0\0B\0");
    assert_eq!(at(l::HOST_RANK - 1, 6), [0, 1, 2, 3, 4, 1]);
    assert_eq!(at(l::OWNER_OVERRIDE, 1), [1]);
    assert_eq!(at(l::CHANNEL_LIST, 10), [8, 7, 6, 5, 4, 3, 2, 1, 9, 0]);
    assert_eq!(
        at(l::OPEN_SUBS - 1, 11),
        [0, 0x0B, 0x0A, 0, 0, 0, 0, 0, 0, 7, 0]
    );
    assert_eq!(at(l::WRITABLE_SUBS, 10), [5, 0, 0, 0, 0, 0, 0, 0, 6, 0]);
    assert_eq!(
        at(l::PENDING_P2P - 1, 30),
        [[0].as_slice(), &[0x33; 28], &[0]].concat()
    );
    assert_eq!(
        at(l::ACCEPTED_P2P - 1, 30),
        [[0].as_slice(), &[0x44; 28], &[0]].concat()
    );
    assert!(
        at(l::ACCEPTED_P2P + 28, l::MAX_P2P * 28 - 28)
            .iter()
            .all(|b| *b == 0)
    );
    // Nothing of ours between the seed layout and the extension; the extension starts with
    // the magic and holds the sequence after one write.
    assert!(
        at(l::SESSION_LEN, l::SESSION_EXT - l::SESSION_LEN)
            .iter()
            .all(|b| *b == 0)
    );
    assert_eq!(at(l::SESSION_EXT, 8), b"MRCISHM\0");
    assert_eq!(at(l::SESSION_SEQ, 4), 2u32.to_ne_bytes());
    let host = HostShm::create().expect("create host");
    host.lock().expect("lock").set_sessions(0x0102);
    let file = std::fs::read(format!("/dev/shm{}", host.key())).expect("read the object");
    assert_eq!(file.len(), l::HOST_SEGMENT_LEN);
    assert_eq!(
        file.get(..l::HOST_EXT),
        Some([[2u8, 1, 0, 0].as_slice(), &[0; 60]].concat().as_slice())
    );
    assert_eq!(
        file.get(l::HOST_EXT..l::HOST_EXT + 8),
        Some(b"MRCISHM\0".as_slice())
    );
    assert_eq!(
        file.get(l::HOST_SEQ..l::HOST_SEQ + 4),
        Some(2u32.to_ne_bytes().as_slice())
    );
}

/// A child that knows only the seed offsets (no mrci-shm) reads what the host wrote.
fn raw_reader() {
    let shm = SessionShm::create().expect("create");
    {
        let mut seg = shm.lock().expect("lock");
        seg.set_user_name("zoë");
        seg.set_host_rank(0x0102_0304);
        seg.set_open_subs(&[SubCh {
            ch_id: 77,
            sub_id: 3,
        }]);
    }
    let mut child = spawn("raw", shm.key());
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("read");
    assert!(child.wait().expect("wait").success());
    assert_eq!(out, "zoë|16909060|77:3|2\n");
}

/// The host alternates two whole states as fast as it can while a raw child reads with the
/// sequence recipe; every snapshot the child accepts must be one state or the other.
fn seqlock_readers() {
    let shm = SessionShm::create().expect("create");
    let write = |name: &str, rank: u32| {
        let mut seg = shm.lock().expect("lock");
        seg.set_user_name(name);
        seg.set_display_name(name);
        seg.set_host_rank(rank);
    };
    write(&"a".repeat(24), 1);
    let mut child = spawn("torn", shm.key());
    let mut round = 0u64;
    // The child ends by itself after a bounded number of reads.
    while child.try_wait().expect("try_wait").is_none() {
        write(&"b".repeat(24), 2);
        std::thread::yield_now();
        write(&"a".repeat(24), 1);
        std::thread::yield_now();
        round += 1;
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("read");
    assert!(child.wait().expect("wait").success(), "child: {out}");
    assert!(out.starts_with("consistent"), "{out} after {round} rounds");
}

fn sequence_steps() {
    let shm = SessionShm::create().expect("create");
    let reader = SessionShm::attach(shm.key()).expect("attach");
    assert_eq!(reader.sequence(), 0);
    drop(shm.lock().expect("lock without writing"));
    drop(reader.lock().expect("reader lock"));
    assert_eq!(
        reader.sequence(),
        0,
        "locking without writing changes nothing"
    );
    {
        let mut seg = shm.lock().expect("lock");
        seg.set_host_rank(1);
        seg.set_user_name("x");
        assert_eq!(reader.sequence(), 1, "odd while the writer holds the lock");
    }
    assert_eq!(
        reader.sequence(),
        2,
        "one step per locked write, not per field"
    );
    let host = HostShm::create().expect("create host");
    let host_reader = HostShm::attach(host.key()).expect("attach host");
    host.lock().expect("lock").set_sessions(3);
    host.lock().expect("lock").set_sessions(4);
    assert_eq!(host_reader.sequence(), 4);
}

/// What a module in another language does: map `/dev/shm/<key>` and read at the seed
/// offsets, with no help from mrci-shm. Only the numbers of seed 000 and MODULES.md are used.
mod raw {
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering, fence};

    use memmap2::{Mmap, MmapMut};

    const SEED_LEN: usize = 7698;
    const SEQ: usize = 7768;
    const MUTEX: usize = 7808;
    const OBJECT_LEN: usize = 7872;

    fn open(key: &str) -> File {
        File::open(format!("/dev/shm{key}")).expect("open read-only")
    }

    fn text(bytes: &[u8]) -> String {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    }

    /// One snapshot of the seed bytes `0..len` by the sequence recipe, or `None` after many
    /// tries.
    fn snapshot(map: &Mmap, len: usize) -> Option<Vec<u8>> {
        assert!(map.len() >= OBJECT_LEN);
        // SAFETY: SEQ is inside the mapping and 4-aligned (the mapping is page-aligned); the
        // word is only ever accessed atomically by the writer.
        let seq = unsafe { AtomicU32::from_ptr(map.as_ptr().add(SEQ).cast_mut().cast()) };
        let mut out = vec![0u8; len.min(SEED_LEN)];
        for _ in 0..1_000_000 {
            let before = seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            for (i, b) in out.iter_mut().enumerate() {
                // SAFETY: i < out.len() <= SEED_LEN <= map.len(); volatile because another process may
                // be writing the byte (the sequence check discards such a copy).
                *b = unsafe { map.as_ptr().add(i).read_volatile() };
            }
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == before {
                return Some(out);
            }
        }
        None
    }

    fn map(key: &str) -> Mmap {
        // SAFETY: a read-only shared mapping; the bytes may change under us, which is why
        // every read above is volatile or atomic and validated by the sequence counter.
        unsafe { Mmap::map(&open(key)) }.expect("mmap")
    }

    pub(super) fn print_fields(key: &str) {
        let map = map(key);
        let seed = snapshot(&map, SEED_LEN).expect("a stable snapshot");
        let name = text(&seed[272..320]);
        let rank = u32::from_le_bytes(seed[384..388].try_into().expect("4 bytes"));
        let sub = &seed[1990..1999];
        let ch = u64::from_le_bytes(sub[..8].try_into().expect("8 bytes"));
        // SAFETY: as in `snapshot`.
        let seq = unsafe { AtomicU32::from_ptr(map.as_ptr().add(SEQ).cast_mut().cast()) };
        let mut out = std::io::stdout();
        writeln!(
            out,
            "{name}|{rank}|{ch}:{}|{}",
            sub[8],
            seq.load(Ordering::Acquire)
        )
        .expect("stdout");
    }

    pub(super) fn check_snapshots(key: &str) {
        let map = map(key);
        let (mut a, mut b) = (0u32, 0u32);
        for _ in 0..20_000 {
            // Only up to the end of the host rank: the copy is short, as a reader's should be.
            let seed = snapshot(&map, 388).expect("a stable snapshot");
            let name = text(&seed[272..320]);
            let disp = text(&seed[320..384]);
            let rank = u32::from_le_bytes(seed[384..388].try_into().expect("4 bytes"));
            match (rank, name.as_str()) {
                (1, n) if n == "a".repeat(24) && disp == n => a += 1,
                (2, n) if n == "b".repeat(24) && disp == n => b += 1,
                _ => {
                    println!("torn: rank {rank} name {name:?} display {disp:?}");
                    return;
                }
            }
        }
        println!("consistent: {a} a, {b} b");
    }

    /// Locks the mutex at its documented offset with plain pthread calls, then waits to be
    /// killed.
    pub(super) fn hold_lock(key: &str) -> ! {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm{key}"))
            .expect("open read-write");
        // SAFETY: a shared mapping of the whole object; only the mutex is touched.
        let mut map = unsafe { MmapMut::map_mut(&file) }.expect("mmap");
        assert!(map.len() >= OBJECT_LEN);
        // SAFETY: MUTEX is inside the mapping and aligned; the creator initialised it as a
        // process-shared robust mutex before publishing the key.
        let res = unsafe {
            libc::pthread_mutex_lock(map.as_mut_ptr().add(MUTEX).cast::<libc::pthread_mutex_t>())
        };
        assert_eq!(res, 0);
        let mut out = std::io::stdout();
        writeln!(out, "locked").expect("stdout");
        out.flush().expect("flush");
        loop {
            std::thread::park();
        }
    }
}
