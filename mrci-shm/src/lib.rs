//! MRCI shared memory: the session (7,698-byte) and host (4-byte) segments of seed 000
//! §6.2–6.3, so module processes can read session facts without asking the host.
//!
//! A segment is a POSIX `shm_open` object, created owner-only (0600) with an unguessable name
//! and mapped with `memmap2`. A small header precedes the seed layout: a magic, a version, the
//! layout size, the creator's pid and a process-shared robust pthread mutex. The seed offsets
//! in [`layout`] are relative to the data region after the header ([`HEADER_LEN`] bytes).
//!
//! Owners ([`SessionShm`], [`HostShm`]) create a segment, write it and unlink it on drop;
//! attaching by key ([`SessionShm::attach`], [`HostShm::attach`]) gives a reader that can lock
//! and read every field and write none, and never resizes the segment.
//!
//! Invariants: every field access goes through a lock guard ([`SessionGuard`], [`HostGuard`]
//! or their read-only halves); a process that dies holding the lock does not block anyone (the
//! next locker recovers it and the guard's `recovered()` says so); an attacher can neither
//! resize the segment nor address anything outside the seed fields. This is the only crate of
//! the workspace that contains `unsafe`.
//!
//! Threat model: the segment is readable and writable by the creating user only (mode 0600,
//! a random name). Attaching needs `O_RDWR` because the mutex lives in the mapping; a process
//! of that same user can therefore always write or truncate the object directly. The lock
//! and the header checks protect cooperating processes from torn reads and wrong keys, not
//! from a hostile process of the same user.
//!
//! Segment handles are `Send + Sync` (the host shares them across tokio tasks); lock guards
//! are not `Send`, because a robust mutex must be unlocked by the thread that locked it:
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
//! ```compile_fail
//! fn movable<T: Send>(_: T) {}
//! let shm = mrci_shm::SessionShm::create()?;
//! movable(shm.lock()?);
//! # Ok::<(), mrci_shm::Error>(())
//! ```

mod error;
mod host;
pub mod layout;
mod segment;
mod session;

pub use error::{Error, Result};
pub use host::{HostGuard, HostReadGuard, HostReader, HostShm};
pub use segment::{HEADER_LEN, cleanup_stale};
pub use session::{SessionGuard, SessionReadGuard, SessionReader, SessionShm, SubCh};
