//! The soak's counters: every action a soak client takes ends in one outcome, counted by
//! kind and class — done as intended, an error the host was meant to give (a wrong password
//! refused, a malformed header closed), or an unexpected error.
//!
//! Invariant: a kind's text names what happened, never a session id or a number that
//! changes per event, so the counters stay a short table however long the soak runs.

use std::{collections::BTreeMap, sync::Mutex};

/// How an outcome counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The action did what it should.
    Done,
    /// The host refused or closed, as it must for this action.
    Expected,
    /// Something went wrong.
    Unexpected,
}

impl Class {
    /// The class as the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Expected => "expected error",
            Self::Unexpected => "UNEXPECTED",
        }
    }
}

/// Outcome counts, shared by every soak client.
#[derive(Debug, Default)]
pub struct Tally {
    counts: Mutex<BTreeMap<(Class, String), u64>>,
}

impl Tally {
    fn add(&self, class: Class, kind: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((class, kind.to_owned())).or_default() += 1;
    }

    /// Counts an action that did what it should.
    pub fn ok(&self, kind: &str) {
        self.add(Class::Done, kind);
    }

    /// Counts an error the host was meant to give.
    pub fn expected(&self, kind: &str) {
        self.add(Class::Expected, kind);
    }

    /// Counts an unexpected error; the text is cut to one line of at most 120 characters
    /// so that an error carrying details still falls into a few kinds.
    pub fn unexpected(&self, kind: &str) {
        let line: String = kind
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(120)
            .collect();
        self.add(Class::Unexpected, &line);
    }

    /// Every count, sorted by class, then kind.
    pub fn snapshot(&self) -> Vec<(Class, String, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|((c, k), n)| (*c, k.clone(), *n))
            .collect()
    }

    /// The total of one class.
    pub fn total(&self, class: Class) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(c, _, _)| *c == class)
            .map(|(_, _, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_kind() {
        let t = Tally::default();
        t.ok("login");
        t.ok("login");
        t.expected("wrong password refused");
        t.unexpected("my_info failed: connection reset\nmore detail");
        let snap = t.snapshot();
        assert_eq!(snap[0], (Class::Done, "login".to_owned(), 2));
        assert_eq!(snap[2].1, "my_info failed: connection reset");
        assert_eq!(t.total(Class::Unexpected), 1);
        assert_eq!(t.total(Class::Expected), 1);
    }
}
