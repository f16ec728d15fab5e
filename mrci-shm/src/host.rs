//! The host segment (seed 000 §6.3): the number of sessions, written by the host and read by
//! modules that attach with the `-mem_host` key.
//!
//! Invariant: as for the session segment, getters live on [`HostReadGuard`] and the setter
//! only on [`HostGuard`], which only the creating [`HostShm`] hands out.

use std::ops::Deref;

use crate::error::Result;
use crate::layout as l;
use crate::segment::{RawGuard, Segment};

/// The host segment as created by the host; unlinked on drop.
pub struct HostShm {
    seg: Segment,
}

impl HostShm {
    /// Creates a new owner-only segment with an unguessable key; it is unlinked on drop.
    ///
    /// # Errors
    /// If the operating system refuses to create or map it.
    pub fn create() -> Result<Self> {
        Ok(Self {
            seg: Segment::create("host", l::HOST_LEN)?,
        })
    }

    /// Attaches to the host segment named `key` the way a module does (read access only).
    ///
    /// # Errors
    /// As for [`crate::SessionShm::attach`].
    pub fn attach(key: &str) -> Result<HostReader> {
        Ok(HostReader {
            seg: Segment::attach(key, l::HOST_LEN)?,
        })
    }

    /// The key to pass to modules.
    pub fn key(&self) -> &str {
        self.seg.name()
    }

    /// Locks the segment for reading or writing.
    ///
    /// # Errors
    /// If this thread already holds the lock.
    pub fn lock(&self) -> Result<HostGuard<'_>> {
        Ok(HostGuard {
            read: HostReadGuard {
                raw: self.seg.lock()?,
            },
        })
    }
}

/// A host segment attached by key: read access only.
pub struct HostReader {
    seg: Segment,
}

impl HostReader {
    /// The key this segment was attached with.
    pub fn key(&self) -> &str {
        self.seg.name()
    }

    /// The pid of the process that created the segment.
    pub fn owner_pid(&self) -> u32 {
        self.seg.owner_pid()
    }

    /// The segment's sequence counter, read without the lock: even while no write is in
    /// progress, and two more after each locked write. A cheap way to see whether anything
    /// changed since the last read; see the crate docs for the lock-free read recipe.
    pub fn sequence(&self) -> u32 {
        self.seg.sequence()
    }

    /// Locks the segment for reading.
    ///
    /// # Errors
    /// If this thread already holds the lock.
    pub fn lock(&self) -> Result<HostReadGuard<'_>> {
        Ok(HostReadGuard {
            raw: self.seg.lock()?,
        })
    }
}

/// Read access while the host segment is locked; unlocks on drop.
pub struct HostReadGuard<'a> {
    raw: RawGuard<'a>,
}

impl HostReadGuard<'_> {
    /// True if the lock was taken over from a process that died holding it.
    pub fn recovered(&self) -> bool {
        self.raw.recovered()
    }

    /// The number of live sessions.
    pub fn sessions(&self) -> u32 {
        let mut raw = [0u8; 4];
        self.raw.read(l::NUM_SESSIONS, &mut raw);
        u32::from_le_bytes(raw)
    }
}

/// Read and write access while the host holds the lock; getters via `Deref`.
pub struct HostGuard<'a> {
    read: HostReadGuard<'a>,
}

impl<'a> Deref for HostGuard<'a> {
    type Target = HostReadGuard<'a>;

    fn deref(&self) -> &Self::Target {
        &self.read
    }
}

impl HostGuard<'_> {
    /// Sets the number of live sessions.
    pub fn set_sessions(&mut self, n: u32) {
        self.read.raw.write(l::NUM_SESSIONS, &n.to_le_bytes());
    }
}
