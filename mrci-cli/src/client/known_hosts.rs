//! The known-hosts file: one pinned certificate fingerprint per `host:port`, in the spirit of
//! ssh's `known_hosts`, as a [`PinStore`].
//!
//! Each line is `HOST:PORT SHA256-FINGERPRINT`; blank lines and lines starting with `#` are
//! ignored. The fingerprint is written as [`Fingerprint`] displays it (colon-separated
//! upper-case hex), the form `mrci host run` prints. The file is read on every lookup, so
//! concurrent clients see each other's additions, and only ever appended to.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use super::{
    error::BoxError,
    trust::{Fingerprint, PinStore},
};

/// A known-hosts file on disk (it need not exist yet).
#[derive(Clone, Debug)]
pub struct KnownHosts {
    path: PathBuf,
    accept_new: bool,
}

impl KnownHosts {
    /// The file at `path`. Hosts that are not in it yet are refused unless
    /// [`Self::accepting_new`] says otherwise.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            accept_new: false,
        }
    }

    /// Whether a host seen for the first time is trusted (and then pinned) without asking.
    #[must_use]
    pub fn accepting_new(mut self, accept: bool) -> Self {
        self.accept_new = accept;
        self
    }

    /// The default location: `$XDG_CONFIG_HOME/mrci/known_hosts`, else
    /// `$HOME/.config/mrci/known_hosts`; `None` when neither variable is set.
    pub fn default_path() -> Option<PathBuf> {
        let nonempty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let base = match nonempty("XDG_CONFIG_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(nonempty("HOME")?).join(".config"),
        };
        Some(base.join("mrci").join("known_hosts"))
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint pinned for `host` (`name:port`, compared ignoring case).
    ///
    /// # Errors
    /// If the file exists but cannot be read.
    pub fn lookup(&self, host: &str) -> io::Result<Option<String>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(entries(&text)
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, fp)| fp.to_owned()))
    }

    /// Appends a pin for `host`, creating the file and its directory if needed.
    ///
    /// # Errors
    /// If the directory or file cannot be created or written.
    pub fn add(&self, host: &str, fingerprint: &Fingerprint) -> io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{host} {fingerprint}")
    }

    fn context(&self, what: &str, e: io::Error) -> BoxError {
        format!("cannot {what} {}: {e}", self.path.display()).into()
    }
}

impl PinStore for KnownHosts {
    fn pinned(&self, host: &str) -> Result<Option<String>, BoxError> {
        self.lookup(host).map_err(|e| self.context("read", e))
    }

    fn accept_new(&self, _host: &str, _fingerprint: &Fingerprint) -> Result<bool, BoxError> {
        Ok(self.accept_new)
    }

    fn pin(&self, host: &str, fingerprint: &Fingerprint) -> Result<(), BoxError> {
        // Another client may have pinned the host meanwhile; one line per host is enough.
        if self.pinned(host)?.is_none() {
            self.add(host, fingerprint)
                .map_err(|e| self.context("write", e))?;
        }
        Ok(())
    }
}

/// The `(host, fingerprint)` entries of a known-hosts text.
fn entries(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let file = KnownHosts::new(dir.path().join("sub").join("known_hosts"));
        assert_eq!(file.lookup("h:1").unwrap(), None);
        let fp = Fingerprint([0xAB; 32]);
        file.add("h:1", &fp).unwrap();
        file.pin("other:2", &Fingerprint([0xCD; 32])).unwrap();
        file.pin("h:1", &Fingerprint([0xEE; 32])).unwrap();
        assert_eq!(file.lookup("H:1").unwrap(), Some(fp.to_string()));
        assert_eq!(file.lookup("h:2").unwrap(), None);
        let text = fs::read_to_string(file.path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("h:1 AB:AB:"), "{text}");
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let found: Vec<_> = entries("# c\n\n  a:1 X  \nbroken\n").collect();
        assert_eq!(found, [("a:1", "X")]);
    }

    #[test]
    fn new_hosts_are_refused_unless_accepted() {
        let file = KnownHosts::new("unused");
        let fp = Fingerprint([1; 32]);
        assert!(!PinStore::accept_new(&file, "h:1", &fp).unwrap());
        let file = file.accepting_new(true);
        assert!(PinStore::accept_new(&file, "h:1", &fp).unwrap());
    }
}
