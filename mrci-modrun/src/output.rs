//! A module's stdout and stderr, logged line by line within bounds (issue 12, PROTOCOL.md §9
//! item 23): each line is cut at [`OutputLimits::line_max`] bytes (the rest is dropped and
//! counted) and lines pass a token bucket per process; lines over the rate are counted, and
//! the count is logged once when lines are logged again or the streams end.
//!
//! Invariant: a process's output costs at most two read buffers and two lines of
//! `line_max` bytes, however long a line is. [`LineSplitter`] and [`TokenBucket`] are pure;
//! time is passed in.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::{info, warn};

/// How long after a process's exit its output is still read (processes that left its group
/// may keep the pipes open).
pub(crate) const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// How much of a module's stdout and stderr reaches the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits {
    /// Longest line logged, in bytes; the rest of a longer line is dropped. Default 4 KiB.
    pub line_max: usize,
    /// Lines per second a process may log in the long run. Default 50.
    pub lines_per_sec: u32,
    /// Lines a process may log in a burst. Default 200.
    pub burst: u32,
}

impl Default for OutputLimits {
    fn default() -> Self {
        Self {
            line_max: 4096,
            lines_per_sec: 50,
            burst: 200,
        }
    }
}

/// What became of a process's stdout and stderr lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputStats {
    /// Lines logged.
    pub logged: u64,
    /// Lines not logged because the process was over its rate.
    pub dropped: u64,
    /// Lines cut at the length cap.
    pub truncated: u64,
    /// Bytes dropped from those lines.
    pub truncated_bytes: u64,
}

/// Splits a byte stream into lines of at most `cap` bytes without ever holding more.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    cap: usize,
    line: Vec<u8>,
    cut: u64,
}

