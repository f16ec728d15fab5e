//! The host segment (seed 000 §6.3): the number of sessions, written by the host.

use crate::error::Result;
use crate::layout as l;
use crate::segment::{RawGuard, Segment};

/// The host segment, owned by the host or attached by a module (`-mem_host`).
pub struct HostShm {
    seg: Segment,
}

impl HostShm {
    /// Creates a new owner-only segment; it is unlinked on drop.
    ///
    /// # Errors
    /// If the operating system refuses to create or map it.
    pub fn create() -> Result<Self> {
        Ok(Self {
            seg: Segment::create("host", l::HOST_LEN)?,
        })
    }

    /// Attaches to the host segment named `key`.
    ///
    /// # Errors
    /// As for [`crate::SessionShm::attach`].
    pub fn attach(key: &str) -> Result<Self> {
        Ok(Self {
            seg: Segment::attach(key, l::HOST_LEN)?,
        })
    }

    /// The key to pass to modules.
    pub fn key(&self) -> &str {
        self.seg.name()
    }

    /// Locks the segment.
    ///
    /// # Errors
    /// If this thread already holds the lock.
    pub fn lock(&self) -> Result<HostGuard<'_>> {
        Ok(HostGuard {
            raw: self.seg.lock()?,
        })
    }
}

/// Field access while the host segment is locked.
pub struct HostGuard<'a> {
    raw: RawGuard<'a>,
}

impl HostGuard<'_> {
    /// True if the lock was taken over from a process that died holding it.
    pub fn recovered(&self) -> bool {
        self.raw.recovered()
    }

    /// The number of sessions.
    pub fn sessions(&self) -> u32 {
        let mut raw = [0u8; 4];
        self.raw.read(l::NUM_SESSIONS, &mut raw);
        u32::from_le_bytes(raw)
    }

    /// Sets the number of sessions.
    pub fn set_sessions(&mut self, n: u32) {
        self.raw.write(l::NUM_SESSIONS, &n.to_le_bytes());
    }
}
