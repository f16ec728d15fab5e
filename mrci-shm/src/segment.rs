//! A POSIX shared-memory segment: `shm_open` + `memmap2`; the seed layout from byte 0, then
//! an extension area (see [`crate::layout`]) with a magic, a version, the layout size, the
//! owner's pid, a sequence counter and a process-shared robust pthread mutex.
//!
//! Extension (offsets from its start, the first 64-byte boundary after the seed layout):
//! `0` magic `MRCISHM\0`, `8` version u32, `12` data length u32, `16` owner pid u32,
//! `24` sequence u32, `64` the mutex.
//!
//! Invariants: the mutex is initialised before the magic is written, so an attacher that sees
//! the magic sees an initialised mutex; a lock whose holder died is made consistent and handed
//! to the next locker (`EOWNERDEAD`), so no process can block the lock by dying. The sequence
//! counter is even whenever no write is in progress: a guard that writes makes it odd before
//! its first write and even again (two more than before) when it is dropped, still holding
//! the lock, so a reader that sees the same even value before and after copying the seed
//! bytes has a snapshot of one moment.

use std::{
    fs::File,
    io,
    marker::PhantomData,
    mem, ptr,
    sync::atomic::{AtomicU32, Ordering, fence},
};

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
use crate::layout::{
    EXT_DATA_LEN, EXT_LEN, EXT_MAGIC, EXT_MUTEX, EXT_OWNER_PID, EXT_SEQ, EXT_VERSION, ext_offset,
};

const MAGIC: [u8; 8] = *b"MRCISHM\0";
/// Version 1 had a 128-byte header before the seed layout; version 2 puts it after.
const VERSION: u32 = 2;
const NAME_PREFIX: &str = "mrci-";

const _: () = assert!(EXT_MUTEX + size_of::<libc::pthread_mutex_t>() <= EXT_LEN);
const _: () = assert!(EXT_MUTEX.is_multiple_of(align_of::<libc::pthread_mutex_t>()));
const _: () = assert!(EXT_SEQ.is_multiple_of(align_of::<AtomicU32>()));
// The extension starts on a 64-byte boundary of a page-aligned mapping, so the offsets'
// alignment within the extension is their alignment in memory.
const _: () = assert!(align_of::<libc::pthread_mutex_t>() <= 64);

/// One mapped segment.
pub(crate) struct Segment {
    map: MmapRaw,
    name: String,
    owner: bool,
    data_len: usize,
    /// Where the extension starts: `ext_offset(data_len)`.
    ext: usize,
}

