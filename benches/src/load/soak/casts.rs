//! The soak's checked casts: a few senders cast BYTES to one sub-channel that a few
//! receivers keep open for the whole soak, and every receiver checks every payload, per
//! sender: exactly once, in order, uncorrupted.
//!
//! A cast's data is `[sender u32][seq u64][len u16][len pattern bytes][checksum u64]`, the
//! length varying with the sequence number, so a damaged, truncated or misrouted payload is
//! seen. Senders keep at most a window of casts ahead of the slowest receiver, so the host's
//! delivery policy (a receiver's queue that stays full is dropped from) never has a reason
//! to drop: anything missing is a fault.
//!
//! Invariant: a receiver counts each `(sender, seq)` once as delivered; a repeat is a
//! duplicate, an arrival other than the next expected one is out of order, and what never
//! arrived by the end is lost.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use mrci_cli::client::{Client, WriteHalf};
use mrci_proto::{BranchId, CmdId, Frame, TypeId, async_id::AsyncId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::tally::Tally;

/// How long a sender waits for the slowest receiver before it calls the group stalled.
const STALL: Duration = Duration::from_secs(15);

/// The data of cast `seq` from `sender`.
pub fn encode(sender: u32, seq: u64) -> Vec<u8> {
    let len = 16 + (seq.wrapping_mul(37) % 480) as usize;
    let mut out = Vec::with_capacity(22 + len + 8);
    out.extend_from_slice(&sender.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
    out.extend((0..len).map(|i| pattern(sender, seq, i)));
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The `(sender, seq)` of intact cast data; `None` if anything about it is wrong.
pub fn decode(data: &[u8]) -> Option<(u32, u64)> {
    let (body, sum) = data.split_at_checked(data.len().checked_sub(8)?)?;
    if checksum(body).to_le_bytes() != sum || body.len() < 14 {
        return None;
    }
    let sender = u32::from_le_bytes(body[..4].try_into().ok()?);
    let seq = u64::from_le_bytes(body[4..12].try_into().ok()?);
    let len = usize::from(u16::from_le_bytes(body[12..14].try_into().ok()?));
    let pattern_ok = body.len() == 14 + len
        && body[14..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern(sender, seq, i));
    pattern_ok.then_some((sender, seq))
}

fn pattern(sender: u32, seq: u64, i: usize) -> u8 {
    (seq as u8)
        .wrapping_mul(31)
        .wrapping_add(i as u8)
        .wrapping_add(sender as u8)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the senders and receivers share: per sender, how far each receiver has got.
pub struct Board {
    /// `progress[sender][receiver]`: the next sequence number the receiver expects.
    progress: Vec<Vec<AtomicU64>>,
    /// `sent[sender]`: casts sent so far.
    sent: Vec<AtomicU64>,
    moved: Notify,
}

impl Board {
    /// A board for `senders` senders and `receivers` receivers.
    pub fn new(senders: usize, receivers: usize) -> Self {
        Self {
            progress: (0..senders)
                .map(|_| (0..receivers).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            sent: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            moved: Notify::new(),
        }
    }

    fn slowest(&self, sender: usize) -> u64 {
        self.progress[sender]
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// True once every receiver has every cast sent so far.
    pub fn drained(&self) -> bool {
        (0..self.sent.len()).all(|s| self.slowest(s) >= self.sent[s].load(Ordering::Acquire))
    }

    /// Casts sent so far, per sender.
    pub fn sent(&self) -> Vec<u64> {
        self.sent
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .collect()
    }
}

/// What every sender and receiver of one soak shares.
pub struct Group {
    /// Who has got how far.
    pub board: Board,
    /// Casts a sender may be ahead of its slowest receiver.
    pub window: u64,
    /// The least time between two casts of one sender.
    pub pace: Duration,
    /// Cancelled when the soak's time is up.
    pub stop: CancellationToken,
    /// Where outcomes are counted.
    pub tally: Arc<Tally>,
}

/// Casts from sender `me` through `sink` to the `cast` command until the group stops, at
/// most a window ahead of the slowest receiver and at most one per pace.
pub async fn send(me: usize, mut sink: WriteHalf, cast: CmdId, group: Arc<Group>) {
    let Group {
        board,
        window,
        pace,
        stop,
        tally,
    } = &*group;
    let (window, pace) = (*window, *pace);
    let mut tick = tokio::time::interval(pace);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sender = u32::try_from(me).unwrap_or(u32::MAX);
    let mut seq = 0u64;
    'cast: while !stop.is_cancelled() {
        let waited = Instant::now();
        while seq >= board.slowest(me) + window {
            if stop.is_cancelled() {
                break 'cast;
            }
            if waited.elapsed() > STALL {
                tally.unexpected("casts: a receiver fell 15 s behind; its sender gave up");
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), board.moved.notified()).await;
        }
        tokio::select! {
            () = stop.cancelled() => break 'cast,
            _ = tick.tick() => {}
        }
        let frame = Frame::new(TypeId::BYTES, cast, BranchId(0), encode(sender, seq));
        // Counted as sent before it is written: a receiver that finds the board drained
        // after the stop leaves, and a cast written but not yet counted would arrive after
        // it left and count as lost.
        seq += 1;
        board.sent[me].store(seq, Ordering::Release);
        if let Err(e) = sink.send(frame).await {
            tally.unexpected(&format!("casts: a sender's connection failed: {e}"));
            return;
        }
    }
    // The connection stays open until every receiver has every cast sent (or the stall time
    // passes): closing it with the host's answers unread makes the kernel reset it, and a
    // reset may discard casts the host has received but not read yet, which would count as
    // lost although the host never had them.
    let until = Instant::now() + STALL;
    while !board.drained() && Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(100), board.moved.notified()).await;
    }
    drop(sink);
}

/// What one receiver saw.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Casts received once, intact.
    pub delivered: u64,
    /// Casts received again.
    pub duplicates: u64,
    /// Casts that arrived other than next in their sender's order.
    pub out_of_order: u64,
    /// Payloads that failed the check.
    pub corrupt: u64,
    /// Per sender, which sequence numbers arrived.
    pub got: Vec<Vec<bool>>,
}

impl Seen {
    /// Casts sent (per sender, `sent`) that never arrived here.
    pub fn lost(&self, sent: &[u64]) -> u64 {
        sent.iter()
            .zip(&self.got)
            .map(|(&n, got)| {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                let arrived = got.iter().take(n).filter(|&&g| g).count();
                (n - arrived) as u64
            })
            .sum()
    }

    /// Applies one received cast payload; returns the sender's next expected sequence
    /// number when it moved.
    fn apply(&mut self, data: &[u8], next: &mut [u64]) -> Option<usize> {
        let Some((sender, seq)) = decode(data).filter(|(s, _)| (*s as usize) < next.len()) else {
            self.corrupt += 1;
            return None;
        };
        let (s, idx) = (sender as usize, usize::try_from(seq).ok()?);
        let got = &mut self.got[s];
        if got.len() <= idx {
            got.resize(idx + 1, false);
        }
        if std::mem::replace(&mut got[idx], true) {
            self.duplicates += 1;
            return None;
        }
        self.delivered += 1;
        if seq != next[s] {
            self.out_of_order += 1;
        }
        next[s] = next[s].max(seq + 1);
        Some(s)
    }
}

/// Receiver `me` checks every cast until the group stops, then until the board is drained
/// (or nothing arrives for a few seconds).
pub async fn receive(me: usize, mut session: Client, group: Arc<Group>) -> Seen {
    let Group {
        board, stop, tally, ..
    } = &*group;
    let senders = board.sent.len();
    let mut seen = Seen {
        got: vec![Vec::new(); senders],
        ..Seen::default()
    };
    let mut next = vec![0u64; senders];
    session.set_read_timeout(None);
    loop {
        let wait = if stop.is_cancelled() {
            if board.drained() {
                break;
            }
            Duration::from_secs(5)
        } else {
            Duration::from_millis(500)
        };
        let frame = match tokio::time::timeout(wait, session.recv()).await {
            Err(_) if stop.is_cancelled() => break,
            Err(_) => continue,
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) | Ok(Err(_)) => {
                tally.unexpected("casts: the host closed a receiver's session");
                break;
            }
        };
        if frame.cmd_id != AsyncId::CAST.cmd_id() || frame.type_id != TypeId::BYTES {
            continue;
        }
        if let Some(s) = seen.apply(&frame.payload, &mut next) {
            board.progress[s][me].store(next[s], Ordering::Release);
            board.moved.notify_waiters();
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_damage_is_seen() {
        for seq in [0, 1, 12, 1_000_000] {
            let data = encode(3, seq);
            assert_eq!(decode(&data), Some((3, seq)));
        }
        let data = encode(1, 7);
        let mut bad = data.clone();
        bad[20] ^= 0x40;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&data[..data.len() - 1]), None);
        assert_eq!(decode(&[]), None);
        assert_ne!(encode(1, 7).len(), encode(1, 8).len());
    }

    #[test]
    fn receiver_counts_duplicates_gaps_and_loss() {
        let mut seen = Seen {
            got: vec![Vec::new(); 2],
            ..Seen::default()
        };
        let mut next = vec![0, 0];
        for (sender, seq) in [(0, 0), (0, 1), (1, 0), (0, 1), (0, 3), (0, 2)] {
            seen.apply(&encode(sender, seq), &mut next);
        }
        seen.apply(b"not a cast at all", &mut next);
        seen.apply(&encode(9, 0), &mut next);
        assert_eq!(seen.delivered, 5);
        assert_eq!(seen.duplicates, 1);
        assert_eq!(seen.out_of_order, 2, "3 before 2, then 2 late");
        assert_eq!(seen.corrupt, 2);
        assert_eq!(next, [4, 1]);
        assert_eq!(seen.lost(&[5, 2]), 2, "sender 0's 4 and sender 1's 1");
    }
}
