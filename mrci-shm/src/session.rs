//! The session segment (seed 000 §6.2): the host writes it, modules attach by key and read.
//!
//! Invariant: every accessor lives on a lock guard, so no field can be read or written
//! without holding the segment lock. Getters are on [`SessionReadGuard`] (what an attached
//! module gets); setters only on [`SessionGuard`], which only the creating [`SessionShm`]
//! hands out. List writers keep the seed's slot semantics (an all-zero slot is empty,
//! duplicates are refused, every slot is scanned).

use std::ops::Deref;

use crate::error::Result;
use crate::layout::{self as l, decode_text, encode_text};
use crate::segment::{RawGuard, Segment};

/// One `[u64 channel id][u8 sub id]` slot of a sub-channel list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubCh {
    /// The channel id (never 0 in a used slot).
    pub ch_id: u64,
    /// The sub-channel id.
    pub sub_id: u8,
}

/// The host's session segment: created by the session, written only by it, unlinked on drop.
pub struct SessionShm {
    seg: Segment,
}

impl SessionShm {
    /// Creates a new owner-only segment with an unguessable key; it is unlinked on drop.
    ///
    /// # Errors
    /// If the operating system refuses to create or map it.
    pub fn create() -> Result<Self> {
        Ok(Self {
            seg: Segment::create("ses", l::SESSION_LEN)?,
        })
    }

    /// Attaches to the segment named `key` (the `-mem_ses` option) the way a module does:
    /// the result can lock and read every field but write none.
    ///
    /// # Errors
    /// If the key is not one of ours, the segment is missing, too small or has a foreign
    /// header.
    pub fn attach(key: &str) -> Result<SessionReader> {
        Ok(SessionReader {
            seg: Segment::attach(key, l::SESSION_LEN)?,
        })
    }

    /// The key to pass to modules.
    pub fn key(&self) -> &str {
        self.seg.name()
    }

    /// Locks the segment for reading or writing fields.
    ///
    /// # Errors
    /// If this thread already holds the lock.
    pub fn lock(&self) -> Result<SessionGuard<'_>> {
        Ok(SessionGuard {
            read: SessionReadGuard {
                raw: self.seg.lock()?,
            },
        })
    }
}

/// A session segment attached by key, as a module process holds it: read access only.
pub struct SessionReader {
    seg: Segment,
}

impl SessionReader {
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

    /// Locks the segment for reading fields.
    ///
    /// # Errors
    /// If this thread already holds the lock.
    pub fn lock(&self) -> Result<SessionReadGuard<'_>> {
        Ok(SessionReadGuard {
            raw: self.seg.lock()?,
        })
    }
}

/// Read access to every field while the session segment is locked; unlocks on drop.
pub struct SessionReadGuard<'a> {
    raw: RawGuard<'a>,
}

/// Read and write access while the owner holds the lock; the getters come from
/// [`SessionReadGuard`] through `Deref`.
pub struct SessionGuard<'a> {
    read: SessionReadGuard<'a>,
}

impl<'a> Deref for SessionGuard<'a> {
    type Target = SessionReadGuard<'a>;

    fn deref(&self) -> &Self::Target {
        &self.read
    }
}