// SAFETY: the mapping is plain memory that stays mapped for the Segment's lifetime; every
// access to the seed fields goes through `RawGuard`, which holds the process-shared mutex, so
// threads of this process are serialised exactly as other processes are; the sequence
// counter is only accessed atomically.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` only allows locking, reading the immutable extension fields,
// loading the sequence atomically and the name.
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
        let ext = ext_offset(data_len);
        let total = ext + EXT_LEN;
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
            ext,
        };
        seg.init_ext()?;
        Ok(seg)
    }

    /// Attaches to an existing segment by key, checking its size and extension header.
    ///
    /// The object is opened `O_RDWR` because the mutex lives in the mapping and locking writes
    /// to it; nothing else is written through an attached segment (the attach types expose
    /// only getters), and the object is never resized: only the seed layout and the extension
    /// are mapped even if the object is larger. Threat model: the segment is mode 0600, so only
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
        let ext = ext_offset(data_len);
        let total = ext + EXT_LEN;
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
            ext,
        };
        if seg.ext_bytes::<8>(EXT_MAGIC) != MAGIC {
            return Err(Error::BadHeader("not an MRCI segment (magic)"));
        }
        if u32::from_ne_bytes(seg.ext_bytes(EXT_VERSION)) != VERSION {
            return Err(Error::BadHeader("unsupported version"));
        }
        if u32::from_ne_bytes(seg.ext_bytes(EXT_DATA_LEN)) as usize != data_len {
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
        u32::from_ne_bytes(self.ext_bytes(EXT_OWNER_PID))
    }

    /// The sequence counter, read without the lock (`Acquire`).
    pub(crate) fn sequence(&self) -> u32 {
        self.seq().load(Ordering::Acquire)
    }

    fn ext_bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut out = [0u8; N];
        debug_assert!(offset + N <= EXT_LEN);
        // SAFETY: offset + N <= EXT_LEN for every caller (constants), and the mapping is
        // `ext + EXT_LEN` bytes long. The bytes read (magic, version, sizes, pid) are written
        // once by the creator before the magic is published and never again.
        unsafe {
            ptr::copy_nonoverlapping(
                self.map.as_ptr().add(self.ext + offset),
                out.as_mut_ptr(),
                N,
            );
        }
        out
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: ext + EXT_MUTEX is inside the mapping and suitably aligned (checked above:
        // the mapping is page-aligned, `ext` a multiple of 64).
        unsafe { self.map.as_mut_ptr().add(self.ext + EXT_MUTEX).cast() }
    }

    fn seq(&self) -> &AtomicU32 {
        // SAFETY: ext + EXT_SEQ is inside the mapping and 4-aligned (checked above); the
        // mapping outlives the returned reference, which borrows `self`; this crate touches
        // the word only through this atomic, and the documented reader recipe reads it
        // atomically too.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(self.ext + EXT_SEQ).cast()) }
    }

    fn init_ext(&self) -> Result<()> {
        let base = self.map.as_mut_ptr();
        // SAFETY: the segment was just created with O_EXCL, so no other process has it yet;
        // all writes are within the mapping (`ext + EXT_LEN` bytes).
        unsafe {
            let ext = base.add(self.ext);
            ptr::write_bytes(ext, 0, EXT_LEN);
            let put = |offset: usize, v: u32| {
                ptr::copy_nonoverlapping(v.to_ne_bytes().as_ptr(), ext.add(offset), 4);
            };
            put(EXT_VERSION, VERSION);
            put(EXT_DATA_LEN, self.data_len as u32);
            put(EXT_OWNER_PID, std::process::id());
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
            fence(Ordering::Release);
            ptr::copy_nonoverlapping(MAGIC.as_ptr(), ext.add(EXT_MAGIC), MAGIC.len());
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
            writing: false,
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
    /// True once this guard has made the sequence odd (its first write).
    writing: bool,
    not_send: PhantomData<*const ()>,
}

impl RawGuard<'_> {
    /// True if the lock was taken over from a holder that died.
    pub(crate) fn recovered(&self) -> bool {
        self.recovered
    }

    /// Copies `out.len()` bytes from seed offset `offset`.
    pub(crate) fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(
            offset + out.len() <= self.seg.data_len,
            "field outside the layout"
        );
        // SAFETY: bounds checked above (the seed layout starts at byte 0 of the mapping); the
        // lock serialises access with every cooperating writer.
        unsafe {
            ptr::copy_nonoverlapping(
                self.seg.map.as_ptr().add(offset),
                out.as_mut_ptr(),
                out.len(),
            );
        }
    }

    /// Copies `bytes` to seed offset `offset`; the first write of a guard makes the sequence
    /// odd, and dropping the guard makes it even again.
    pub(crate) fn write(&mut self, offset: usize, bytes: &[u8]) {
        assert!(
            offset + bytes.len() <= self.seg.data_len,
            "field outside the layout"
        );
        if !self.writing {
            self.writing = true;
            let seq = self.seg.seq();
            let s = seq.load(Ordering::Relaxed);
            // Odd already: a writer died mid-write (the lock was recovered); it stays odd
            // until this guard's writes are complete.
            if s.is_multiple_of(2) {
                seq.store(s.wrapping_add(1), Ordering::Relaxed);
            }
            // Orders the odd value before the field writes for a reader that pairs it with an
            // acquire fence after copying (the recipe in the crate docs).
            fence(Ordering::Release);
        }
        // SAFETY: as for `read`.
        unsafe {
            ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.seg.map.as_mut_ptr().add(offset),
                bytes.len(),
            );
        }
    }
}

impl Drop for RawGuard<'_> {
    fn drop(&mut self) {
        if self.writing {
            let seq = self.seg.seq();
            let odd = seq.load(Ordering::Relaxed) | 1;
            // Release: every field write happens before a reader sees the new even value.
            seq.store(odd.wrapping_add(1), Ordering::Release);
        }
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
