//! Who may connect (PROTOCOL.md §1.2, hardened): the connection limit, the caps on connections
//! that have not logged in — per address and host-wide — and which connection makes room when
//! a limit is reached.
//!
//! Policy, in the order it is applied to a new connection from address A:
//! 1. If A already has `max_unauthenticated_per_address` connections that are not logged in,
//!    the new one is refused: a flood from one address never costs anyone else a slot.
//! 2. If the host is at `max_sessions` connections, or at `max_unauthenticated` connections
//!    that are not logged in, one connection makes room: the oldest still in its handshake;
//!    failing that, the oldest not-logged-in session of the address with the most of them.
//!    A logged-in session is never chosen; if every connection is logged in, the new one is
//!    refused.
//!
//! A connection is *not logged in* from accept until its login, and again after a logout.
//!
//! [`AdmissionState`] is the pure core (no clock, no IO: age is the admission order);
//! [`Admission`] wraps it in a mutex, cancels the connections it evicts, and keeps the counts
//! that operators and tests watch.
//!
//! Invariant: every admitted connection holds exactly one [`Ticket`] and its entry lives
//! exactly as long as the ticket, so the counts cannot drift from the connections.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Between accept and the end of the handshake.
    Handshake,
    /// A session that is not logged in.
    Ready,
    /// A logged-in session.
    LoggedIn,
}

/// The admission limits (from `[limits]` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Connections at once, handshakes included.
    pub(crate) max_sessions: usize,
    /// Connections not logged in, host-wide.
    pub(crate) max_unauthenticated: usize,
    /// Connections not logged in, per address.
    pub(crate) max_unauthenticated_per_address: usize,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its address has too many connections that are not logged in.
    AddressFull,
    /// Every connection is logged in and the host is at a limit.
    HostFull,
}

impl Refused {
    /// The log text.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::AddressFull => "too many connections not logged in from this address",
            Self::HostFull => "maximum number of sessions reached",
        }
    }
}

#[derive(Debug)]
struct Entry {
    ip: IpAddr,
    stage: Stage,
    /// Admission order: lower is older.
    seq: u64,
}

/// The pure admission core; connection ids are its admission sequence numbers.
#[derive(Debug, Default)]
pub(crate) struct AdmissionState {
    entries: HashMap<u64, Entry>,
    unauth_by_ip: HashMap<IpAddr, usize>,
    unauth: usize,
    next: u64,
}

impl AdmissionState {
    /// Decides on a connection from `ip`: its id, and the id of the connection that must make
    /// room for it (to be cancelled and then [`AdmissionState::remove`]d by the caller).
    pub(crate) fn admit(
        &mut self,
        ip: IpAddr,
        limits: &Limits,
    ) -> Result<(u64, Option<u64>), Refused> {
        if self.unauth_by_ip.get(&ip).copied().unwrap_or(0)
            >= limits.max_unauthenticated_per_address
        {
            return Err(Refused::AddressFull);
        }
        let full =
            self.entries.len() >= limits.max_sessions || self.unauth >= limits.max_unauthenticated;
        let victim = if full {
            Some(self.victim().ok_or(Refused::HostFull)?)
        } else {
            None
        };
        if let Some(victim) = victim {
            self.remove(victim);
        }
        let id = self.next;
        self.next += 1;
        self.entries.insert(
            id,
            Entry {
                ip,
                stage: Stage::Handshake,
                seq: id,
            },
        );
        self.count_unauth(ip, 1);
        Ok((id, victim))
    }

    /// The connection that makes room: the oldest handshake, else the oldest not-logged-in
    /// session of the address with the most of them.
    fn victim(&self) -> Option<u64> {
        let oldest = |stage: Stage, ip: Option<IpAddr>| {
            self.entries
                .iter()
                .filter(|(_, e)| e.stage == stage && ip.is_none_or(|ip| e.ip == ip))
                .min_by_key(|(_, e)| e.seq)
                .map(|(id, _)| *id)
        };
        if let Some(id) = oldest(Stage::Handshake, None) {
            return Some(id);
        }
        let heaviest = self
            .entries
            .values()
            .filter(|e| e.stage == Stage::Ready)
            .map(|e| e.ip)
            .max_by_key(|ip| (self.unauth_by_ip.get(ip).copied().unwrap_or(0), *ip))?;
        oldest(Stage::Ready, Some(heaviest))
    }

    /// Moves a connection to `stage`.
    pub(crate) fn set_stage(&mut self, id: u64, stage: Stage) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let (ip, was) = (entry.ip, entry.stage);
        entry.stage = stage;
        match (was == Stage::LoggedIn, stage == Stage::LoggedIn) {
            (false, true) => self.count_unauth(ip, -1),
            (true, false) => self.count_unauth(ip, 1),
            _ => {}
        }
    }

    /// Forgets a connection.
    pub(crate) fn remove(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id)
            && entry.stage != Stage::LoggedIn
        {
            self.count_unauth(entry.ip, -1);
        }
    }

    fn count_unauth(&mut self, ip: IpAddr, delta: isize) {
        let n = self.unauth_by_ip.entry(ip).or_insert(0);
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.unauth_by_ip.remove(&ip);
        }
        self.unauth = self.unauth.saturating_add_signed(delta);
    }

    /// Connections at once, handshakes included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Connections not logged in.
    pub(crate) fn unauthenticated(&self) -> usize {
        self.unauth
    }
}