impl SessionReadGuard<'_> {
    /// True if the lock was taken over from a process that died holding it; fields may then
    /// hold a half-written value.
    pub fn recovered(&self) -> bool {
        self.raw.recovered()
    }

    fn bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut out = [0u8; N];
        self.raw.read(offset, &mut out);
        out
    }

    fn text(&self, offset: usize, len: usize) -> String {
        let mut field = vec![0u8; len];
        self.raw.read(offset, &mut field);
        decode_text(&field)
    }

    /// The session id.
    pub fn session_id(&self) -> [u8; 28] {
        self.bytes(l::SESSION_ID)
    }

    /// The logged-in user's id; all zero when logged out.
    pub fn user_id(&self) -> [u8; 32] {
        self.bytes(l::USER_ID)
    }

    /// The client's IP address as text.
    pub fn client_ip(&self) -> String {
        self.text(l::CLIENT_IP, l::CLIENT_IP_LEN)
    }

    /// The client application's name.
    pub fn client_app(&self) -> String {
        self.text(l::CLIENT_APP, l::CLIENT_APP_LEN)
    }

    /// The user name; empty when logged out.
    pub fn user_name(&self) -> String {
        self.text(l::USER_NAME, l::USER_NAME_LEN)
    }

    /// The display name.
    pub fn display_name(&self) -> String {
        self.text(l::DISP_NAME, l::DISP_NAME_LEN)
    }

    /// The host rank; 0 when logged out.
    pub fn host_rank(&self) -> u32 {
        u32::from_le_bytes(self.bytes(l::HOST_RANK))
    }

    /// Whether an open sub-channel has active updates.
    pub fn active_update(&self) -> bool {
        self.bytes::<1>(l::ACTIVE_UPDATE) != [0]
    }

    /// Whether the channel owner override is on.
    pub fn owner_override(&self) -> bool {
        self.bytes::<1>(l::OWNER_OVERRIDE) != [0]
    }

    /// The channel ids in the channel list, in slot order (empty slots skipped).
    pub fn channels(&self) -> Vec<u64> {
        let raw: [u8; l::MAX_CHANNELS * 8] = self.bytes(l::CHANNEL_LIST);
        raw.chunks_exact(8)
            .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
            .filter(|id| *id != 0)
            .collect()
    }

    fn subs(&self, offset: usize) -> Vec<SubCh> {
        let raw: [u8; l::SUB_LIST_LEN] = self.bytes(offset);
        raw.chunks_exact(9)
            .filter_map(|c| {
                let (ch, sub) = c.split_first_chunk::<8>()?;
                Some(SubCh {
                    ch_id: u64::from_le_bytes(*ch),
                    sub_id: *sub.first()?,
                })
            })
            .filter(|s| s.ch_id != 0)
            .collect()
    }

    /// The open sub-channels.
    pub fn open_subs(&self) -> Vec<SubCh> {
        self.subs(l::OPEN_SUBS)
    }

    /// The writable sub-channels.
    pub fn writable_subs(&self) -> Vec<SubCh> {
        self.subs(l::WRITABLE_SUBS)
    }

    fn sids(&self, offset: usize) -> Vec<[u8; 28]> {
        let raw: [u8; l::MAX_P2P * 28] = self.bytes(offset);
        raw.chunks_exact(28)
            .filter_map(|c| <[u8; 28]>::try_from(c).ok())
            .filter(|sid| sid.iter().any(|b| *b != 0))
            .collect()
    }

    /// Session ids with a pending P2P request.
    pub fn pending_p2p(&self) -> Vec<[u8; 28]> {
        self.sids(l::PENDING_P2P)
    }

    /// Session ids with an accepted P2P link.
    pub fn accepted_p2p(&self) -> Vec<[u8; 28]> {
        self.sids(l::ACCEPTED_P2P)
    }
}

