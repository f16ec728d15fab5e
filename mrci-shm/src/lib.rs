//! MRCI shared memory: the session (7,698-byte) and host (4-byte) segments of seed 000
//! §6.2–6.3, so module processes can read session facts without asking the host.
//!
//! A segment is a POSIX `shm_open` object, created owner-only (0600) with an unguessable name
//! and mapped with `memmap2`. A small header precedes the seed layout: a magic, a version, the
//! layout size, the creator's pid and a process-shared robust pthread mutex. The seed offsets
//! in [`layout`] are relative to the data region after the header ([`HEADER_LEN`] bytes).
//!
//! Invariants: every field access goes through a lock guard ([`SessionGuard`], [`HostGuard`]);
//! a process that dies holding the lock does not block anyone (the next locker recovers it);
//! an attacher can neither resize the segment nor address anything outside the seed fields.
//! This is the only crate of the workspace that contains `unsafe`.
//!
//! Threat model: the segment is readable and writable by the creating user only. A process of
//! that same user can always write the mapping directly; the lock protects cooperating
//! processes from torn reads, not from a hostile process of the same user.

mod error;
mod host;
pub mod layout;
mod segment;
mod session;

pub use error::{Error, Result};
pub use host::{HostGuard, HostShm};
pub use segment::{HEADER_LEN, cleanup_stale};
pub use session::{SessionGuard, SessionShm, SubCh};