impl LineSplitter {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            line: Vec::with_capacity(cap),
            cut: 0,
        }
    }

    /// Feeds bytes; `emit(line, bytes_cut)` gets every completed line, without its newline.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&[u8], u64)) {
        while !bytes.is_empty() {
            let (piece, rest, done) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = self.cap - self.line.len();
            let keep = piece.len().min(room);
            self.line.extend_from_slice(&piece[..keep]);
            self.cut += (piece.len() - keep) as u64;
            if done {
                emit(&self.line, self.cut);
                self.line.clear();
                self.cut = 0;
            }
            bytes = rest;
        }
    }

    /// Emits an unterminated last line, if any.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&[u8], u64)) {
        if !self.line.is_empty() || self.cut > 0 {
            emit(&self.line, self.cut);
            self.line.clear();
            self.cut = 0;
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `per_sec`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    per_sec: u32,
    burst: u32,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(now: Instant, per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec,
            burst,
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes a token if one is left at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        let refill = elapsed.as_secs_f64() * f64::from(self.per_sec);
        self.tokens = (self.tokens + refill).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Logs a process's stdout and stderr until both end, keeping `stats` current.
pub(crate) async fn log_output(
    out: Option<impl AsyncRead + Unpin>,
    err: Option<impl AsyncRead + Unpin>,
    limits: OutputLimits,
    who: (PathBuf, u32),
    stats: Arc<Mutex<OutputStats>>,
) {
    let mut log = Logger {
        bucket: TokenBucket::new(now(), limits.lines_per_sec, limits.burst),
        suppressed: 0,
        who,
        stats,
    };
    let (mut out_lines, mut err_lines) = (
        LineSplitter::new(limits.line_max),
        LineSplitter::new(limits.line_max),
    );
    let (mut out, mut err) = (out, err);
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    while out.is_some() || err.is_some() {
        tokio::select! {
            n = read(out.as_mut(), &mut out_buf) => match n {
                Some(n) => out_lines.feed(&out_buf[..n], |l, cut| log.line("stdout", l, cut)),
                None => {
                    out_lines.finish(|l, cut| log.line("stdout", l, cut));
                    out = None;
                }
            },
            n = read(err.as_mut(), &mut err_buf) => match n {
                Some(n) => err_lines.feed(&err_buf[..n], |l, cut| log.line("stderr", l, cut)),
                None => {
                    err_lines.finish(|l, cut| log.line("stderr", l, cut));
                    err = None;
                }
            },
        }
    }
    log.flush_suppressed();
}

struct Logger {
    bucket: TokenBucket,
    suppressed: u64,
    who: (PathBuf, u32),
    stats: Arc<Mutex<OutputStats>>,
}

impl Logger {
    fn line(&mut self, what: &str, line: &[u8], cut: u64) {
        let logged = self.bucket.take(now());
        {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            if cut > 0 {
                stats.truncated += 1;
                stats.truncated_bytes += cut;
            }
            if logged {
                stats.logged += 1;
            } else {
                stats.dropped += 1;
            }
        }
        if !logged {
            self.suppressed += 1;
            return;
        }
        self.flush_suppressed();
        let (exe, pid) = (self.who.0.display(), self.who.1);
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if cut > 0 {
            info!(exe = %exe, pid, "module {what}: {text} [{cut} more bytes not logged]");
        } else {
            info!(exe = %exe, pid, "module {what}: {text}");
        }
    }

    fn flush_suppressed(&mut self) {
        if self.suppressed > 0 {
            let (exe, pid, n) = (self.who.0.display(), self.who.1, self.suppressed);
            warn!(exe = %exe, pid, "{n} lines of module output were not logged (over the rate limit)");
            self.suppressed = 0;
        }
    }
}

/// Reads into `buf`; `None` at the end, on an error, or pending forever without a stream.
async fn read(stream: Option<&mut (impl AsyncRead + Unpin)>, buf: &mut [u8]) -> Option<usize> {
    match stream {
        Some(s) => s.read(buf).await.ok().filter(|&n| n > 0),
        None => std::future::pending().await,
    }
}

/// The (pausable) tokio clock as a std instant, for the pure bucket.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(cap: usize, chunks: &[&[u8]]) -> (Vec<(String, u64)>, usize) {
        let mut s = LineSplitter::new(cap);
        let mut lines = Vec::new();
        let mut most = 0;
        for c in chunks {
            s.feed(c, |l, cut| {
                lines.push((String::from_utf8_lossy(l).into(), cut))
            });
            most = most.max(s.line.capacity());
        }
        s.finish(|l, cut| lines.push((String::from_utf8_lossy(l).into(), cut)));
        (lines, most)
    }

    #[test]
    fn lines_are_split_across_chunks_and_cut_at_the_cap() {
        let (lines, _) = split(5, &[b"ab", b"c\nde", b"\n\n0123456789", b"xy\nlast"]);
        let want = [("abc", 0), ("de", 0), ("", 0), ("01234", 7), ("last", 0)];
        let want: Vec<_> = want.iter().map(|(l, c)| ((*l).to_owned(), *c)).collect();
        assert_eq!(lines, want);
    }

    #[test]
    fn a_hundred_mebibyte_line_costs_no_more_than_the_cap() {
        let chunk = vec![b'x'; 1 << 20];
        let chunks: Vec<&[u8]> = std::iter::repeat_n(&chunk[..], 100).collect();
        let (lines, most) = split(4096, &chunks);
        assert_eq!(most, 4096);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0.len(), 4096);
        assert_eq!(lines[0].1, (100 << 20) - 4096);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 50, 200);
        assert_eq!((0..300).filter(|_| bucket.take(t0)).count(), 200);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..300).filter(|_| bucket.take(t1)).count(), 50);
        let t2 = t1 + Duration::from_millis(100);
        assert_eq!((0..300).filter(|_| bucket.take(t2)).count(), 5);
        // A long pause refills only up to the burst.
        let t3 = t2 + Duration::from_secs(3600);
        assert_eq!((0..300).filter(|_| bucket.take(t3)).count(), 200);
    }
}