impl SessionGuard<'_> {
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.read.raw.write(offset, bytes);
    }

    fn set_text(&mut self, offset: usize, len: usize, s: &str) {
        let mut field = vec![0u8; len];
        encode_text(s, &mut field);
        self.write(offset, &field);
    }

    /// Sets the session id.
    pub fn set_session_id(&mut self, id: &[u8; 28]) {
        self.write(l::SESSION_ID, id);
    }

    /// Sets the user id (all zero when logged out).
    pub fn set_user_id(&mut self, id: &[u8; 32]) {
        self.write(l::USER_ID, id);
    }

    /// Sets the client IP text (truncated to 39 UTF-16 units on a code-point boundary).
    pub fn set_client_ip(&mut self, s: &str) {
        self.set_text(l::CLIENT_IP, l::CLIENT_IP_LEN, s);
    }

    /// Sets the client application's name (truncated to 67 units).
    pub fn set_client_app(&mut self, s: &str) {
        self.set_text(l::CLIENT_APP, l::CLIENT_APP_LEN, s);
    }

    /// Sets the user name (truncated to 24 units).
    pub fn set_user_name(&mut self, s: &str) {
        self.set_text(l::USER_NAME, l::USER_NAME_LEN, s);
    }

    /// Sets the display name (truncated to 32 units).
    pub fn set_display_name(&mut self, s: &str) {
        self.set_text(l::DISP_NAME, l::DISP_NAME_LEN, s);
    }

    /// Sets the host rank.
    pub fn set_host_rank(&mut self, rank: u32) {
        self.write(l::HOST_RANK, &rank.to_le_bytes());
    }

    /// Sets the active-update flag.
    pub fn set_active_update(&mut self, on: bool) {
        self.write(l::ACTIVE_UPDATE, &[u8::from(on)]);
    }

    /// Sets the owner-override flag.
    pub fn set_owner_override(&mut self, on: bool) {
        self.write(l::OWNER_OVERRIDE, &[u8::from(on)]);
    }

    /// Replaces the channel list; zeros and duplicates are skipped, at most 200 are kept.
    /// Returns how many were stored.
    pub fn set_channels(&mut self, ids: &[u64]) -> usize {
        let mut raw = [0u8; l::MAX_CHANNELS * 8];
        let mut stored: Vec<u64> = Vec::new();
        for id in ids.iter().copied().filter(|id| *id != 0) {
            if stored.contains(&id) {
                continue;
            }
            let Some(slot) = raw.chunks_exact_mut(8).nth(stored.len()) else {
                break;
            };
            slot.copy_from_slice(&id.to_le_bytes());
            stored.push(id);
        }
        self.write(l::CHANNEL_LIST, &raw);
        stored.len()
    }

    fn set_subs(&mut self, offset: usize, subs: &[SubCh]) -> usize {
        let mut raw = [0u8; l::SUB_LIST_LEN];
        let mut stored: Vec<SubCh> = Vec::new();
        for s in subs.iter().copied().filter(|s| s.ch_id != 0) {
            if stored.contains(&s) {
                continue;
            }
            let Some(slot) = raw.chunks_exact_mut(9).nth(stored.len()) else {
                break;
            };
            let (ch, sub) = slot.split_at_mut(8);
            ch.copy_from_slice(&s.ch_id.to_le_bytes());
            sub.copy_from_slice(&[s.sub_id]);
            stored.push(s);
        }
        self.write(offset, &raw);
        stored.len()
    }

    /// Replaces the open sub-channel list (at most 6; returns how many were stored).
    pub fn set_open_subs(&mut self, subs: &[SubCh]) -> usize {
        self.set_subs(l::OPEN_SUBS, subs)
    }

    /// Replaces the writable sub-channel list (at most 6; returns how many were stored).
    pub fn set_writable_subs(&mut self, subs: &[SubCh]) -> usize {
        self.set_subs(l::WRITABLE_SUBS, subs)
    }

    fn set_sids(&mut self, offset: usize, sids: &[[u8; 28]]) -> usize {
        let mut raw = [0u8; l::MAX_P2P * 28];
        let mut stored: Vec<[u8; 28]> = Vec::new();
        for sid in sids.iter().filter(|s| s.iter().any(|b| *b != 0)) {
            if stored.contains(sid) {
                continue;
            }
            let Some(slot) = raw.chunks_exact_mut(28).nth(stored.len()) else {
                break;
            };
            slot.copy_from_slice(sid);
            stored.push(*sid);
        }
        self.write(offset, &raw);
        stored.len()
    }

    /// Replaces the pending P2P list (at most 100; returns how many were stored).
    pub fn set_pending_p2p(&mut self, sids: &[[u8; 28]]) -> usize {
        self.set_sids(l::PENDING_P2P, sids)
    }

    /// Replaces the accepted P2P list (at most 100; returns how many were stored).
    pub fn set_accepted_p2p(&mut self, sids: &[[u8; 28]]) -> usize {
        self.set_sids(l::ACCEPTED_P2P, sids)
    }
}
