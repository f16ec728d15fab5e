//! MRCI shared memory: the session (7,698-byte) and host (4-byte) segments of seed 000
//! §6.2–6.3, so module processes can read session facts without asking the host.
//!
//! A segment is a POSIX `shm_open` object, created owner-only (0600) with an unguessable name
//! and mapped with `memmap2`. Offset N of the seed tables is byte N of the object, so a
//! module that knows only seed 000 reads the right bytes. This crate's own data comes after
//! the seed layout, in an extension area at the first 64-byte boundary
//! ([`layout::SESSION_EXT`] = 7744, [`layout::HOST_EXT`] = 64): a magic, a version, the
//! layout size, the creator's pid, a sequence counter and a process-shared robust pthread
//! mutex ([`layout::EXT_LEN`] = 128 bytes; the session object is 7,872 bytes, the host
//! object 192).
//!
//! Owners ([`SessionShm`], [`HostShm`]) create a segment, write it and unlink it on drop;
//! attaching by key ([`SessionShm::attach`], [`HostShm::attach`]) gives a reader that can lock
//! and read every field and write none, and never resizes the segment.
//!
//! Invariants: every field access goes through a lock guard ([`SessionGuard`], [`HostGuard`]
//! or their read-only halves); a process that dies holding the lock does not block anyone (the
//! next locker recovers it and the guard's `recovered()` says so); an attacher can neither
//! resize the segment nor address anything outside the seed fields; the sequence counter is
//! even whenever no write is in progress. This is the only crate of the workspace that
//! contains `unsafe`.
//!
//! # Reading without this crate
//!
//! A module in any language finds the object at `/dev/shm` + the `-mem_ses` key (the key
//! starts with `/`), opens it read-only, maps the first 7,872 bytes (or just the seed's 7,698
//! if it does not care about consistency) and reads fields at the seed offsets. Two ways to
//! get a consistent snapshot:
//!
//! - **Sequence counter (lock-free, read-only mapping).** The u32 at
//!   [`layout::SESSION_SEQ`] (byte 7768; [`layout::HOST_SEQ`] = 88 in the host segment,
//!   native endian, 4-aligned) is even while the fields are stable and odd while the host
//!   writes them; each locked write by the host adds 2. Read it (an acquire load), skip if
//!   odd, copy the bytes you need, issue an acquire fence, read it again: if it is unchanged
//!   the copy is one moment's state, otherwise retry. Give up after a bounded number of tries:
//!   a counter that stays odd means the host died in the middle of a write.
//! - **The mutex.** Map the object read-write and call `pthread_mutex_lock` on the
//!   `pthread_mutex_t` at byte 7808 (7744 + [`layout::EXT_MUTEX`]); on `EOWNERDEAD` call
//!   `pthread_mutex_consistent`; unlock from the same thread. Needs the host's libc ABI.
//!
//! The host writes a session's whole state under one lock (one sequence step), so either way
//! a reader sees every field as of one moment, never a mix of before and after a login.
//!
//! # Threat model
//!
//! The segment is readable and writable by the creating user only (mode 0600, a random
//! name), so only processes of the host's uid can open it. Attaching through this crate needs
//! `O_RDWR` because the mutex lives in the mapping; a process of that same user can therefore
//! always write or truncate the object directly. The lock, the sequence counter and the
//! extension checks protect cooperating processes from torn reads and wrong keys, not from a
//! hostile process of the same user. A reader that uses the sequence counter needs only
//! `O_RDONLY` and `PROT_READ`, so a module that only reads cannot corrupt the segment even by
//! mistake.
//!
//! Why the extension sits after the seed layout in the same object rather than before it (as
//! in version 1 of this crate) or in a companion object: seed 000 gives absolute offsets and
//! passes one key per segment, so nothing may precede the seed fields, and a second object
//! would need a second name, a second open, a second cleanup and a way to fail half-way
//! (one object present, the other not) while adding no protection: both would have the same
//! owner and mode. After the seed layout, our bytes are invisible to a reader that maps only
//! the seed's size, and one `ftruncate`, one unlink and one size check cover everything. The
//! cost is that a module mapping the whole object read-write could overwrite the mutex by
//! writing past byte 7698; that is the same exposure version 1 had, and the same-uid
//! assumption above already covers it.
//!
//! Segment handles are `Send + Sync` (the host shares them across tokio tasks):
//!
//! ```
//! fn shareable<T: Send + Sync>(_: &T) {}
//! let shm = mrci_shm::SessionShm::create()?;
//! shareable(&shm);
//! shareable(&mrci_shm::SessionShm::attach(shm.key())?);
//! shareable(&mrci_shm::HostShm::create()?);
//! # Ok::<(), mrci_shm::Error>(())
//! ```
//!
//! Lock guards are not `Send`, because a robust mutex must be unlocked by the thread that
//! locked it:
//!
//! ```compile_fail
//! fn movable<T: Send>(_: T) {}
//! let shm = mrci_shm::SessionShm::create()?;
//! movable(shm.lock()?);
//! # Ok::<(), mrci_shm::Error>(())
//! ```
//!
//! And a segment attached by key has getters only:
//!
//! ```compile_fail
//! let shm = mrci_shm::SessionShm::create()?;
//! let reader = mrci_shm::SessionShm::attach(shm.key())?;
//! reader.lock()?.set_host_rank(1);
//! # Ok::<(), mrci_shm::Error>(())
//! ```

mod error;
mod host;
pub mod layout;
mod segment;
mod session;

pub use error::{Error, Result};
pub use host::{HostGuard, HostReadGuard, HostReader, HostShm};
pub use segment::cleanup_stale;
pub use session::{SessionGuard, SessionReadGuard, SessionReader, SessionShm, SubCh};
