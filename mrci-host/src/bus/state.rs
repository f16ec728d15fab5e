//! The pure core of the bus: which sessions exist, who is logged in where, and so who should
//! receive an event. No tokio, no IO: every method returns recipients and the caller delivers.
//!
//! Invariant: a session id appears at most once, and `by_user`, `by_sub` and `by_channel`
//! always mirror the `user`, `open` and `channels` fields of every entry
//! ([`BusState::is_consistent`] checks it).

use std::collections::{HashMap, HashSet};

use mrci_proto::{SessionId, SubChKey, SubChList, UserId};

/// What the bus knows about one session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The logged-in user, if any.
    pub user: Option<UserId>,
    /// Registration order, so broadcasts reach sessions in a stable order.
    pub seq: u64,
    /// Open sub-channels (receiving).
    pub open: SubChList,
    /// Whether the session takes limited casts (active update).
    pub active: bool,
    /// Channels the user is a full member of.
    pub channels: Vec<u64>,
}

/// Which open sub-channels of a channel an event also reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubReach {
    /// None: members and the named user only.
    None,
    /// Sessions with this sub-channel open.
    One(u8),
    /// Sessions with any sub-channel of the channel open.
    All,
}

/// Session registry and user index.
#[derive(Debug, Default)]
pub struct BusState {
    sessions: HashMap<SessionId, Entry>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    by_sub: HashMap<SubChKey, Vec<SessionId>>,
    by_channel: HashMap<u64, HashSet<SessionId>>,
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
                seq: self.next_seq,
                ..Entry::default()
            },
        );
        true
    }

    /// Removes a session and its user index entry. Returns the entry it had.
    pub fn unregister(&mut self, sid: &SessionId) -> Option<Entry> {
        self.set_open(sid, SubChList::default(), false);
        self.set_channels(sid, &[]);
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

    /// Replaces the open list and active flag of `sid`.
    pub fn set_open(&mut self, sid: &SessionId, open: SubChList, active: bool) {
        let Some(entry) = self.sessions.get_mut(sid) else {
            return;
        };
        let old = std::mem::replace(&mut entry.open, open);
        entry.active = active;
        for key in old.iter().filter(|k| !open.contains(*k)) {
            if let Some(list) = self.by_sub.get_mut(&key) {
                list.retain(|s| s != sid);
                if list.is_empty() {
                    self.by_sub.remove(&key);
                }
            }
        }
        for key in open.iter().filter(|k| !old.contains(*k)) {
            self.by_sub.entry(key).or_default().push(*sid);
        }
    }

    /// Replaces the channel memberships of `sid`.
    pub fn set_channels(&mut self, sid: &SessionId, channels: &[u64]) {
        let Some(entry) = self.sessions.get_mut(sid) else {
            return;
        };
        let old = std::mem::replace(&mut entry.channels, channels.to_vec());
        for ch in old.iter().filter(|c| !channels.contains(c)) {
            if let Some(set) = self.by_channel.get_mut(ch) {
                set.remove(sid);
                if set.is_empty() {
                    self.by_channel.remove(ch);
                }
            }
        }
        for ch in channels {
            self.by_channel.entry(*ch).or_default().insert(*sid);
        }
    }

    /// Who receives a cast with this header: every other session with one of its
    /// non-empty slots open (only active ones for a limited cast), each once, in
    /// registration order (PROTOCOL.md §9 item 33).
    pub fn cast_targets(
        &self,
        origin: &SessionId,
        header: &SubChList,
        limited: bool,
    ) -> Vec<SessionId> {
        let mut out: Vec<(u64, SessionId)> = Vec::new();
        for key in header.iter() {
            for sid in self.by_sub.get(&key).into_iter().flatten() {
                if sid == origin {
                    continue;
                }
                if let Some(entry) = self.sessions.get(sid)
                    && (!limited || entry.active)
                {
                    out.push((entry.seq, *sid));
                }
            }
        }
        // A session with several of the header's sub-channels open appears once per match;
        // sorting by registration order puts its copies side by side.
        out.sort_unstable_by_key(|(seq, _)| *seq);
        out.dedup_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, sid)| sid).collect()
    }

    /// Who a channel event reaches: the channel's full members, the sessions of `user`, and
    /// the sessions that have sub-channels of it open as `subs` says (PROTOCOL.md §4.3: only
    /// deletions, sub-channel removals and level or read-only changes concern sessions that
    /// have a public sub-channel open without being members).
    pub fn channel_targets(
        &self,
        ch: u64,
        user: Option<&UserId>,
        subs: SubReach,
    ) -> Vec<SessionId> {
        let mut set: HashSet<SessionId> = self
            .by_channel
            .get(&ch)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        if let Some(uid) = user {
            set.extend(self.by_user.get(uid).into_iter().flatten().copied());
        }
        for (key, sids) in &self.by_sub {
            let reached = match subs {
                SubReach::None => false,
                SubReach::One(sub) => key.ch_id == ch && key.sub_id == sub,
                SubReach::All => key.ch_id == ch,
            };
            if reached {
                set.extend(sids.iter().copied());
            }
        }
        let mut out: Vec<(u64, SessionId)> = set
            .into_iter()
            .filter_map(|sid| self.sessions.get(&sid).map(|e| (e.seq, sid)))
            .collect();
        out.sort_unstable_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, sid)| sid).collect()
    }

    /// The sessions of `user` and of every full member of the channels `chs`, each once, in
    /// registration order.
    pub fn members_targets(&self, chs: &[u64], user: &UserId) -> Vec<SessionId> {
        let mut set: HashSet<SessionId> = self
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for ch in chs {
            set.extend(self.by_channel.get(ch).into_iter().flatten().copied());
        }
        let mut out: Vec<(u64, SessionId)> = set
            .into_iter()
            .filter_map(|sid| self.sessions.get(&sid).map(|e| (e.seq, sid)))
            .collect();
        out.sort_unstable_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, sid)| sid).collect()
    }

    /// The entry of `sid`, if registered.
    pub fn entry(&self, sid: &SessionId) -> Option<&Entry> {
        self.sessions.get(sid)
    }

    /// True when every index mirrors the entries exactly.
    pub fn is_consistent(&self) -> bool {
        let users_ok = self.sessions.iter().all(|(sid, e)| {
            e.user
                .is_none_or(|u| self.by_user.get(&u).is_some_and(|s| s.contains(sid)))
        }) && self.by_user.iter().all(|(u, sids)| {
            !sids.is_empty()
                && sids
                    .iter()
                    .all(|s| self.sessions.get(s).is_some_and(|e| e.user == Some(*u)))
        });
        let subs_ok = self.sessions.iter().all(|(sid, e)| {
            e.open.iter().all(|k| {
                self.by_sub
                    .get(&k)
                    .is_some_and(|v| v.iter().filter(|s| *s == sid).count() == 1)
            })
        }) && self.by_sub.iter().all(|(k, sids)| {
            !sids.is_empty()
                && sids
                    .iter()
                    .all(|s| self.sessions.get(s).is_some_and(|e| e.open.contains(*k)))
        });
        let channels_ok = self.sessions.iter().all(|(sid, e)| {
            e.channels
                .iter()
                .all(|c| self.by_channel.get(c).is_some_and(|s| s.contains(sid)))
        }) && self.by_channel.iter().all(|(c, sids)| {
            !sids.is_empty()
                && sids
                    .iter()
                    .all(|s| self.sessions.get(s).is_some_and(|e| e.channels.contains(c)))
        });
        users_ok && subs_ok && channels_ok
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

    #[derive(Clone, Debug)]
    enum Op {
        Register(u8),
        Unregister(u8),
        Login(u8, u8),
        Open(u8, Vec<(u64, u8)>, bool),
        Join(u8, Vec<u64>),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let keys = proptest::collection::vec((1..4u64, 0..3u8), 0..7);
        prop_oneof![
            (0..6u8).prop_map(Op::Register),
            (0..6u8).prop_map(Op::Unregister),
            (0..6u8, 0..3u8).prop_map(|(s, u)| Op::Login(s, u)),
            (0..6u8, keys, any::<bool>()).prop_map(|(s, k, a)| Op::Open(s, k, a)),
            (0..6u8, proptest::collection::vec(1..4u64, 0..3)).prop_map(|(s, c)| Op::Join(s, c)),
        ]
    }

    proptest::proptest! {
        /// After any sequence of registrations, logins, opens, closes and leaves, the
        /// indexes mirror the entries and cast routing equals the brute-force rule.
        #[test]
        fn indexes_and_routing_stay_exact(ops in proptest::collection::vec(op(), 0..60)) {
            let mut bus = BusState::default();
            for op in ops {
                match op {
                    Op::Register(s) => { bus.register(sid(s)); }
                    Op::Unregister(s) => { bus.unregister(&sid(s)); }
                    Op::Login(s, u) => bus.set_user(&sid(s), Some(uid(u))),
                    Op::Open(s, keys, active) => {
                        let mut list = SubChList::default();
                        for (ch_id, sub_id) in keys {
                            list.insert(SubChKey { ch_id, sub_id });
                        }
                        bus.set_open(&sid(s), list, active);
                    }
                    Op::Join(s, chs) => {
                        let mut chs = chs;
                        chs.dedup();
                        bus.set_channels(&sid(s), &chs);
                    }
                }
                proptest::prop_assert!(bus.is_consistent());
            }
            for origin in 0..6u8 {
                let Some(header) = bus.entry(&sid(origin)).map(|e| e.open) else { continue };
                for limited in [false, true] {
                    let mut expected: Vec<(u64, SessionId)> = bus
                        .sessions
                        .iter()
                        .filter(|(s, e)| {
                            **s != sid(origin)
                                && e.open.intersects(&header)
                                && (!limited || e.active)
                        })
                        .map(|(s, e)| (e.seq, *s))
                        .collect();
                    expected.sort_unstable();
                    let expected: Vec<SessionId> = expected.into_iter().map(|(_, s)| s).collect();
                    proptest::prop_assert_eq!(bus.cast_targets(&sid(origin), &header, limited), expected);
                }
            }
        }
    }
}
