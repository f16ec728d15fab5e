//! The byte budget of the queues between a session and its module processes (issue 12): a
//! frame travels with a [`Held`] share of its direction's budget, taken before its bytes are
//! read or queued and given back when it is written out or consumed.
//!
//! Invariant: the bytes of the frames held in one budget never exceed its size, except that a
//! single frame larger than the whole budget is admitted alone (it takes all of it), so a
//! budget smaller than the payload limit cannot wedge a module.

use std::sync::Arc;

use mrci_proto::IpcFrame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A frame's share of a budget; dropping it gives the bytes back.
pub(crate) type Held = OwnedSemaphorePermit;

/// One direction's byte budget, shared by every process of a runner.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    sem: Arc<Semaphore>,
    total: u32,
}

impl Budget {
    /// A budget of `bytes` (at least 1, at most `u32::MAX`).
    pub(crate) fn new(bytes: usize) -> Self {
        let total = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
        Self {
            sem: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// What a frame with `payload_len` payload bytes costs: its wire size, at most the
    /// whole budget.
    fn cost(&self, payload_len: usize) -> u32 {
        let wire = payload_len.saturating_add(IpcFrame::HEADER_LEN);
        u32::try_from(wire).unwrap_or(u32::MAX).min(self.total)
    }

    /// Waits until the bytes of a frame fit. Cancel-safe.
    pub(crate) async fn acquire(&self, payload_len: usize) -> Held {
        Arc::clone(&self.sem)
            .acquire_many_owned(self.cost(payload_len))
            .await
            .expect("a budget's semaphore is never closed")
    }

    /// Takes the bytes of a frame if they fit now.
    pub(crate) fn try_acquire(&self, payload_len: usize) -> Option<Held> {
        Arc::clone(&self.sem)
            .try_acquire_many_owned(self.cost(payload_len))
            .ok()
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.total as usize - self.sem.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_admitted_while_they_fit_and_a_huge_one_alone() {
        let budget = Budget::new(100);
        let a = budget.try_acquire(46).unwrap();
        assert_eq!(budget.held(), 50);
        let b = budget.try_acquire(46).unwrap();
        assert!(budget.try_acquire(0).is_none(), "full");
        drop(a);
        assert!(
            budget.try_acquire(1000).is_none(),
            "a huge frame waits for all of it"
        );
        drop(b);
        let huge = budget.try_acquire(1000).unwrap();
        assert_eq!(budget.held(), 100);
        drop(huge);
        assert_eq!(budget.held(), 0);
    }
}
