//! The pure core of the bus: which sessions exist, who is logged in where, and so who should
//! receive an event. No tokio, no IO: every method returns recipients and the caller delivers.
//!
//! Invariant: a session id appears at most once, and `by_user` always mirrors the `user`
//! field of every entry.

use std::collections::{HashMap, HashSet};

use mrci_proto::{SessionId, UserId};

/// What the bus knows about one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The logged-in user, if any.
    pub user: Option<UserId>,
    /// Registration order, so broadcasts reach sessions in a stable order.
    pub seq: u64,
}

/// Session registry and user index.
#[derive(Debug, Default)]
pub struct BusState {
    sessions: HashMap<SessionId, Entry>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    next_seq: u64,
}

impl BusState {
    /// Adds a ready session. Returns false if the id is already registered.
    pub fn register(&mut self, sid: SessionId) -> bool {
        if self.sessions.contains_key(&sid) {
            return false;
        }
        self.next_seq += 1;
        self.sessions.insert(
            sid,
            Entry {
                user: None,
                seq: self.next_seq,
            },
        );
        true
    }

    /// Removes a session and its user index entry. Returns the entry it had.
    pub fn unregister(&mut self, sid: &SessionId) -> Option<Entry> {
        let entry = self.sessions.remove(sid)?;
        if let Some(uid) = entry.user {
            self.unindex(uid, sid);
        }
        Some(entry)
    }

    /// Records that `sid` is now logged in as `user` (or logged out with `None`).
    pub fn set_user(&mut self, sid: &SessionId, user: Option<UserId>) {
        let Some(entry) = self.sessions.get_mut(sid) else {
            return;
        };
        let old = std::mem::replace(&mut entry.user, user);
        if let Some(uid) = old {
            self.unindex(uid, sid);
        }
        if let Some(uid) = user {
            self.by_user.entry(uid).or_default().insert(*sid);
        }
    }

    fn unindex(&mut self, uid: UserId, sid: &SessionId) {
        if let Some(set) = self.by_user.get_mut(&uid) {
            set.remove(sid);
            if set.is_empty() {
                self.by_user.remove(&uid);
            }
        }
    }

    /// Sessions logged in as `uid`, in registration order.
    pub fn sessions_of(&self, uid: &UserId) -> Vec<SessionId> {
        let mut out: Vec<_> = self
            .by_user
            .get(uid)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        out.sort_by_key(|sid| self.sessions.get(sid).map_or(0, |e| e.seq));
        out
    }

    /// Every session except `except`, in registration order.
    pub fn all_except(&self, except: Option<&SessionId>) -> Vec<SessionId> {
        let mut out: Vec<_> = self
            .sessions
            .iter()
            .filter(|(sid, _)| Some(*sid) != except)
            .map(|(s, e)| (*s, e.seq))
            .collect();
        out.sort_by_key(|(_, seq)| *seq);
        out.into_iter().map(|(sid, _)| sid).collect()
    }

    /// True if `sid` is registered.
    pub fn contains(&self, sid: &SessionId) -> bool {
        self.sessions.contains_key(sid)
    }

    /// Number of registered sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is registered.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Number of sessions logged in as anyone.
    pub fn logged_in(&self) -> usize {
        self.by_user.values().map(HashSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> SessionId {
        SessionId([n; 28])
    }

    fn uid(n: u8) -> UserId {
        UserId([n; 32])
    }

    #[test]
    fn user_index_follows_login_logout_and_unregister() {
        let mut bus = BusState::default();
        assert!(bus.register(sid(1)));
        assert!(!bus.register(sid(1)), "ids are unique");
        bus.register(sid(2));
        bus.register(sid(3));
        bus.set_user(&sid(1), Some(uid(9)));
        bus.set_user(&sid(3), Some(uid(9)));
        assert_eq!(bus.sessions_of(&uid(9)), [sid(1), sid(3)]);
        bus.set_user(&sid(1), Some(uid(8)));
        assert_eq!(bus.sessions_of(&uid(9)), [sid(3)]);
        bus.unregister(&sid(3));
        assert!(bus.sessions_of(&uid(9)).is_empty());
        assert_eq!(bus.logged_in(), 1);
        bus.set_user(&sid(1), None);
        assert_eq!(bus.logged_in(), 0);
        assert_eq!(bus.all_except(Some(&sid(2))), [sid(1)]);
    }
}
