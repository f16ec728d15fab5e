//! The host's recent warnings and errors for `ls_dbg` (COMMANDS.md §3.8): a bounded,
//! process-wide store fed by a `tracing` layer ([`layer`]) that the program installs next
//! to its log output.
//!
//! Invariant: the store never holds more than [`CAPACITY`] entries; the oldest go first.

use std::{
    collections::VecDeque,
    fmt::Write as _,
    sync::{Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{Layer, layer::Context};

/// Entries kept.
pub const CAPACITY: usize = 1000;

/// One warning or error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// A number that grows with every entry (deletion is by number).
    pub seq: u64,
    /// Unix seconds.
    pub time_stamp: i64,
    /// `WARN` or `ERROR`.
    pub level: &'static str,
    /// The message and its fields.
    pub text: String,
}

#[derive(Default)]
struct Store {
    entries: VecDeque<Entry>,
    next: u64,
}

static STORE: Mutex<Store> = Mutex::new(Store {
    entries: VecDeque::new(),
    next: 0,
});

fn store() -> MutexGuard<'static, Store> {
    STORE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The entries kept, oldest first.
pub fn entries() -> Vec<Entry> {
    store().entries.iter().cloned().collect()
}

/// Removes the entries numbered in `seqs`; returns how many were removed.
pub fn remove(seqs: &[u64]) -> usize {
    let mut store = store();
    let before = store.entries.len();
    store.entries.retain(|e| !seqs.contains(&e.seq));
    before - store.entries.len()
}

fn push(level: &'static str, text: String) {
    let time_stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut store = store();
    let seq = store.next;
    store.next += 1;
    if store.entries.len() == CAPACITY {
        store.entries.pop_front();
    }
    store.entries.push_back(Entry {
        seq,
        time_stamp,
        level,
        text,
    });
}

/// The layer that feeds the store with every WARN and ERROR event.
pub fn layer<S: Subscriber>() -> impl Layer<S> {
    DebugLayer
}

struct DebugLayer;

impl<S: Subscriber> Layer<S> for DebugLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            _ => return,
        };
        let mut text = Text::default();
        event.record(&mut text);
        push(level, text.0);
    }
}

/// The message first, then `field=value` pairs.
#[derive(Default)]
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{fields}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn warnings_are_kept_and_bounded() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            tracing::warn!(ip = "10.0.0.1", "debug-log-test warning");
            for n in 0..CAPACITY {
                tracing::error!(n, "debug-log-test filler");
            }
        });
        let all = entries();
        assert!(all.len() <= CAPACITY);
        let last = all.last().unwrap();
        assert_eq!(last.level, "ERROR");
        assert!(
            last.text.starts_with("debug-log-test filler n="),
            "{}",
            last.text
        );
        assert!(!all.iter().any(|e| e.text.contains("not kept")));
        assert_eq!(remove(&[last.seq]), 1);
        assert_eq!(remove(&[last.seq]), 0);
    }
}