/// The host's admission: the pure state, the cancellation token of each connection, and the
/// connection count (also written to the host's shared-memory segment).
pub(crate) struct Admission {
    state: Mutex<(AdmissionState, HashMap<u64, CancellationToken>)>,
    count: watch::Sender<usize>,
    host_shm: Option<mrci_shm::HostShm>,
}

impl Admission {
    /// An empty admission that mirrors its count into `host_shm`.
    pub(crate) fn new(host_shm: Option<mrci_shm::HostShm>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            count: watch::Sender::new(0),
            host_shm,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (AdmissionState, HashMap<u64, CancellationToken>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip` whose task ends when `cancel` is cancelled; the
    /// connection that made room, if any, is cancelled.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &Limits,
        cancel: CancellationToken,
    ) -> Result<Ticket, Refused> {
        let (id, victim) = {
            let mut guard = self.lock();
            let (state, tokens) = &mut *guard;
            let (id, victim) = state.admit(ip, limits)?;
            tokens.insert(id, cancel);
            // Published under the lock, so counts never arrive out of order.
            self.publish(state.len());
            (id, victim.and_then(|v| tokens.remove(&v)))
        };
        if let Some(token) = victim {
            tracing::info!(%ip, "connection limit reached; the oldest connection not logged in makes room");
            token.cancel();
        }
        Ok(Ticket {
            id,
            admission: Arc::clone(self),
        })
    }

    fn publish(&self, n: usize) {
        self.count.send_replace(n);
        let Some(shm) = &self.host_shm else { return };
        match shm.lock() {
            Ok(mut seg) => seg.set_sessions(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot lock the host shared memory; session count not updated")
            }
        }
    }

    /// Connections at once, handshakes included.
    pub(crate) fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Connections not logged in.
    pub(crate) fn unauthenticated(&self) -> usize {
        self.lock().0.unauthenticated()
    }

    /// Follows [`Admission::count`].
    pub(crate) fn watch(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// The key of the host shared-memory segment, if it exists.
    pub(crate) fn host_shm_key(&self) -> Option<String> {
        self.host_shm.as_ref().map(|s| s.key().to_owned())
    }
}

/// One admitted connection's place; dropping it frees the place.
pub(crate) struct Ticket {
    id: u64,
    admission: Arc<Admission>,
}

impl Ticket {
    /// The connection moved to `stage`.
    pub(crate) fn set_stage(&self, stage: Stage) {
        self.admission.lock().0.set_stage(self.id, stage);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut guard = self.admission.lock();
        let (state, tokens) = &mut *guard;
        state.remove(self.id);
        tokens.remove(&self.id);
        self.admission.publish(state.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    const LIMITS: Limits = Limits {
        max_sessions: 10,
        max_unauthenticated: 6,
        max_unauthenticated_per_address: 3,
    };

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let mut state = AdmissionState::default();
        for _ in 0..3 {
            state
                .admit(ip(2), &LIMITS)
                .expect("under the per-address cap");
        }
        assert_eq!(state.admit(ip(2), &LIMITS), Err(Refused::AddressFull));
        assert!(
            state.admit(ip(1), &LIMITS).is_ok(),
            "another address gets in"
        );
    }

    #[test]
    fn handshakes_make_room_first_then_the_busiest_address() {
        let mut state = AdmissionState::default();
        let limits = Limits {
            max_unauthenticated_per_address: 4,
            ..LIMITS
        };
        let mut ids = Vec::new();
        for last in [2, 2, 2, 2, 3, 4] {
            ids.push(state.admit(ip(last), &limits).expect("admitted").0);
        }
        for id in &ids[1..] {
            state.set_stage(*id, Stage::Ready);
        }
        // The host-wide cap of 6 is reached: the one handshake goes first.
        let (first, victim) = state.admit(ip(5), &limits).expect("room is made");
        assert_eq!(victim, Some(ids[0]));
        state.set_stage(first, Stage::Ready);
        // Next, the oldest session of 127.0.0.2 (three ready, the most of any address).
        let (new, victim) = state.admit(ip(6), &limits).expect("room is made");
        assert_eq!(victim, Some(ids[1]));
        assert_eq!((state.len(), state.unauthenticated()), (6, 6));
        state.set_stage(new, Stage::LoggedIn);
        assert_eq!(state.unauthenticated(), 5);
    }

    #[test]
    fn logged_in_sessions_never_make_room() {
        let mut state = AdmissionState::default();
        let limits = Limits {
            max_sessions: 2,
            ..LIMITS
        };
        for last in [1, 2] {
            let (id, _) = state.admit(ip(last), &limits).expect("admitted");
            state.set_stage(id, Stage::LoggedIn);
        }
        assert_eq!(state.admit(ip(3), &limits), Err(Refused::HostFull));
        assert_eq!(state.unauthenticated(), 0);
    }

    #[test]
    fn logout_counts_against_the_address_again() {
        let mut state = AdmissionState::default();
        let (id, _) = state.admit(ip(2), &LIMITS).expect("admitted");
        state.set_stage(id, Stage::LoggedIn);
        for _ in 0..3 {
            state.admit(ip(2), &LIMITS).expect("under the cap");
        }
        state.set_stage(id, Stage::Ready);
        assert_eq!(state.admit(ip(2), &LIMITS), Err(Refused::AddressFull));
        state.remove(id);
        assert_eq!(state.unauthenticated(), 3);
    }
}
