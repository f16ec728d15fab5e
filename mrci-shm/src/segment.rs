//! A POSIX shared-memory segment: `shm_open` + `memmap2`, a header with a magic, a version,
//! the data length, the owner's pid and a process-shared robust pthread mutex, then the data
//! region that holds a seed layout.
//!
//! Header (offsets within the mapping; the seed offsets start at [`HEADER_LEN`]):
//! `0` magic `MRCISHM\0`, `8` version u32, `12` data length u32, `16` owner pid u32,
//! `64` the mutex.
//!
//! Invariant: the mutex is initialised before the magic is written, so an attacher that sees
//! the magic sees an initialised mutex; a lock whose holder died is made consistent and handed
//! to the next locker (`EOWNERDEAD`), so no process can block the lock by dying.

use std::{fs::File, io, marker::PhantomData, mem, ptr};

use memmap2::{MmapOptions, MmapRaw};
use nix::{
    errno::Errno,
    fcntl::OFlag,
    sys::{
        mman::{shm_open, shm_unlink},
        signal::kill,
        stat::{Mode, fstat},
    },
    unistd::{Pid, ftruncate},
};

use crate::error::{Error, Result, os};

/// Bytes before the data region.
pub const HEADER_LEN: usize = 128;
const MAGIC: [u8; 8] = *b"MRCISHM\0";
const VERSION: u32 = 1;
const OFF_VERSION: usize = 8;
const OFF_DATA_LEN: usize = 12;
const OFF_OWNER_PID: usize = 16;
const OFF_MUTEX: usize = 64;
const NAME_PREFIX: &str = "mrci-";

const _: () = assert!(OFF_MUTEX + size_of::<libc::pthread_mutex_t>() <= HEADER_LEN);
const _: () = assert!(OFF_MUTEX.is_multiple_of(align_of::<libc::pthread_mutex_t>()));

/// One mapped segment.
pub(crate) struct Segment {
    map: MmapRaw,
    name: String,
    owner: bool,
    data_len: usize,
}

// SAFETY: the mapping is plain memory that stays mapped for the Segment's lifetime; every
// access to the data region goes through `RawGuard`, which holds the process-shared mutex, so
// threads of this process are serialised exactly as other processes are.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` only allows locking, reading the immutable header fields and
// the name.
unsafe impl Sync for Segment {}

impl Segment {
    /// Creates a new segment owned by this process, with an unguessable name.
    pub(crate) fn create(kind: &str, data_len: usize) -> Result<Self> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| Error::Os {
            op: "getrandom",
            source: io::Error::other(e.to_string()),
        })?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("/{NAME_PREFIX}{}-{kind}-{hex}", std::process::id());
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(name.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(os("shm_open"))?;
        let total = HEADER_LEN + data_len;
        let sized = ftruncate(&fd, total as libc::off_t).map_err(os("ftruncate"));
        let map = sized.and_then(|()| {
            MmapOptions::new()
                .len(total)
                .map_raw(&File::from(fd))
                .map_err(|source| Error::Os { op: "mmap", source })
        });
        let map = match map {
            Ok(map) => map,
            Err(e) => {
                let _ = shm_unlink(name.as_str());
                return Err(e);
            }
        };
        let seg = Self {
            map,
            name,
            owner: true,
            data_len,
        };
        seg.init_header()?;
        Ok(seg)
    }

    /// Attaches to an existing segment by key, checking its size and header.
    ///
    /// The object is opened `O_RDWR` because the mutex lives in the mapping and locking writes
    /// to it; nothing else is written through an attached segment (the attach types expose
    /// only getters), and the object is never resized: only `HEADER_LEN + data_len` bytes are
    /// mapped even if the object is larger. Threat model: the segment is mode 0600, so only
    /// processes of the host's uid can open it, and any such process could write or truncate
    /// it directly (a truncation makes later reads fault with `SIGBUS`). The checks here stop
    /// mistakes (a wrong key, a foreign or older segment), not a hostile process of that uid.
    pub(crate) fn attach(key: &str, data_len: usize) -> Result<Self> {
        let valid = key.len() < 250
            && key.starts_with('/')
            && key[1..].starts_with(NAME_PREFIX)
            && !key[1..].contains('/');
        if !valid {
            return Err(Error::BadKey(key.to_owned()));
        }
        let fd = shm_open(key, OFlag::O_RDWR, Mode::empty()).map_err(os("shm_open"))?;
        let size = usize::try_from(fstat(&fd).map_err(os("fstat"))?.st_size).unwrap_or(0);
        let total = HEADER_LEN + data_len;
        if size < total {
            return Err(Error::BadSize {
                expected: total,
                got: size,
            });
        }
        let map = MmapOptions::new()
            .len(total)
            .map_raw(&File::from(fd))
            .map_err(|source| Error::Os { op: "mmap", source })?;
        let seg = Self {
            map,
            name: key.to_owned(),
            owner: false,
            data_len,
        };
        if seg.header_bytes::<8>(0) != MAGIC {
            return Err(Error::BadHeader("not an MRCI segment (magic)"));
        }
        if u32::from_ne_bytes(seg.header_bytes(OFF_VERSION)) != VERSION {
            return Err(Error::BadHeader("unsupported version"));
        }
        if u32::from_ne_bytes(seg.header_bytes(OFF_DATA_LEN)) as usize != data_len {
            return Err(Error::BadHeader("layout size differs"));
        }
        Ok(seg)
    }

    /// The key modules attach with (`-mem_ses` / `-mem_host`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The pid recorded by the creator.
    pub(crate) fn owner_pid(&self) -> u32 {
        u32::from_ne_bytes(self.header_bytes(OFF_OWNER_PID))
    }

    fn header_bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut out = [0u8; N];
        // SAFETY: offset + N <= HEADER_LEN for every caller (constants), and the mapping is at
        // least HEADER_LEN bytes long.
        unsafe { ptr::copy_nonoverlapping(self.map.as_ptr().add(offset), out.as_mut_ptr(), N) };
        out
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: OFF_MUTEX is inside the header and suitably aligned (checked above; the
        // mapping itself is page-aligned).
        unsafe { self.map.as_mut_ptr().add(OFF_MUTEX).cast() }
    }

    fn init_header(&self) -> Result<()> {
        let base = self.map.as_mut_ptr();
        // SAFETY: the segment was just created with O_EXCL, so no other process has it yet;
        // all writes are within the header.
        unsafe {
            ptr::write_bytes(base, 0, HEADER_LEN);
            ptr::copy_nonoverlapping(VERSION.to_ne_bytes().as_ptr(), base.add(OFF_VERSION), 4);
            ptr::copy_nonoverlapping(
                (self.data_len as u32).to_ne_bytes().as_ptr(),
                base.add(OFF_DATA_LEN),
                4,
            );
            ptr::copy_nonoverlapping(
                std::process::id().to_ne_bytes().as_ptr(),
                base.add(OFF_OWNER_PID),
                4,
            );
            let mut attr: libc::pthread_mutexattr_t = mem::zeroed();
            check(libc::pthread_mutexattr_init(&mut attr))?;
            let res = check(libc::pthread_mutexattr_setpshared(
                &mut attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))
            .and_then(|()| {
                check(libc::pthread_mutexattr_setrobust(
                    &mut attr,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))
            })
            .and_then(|()| {
                check(libc::pthread_mutexattr_settype(
                    &mut attr,
                    libc::PTHREAD_MUTEX_ERRORCHECK,
                ))
            })
            .and_then(|()| check(libc::pthread_mutex_init(self.mutex(), &attr)));
            libc::pthread_mutexattr_destroy(&mut attr);
            res?;
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            ptr::copy_nonoverlapping(MAGIC.as_ptr(), base, MAGIC.len());
        }
        Ok(())
    }

    /// Takes the segment lock. If the previous holder died, the lock is recovered and
    /// [`RawGuard::recovered`] says so.
    pub(crate) fn lock(&self) -> Result<RawGuard<'_>> {
        // SAFETY: the mutex was initialised by the creator before the magic was published.
        let res = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        let recovered = match res {
            0 => false,
            libc::EOWNERDEAD => {
                // SAFETY: we hold the lock (EOWNERDEAD returns it locked); marking it
                // consistent is the documented recovery.
                check(unsafe { libc::pthread_mutex_consistent(self.mutex()) }).map_err(lock_err)?;
                true
            }
            err => return Err(Error::Lock(io::Error::from_raw_os_error(err))),
        };
        Ok(RawGuard {
            seg: self,
            recovered,
            not_send: PhantomData,
        })
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.owner {
            // The mapping stays valid for processes still attached; the name goes away.
            let _ = shm_unlink(self.name.as_str());
        }
    }
}

