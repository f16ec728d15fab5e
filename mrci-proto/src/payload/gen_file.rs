//! The GEN_FILE argument frame (PROTOCOL.md §3.4): the TEXT arguments that open a file
//! transfer. Later GEN_FILE frames carry raw file bytes and are not parsed here.

use std::time::{Duration, Instant};

use crate::args::{Args, ArgsBuilder};
use crate::error::Result;
use crate::text;

/// The arguments of a GEN_FILE transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenFileArgs {
    /// `-len`: number of bytes to transfer.
    pub len: Option<u64>,
    /// `-offset`: where reading or writing starts (default 0).
    pub offset: u64,
    /// `-client_file`: the path on the client side (informational for the host).
    pub client_file: Option<String>,
    /// `-remote_file`: the path on the host.
    pub remote_file: Option<String>,
    /// `-single_step`: the receiver acknowledges every data frame.
    pub single_step: bool,
    /// `-to_host`: sent by the host only; the client sends the data.
    pub to_host: bool,
    /// `-from_host`: sent by the host only; the host sends the data.
    pub from_host: bool,
    /// `-truncate`: the receiver truncates the destination file.
    pub truncate: bool,
    /// `-force`: overwrite without asking (meaningful from the client only).
    pub force: bool,
}

impl GenFileArgs {
    /// Parses the UTF-16LE argument text of a GEN_FILE frame.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] if `-len` or `-offset` is not a non-negative integer.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let args = Args::parse(&text::decode(bytes));
        Ok(Self {
            len: args.u64_opt("-len")?,
            offset: args.u64_opt("-offset")?.unwrap_or(0),
            client_file: args.value("-client_file").map(str::to_owned),
            remote_file: args.value("-remote_file").map(str::to_owned),
            single_step: args.has("-single_step"),
            to_host: args.has("-to_host"),
            from_host: args.has("-from_host"),
            truncate: args.has("-truncate"),
            force: args.has("-force"),
        })
    }

    /// The reply of the side that serves a transfer, opening it (PROTOCOL.md §3.4):
    /// `-to_host` (it will receive) or `-from_host` (it will send), the effective length, and
    /// `-single_step` when the client asked for it.
    pub fn reply(to_host: bool, len: u64, single_step: bool) -> Self {
        Self {
            to_host,
            from_host: !to_host,
            len: Some(len),
            single_step,
            ..Self::default()
        }
    }

    /// The argument text, as UTF-16LE bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = ArgsBuilder::new();
        let flags = [
            (self.to_host, "-to_host"),
            (self.from_host, "-from_host"),
            (self.single_step, "-single_step"),
            (self.truncate, "-truncate"),
            (self.force, "-force"),
        ];
        for (on, name) in flags {
            if on {
                b = b.flag(name);
            }
        }
        if let Some(len) = self.len {
            b = b.arg("-len", len);
        }
        if self.offset != 0 {
            b = b.arg("-offset", self.offset);
        }
        if let Some(path) = &self.client_file {
            b = b.arg("-client_file", path);
        }
        if let Some(path) = &self.remote_file {
            b = b.arg("-remote_file", path);
        }
        text::encode(&b.build())
    }
}

/// The chunk size the host and module helpers send file data in (the wire allows up to
/// 2^24 − 1 bytes a frame).
pub const GEN_FILE_CHUNK: usize = 1 << 20;

/// Least time between two progress texts of a transfer (the last one always goes).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// When the sending side of a GEN_FILE transfer owes its peer a progress TEXT (`done/len`,
/// PROTOCOL.md §3.4): at most every [`PROGRESS_EVERY`], and always at the end. Time is
/// passed in; nothing here reads a clock.
#[derive(Clone, Debug)]
pub struct GenFileProgress {
    len: u64,
    last: Option<Instant>,
}

impl GenFileProgress {
    /// Progress of a transfer of `len` bytes.
    pub fn new(len: u64) -> Self {
        Self { len, last: None }
    }

    /// The text to send after `done` bytes at `now`, if one is due.
    pub fn tick(&mut self, done: u64, now: Instant) -> Option<String> {
        let due = done >= self.len || self.last.is_none_or(|t| now - t >= PROGRESS_EVERY);
        due.then(|| {
            self.last = Some(now);
            format!("{done}/{}\n", self.len)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_rate_limited_but_the_last_always_goes() {
        let t0 = Instant::now();
        let mut p = GenFileProgress::new(100);
        assert_eq!(p.tick(10, t0).as_deref(), Some("10/100\n"));
        assert_eq!(p.tick(20, t0 + Duration::from_millis(100)), None);
        assert_eq!(
            p.tick(30, t0 + Duration::from_millis(260)).as_deref(),
            Some("30/100\n")
        );
        assert_eq!(
            p.tick(100, t0 + Duration::from_millis(261)).as_deref(),
            Some("100/100\n")
        );
    }

    #[test]
    fn download_reply_round_trips() {
        let args = GenFileArgs {
            from_host: true,
            len: Some(1024),
            ..GenFileArgs::default()
        };
        let bytes = args.to_bytes();
        assert_eq!(text::decode(&bytes), "-from_host -len 1024");
        assert_eq!(GenFileArgs::parse(&bytes).unwrap(), args);
    }

    #[test]
    fn client_request_with_quoted_path() {
        let bytes = text::encode("-remote_file \"my dir/a b.txt\" -len 5 -single_step -force");
        let args = GenFileArgs::parse(&bytes).unwrap();
        assert_eq!(args.remote_file.as_deref(), Some("my dir/a b.txt"));
        assert_eq!(args.len, Some(5));
        assert!(args.single_step && args.force && !args.to_host);
        assert!(GenFileArgs::parse(&text::encode("-len many")).is_err());
    }
}
