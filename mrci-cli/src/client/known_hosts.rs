//! The known-hosts file: one pinned certificate fingerprint per `host:port`, in the spirit of
//! ssh's `known_hosts`.
//!
//! Each line is `HOST:PORT SHA256-FINGERPRINT`; blank lines and lines starting with `#` are
//! ignored. The fingerprint is the SHA-256 digest of the certificate's DER, written as
//! colon-separated upper-case hex, the same form `mrci host run` prints.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context;

/// What the file says about one host.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pin {
    /// The host is not in the file.
    Unknown,
    /// The host is pinned to this fingerprint.
    Known(String),
}

/// A known-hosts file on disk; read on every lookup so that concurrent clients see each
/// other's additions.
pub(crate) struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// The file at `path` (which need not exist yet).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The default location: `$XDG_CONFIG_HOME/mrci/known_hosts`, else
    /// `$HOME/.config/mrci/known_hosts`.
    pub(crate) fn default_path() -> anyhow::Result<PathBuf> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .context("neither XDG_CONFIG_HOME nor HOME is set; give --known-hosts")?;
                PathBuf::from(home).join(".config")
            }
        };
        Ok(base.join("mrci").join("known_hosts"))
    }

    /// Where the file lives.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Looks `host` (`name:port`) up.
    pub(crate) fn lookup(&self, host: &str) -> anyhow::Result<Pin> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pin::Unknown),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        Ok(parse(&text)
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map_or(Pin::Unknown, |(_, fp)| Pin::Known(fp.to_owned())))
    }

    /// Appends a pin for `host`, creating the file and its directory if needed.
    pub(crate) fn add(&self, host: &str, fingerprint: &str) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        writeln!(file, "{host} {fingerprint}")
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

/// The `(host, fingerprint)` entries of a known-hosts text.
fn parse(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
}

/// The certificate fingerprint in the host's own form.
pub(crate) use mrci_host::tls::fingerprint;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_lookup() {
        let dir = std::env::temp_dir().join(format!("mrci-kh-{}", std::process::id()));
        let file = KnownHosts::new(dir.join("sub").join("known_hosts"));
        assert_eq!(file.lookup("h:1").unwrap(), Pin::Unknown);
        file.add("h:1", "AA:BB").unwrap();
        file.add("other:2", "CC").unwrap();
        assert_eq!(file.lookup("H:1").unwrap(), Pin::Known("AA:BB".into()));
        assert_eq!(file.lookup("h:2").unwrap(), Pin::Unknown);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let entries: Vec<_> = parse("# c\n\n  a:1 X  \nbroken\n").collect();
        assert_eq!(entries, [("a:1", "X")]);
    }
}