fn check(res: libc::c_int) -> Result<()> {
    if res == 0 {
        Ok(())
    } else {
        Err(Error::Os {
            op: "pthread",
            source: io::Error::from_raw_os_error(res),
        })
    }
}

fn lock_err(e: Error) -> Error {
    match e {
        Error::Os { source, .. } => Error::Lock(source),
        other => other,
    }
}

/// Proof that the segment lock is held; unlocks on drop.
///
/// Not `Send`: a robust pthread mutex belongs to the thread that locked it (the kernel tracks
/// it on that thread's robust list, and the error-checking type refuses an unlock from any
/// other thread), so the guard must be dropped on the thread that created it. This also stops
/// a guard from being held across an `.await` in a spawned tokio task.
pub(crate) struct RawGuard<'a> {
    seg: &'a Segment,
    recovered: bool,
    not_send: PhantomData<*const ()>,
}

impl RawGuard<'_> {
    /// True if the lock was taken over from a holder that died.
    pub(crate) fn recovered(&self) -> bool {
        self.recovered
    }

    /// Copies `out.len()` bytes from data offset `offset`.
    pub(crate) fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(
            offset + out.len() <= self.seg.data_len,
            "field outside the layout"
        );
        // SAFETY: bounds checked above; the lock serialises access with every cooperating
        // writer.
        unsafe {
            ptr::copy_nonoverlapping(
                self.seg.map.as_ptr().add(HEADER_LEN + offset),
                out.as_mut_ptr(),
                out.len(),
            );
        }
    }

    /// Copies `bytes` to data offset `offset`.
    pub(crate) fn write(&mut self, offset: usize, bytes: &[u8]) {
        assert!(
            offset + bytes.len() <= self.seg.data_len,
            "field outside the layout"
        );
        // SAFETY: as for `read`.
        unsafe {
            ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.seg.map.as_mut_ptr().add(HEADER_LEN + offset),
                bytes.len(),
            );
        }
    }
}

impl Drop for RawGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard exists only while this thread holds the lock.
        unsafe { libc::pthread_mutex_unlock(self.seg.mutex()) };
    }
}

/// Removes segments left by hosts that died without unlinking them (SIGKILL, abort): names
/// `/dev/shm/mrci-<pid>-…` whose creating pid no longer exists. The host runs it at start.
/// Returns how many were removed.
///
/// A segment whose pid has since been reused by a live process is kept until that process is
/// gone too; objects of other users are never removed (the kernel refuses the unlink).
pub fn cleanup_stale() -> usize {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == own || pid <= 0 {
            continue;
        }
        if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
            && shm_unlink(format!("/{name}").as_str()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}
