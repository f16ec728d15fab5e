//! How the terminal client connects: the target and certificate policy from the command
//! line, the known-hosts file with an ssh-style question for a host seen the first time, and
//! the loud warning when a pinned certificate changed.
//!
//! Invariant: a host is pinned only after the user (or `--accept-new`) accepted its
//! certificate and the TLS handshake with it succeeded; a changed certificate is never
//! re-pinned here, the user has to remove the old line.

use std::{
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
    sync::Arc,
};

use anyhow::{Context as _, bail};
use mrci_cli::client::{
    BoxError, Client, ConnectOptions, Error, Fingerprint, KnownHosts, PinStore, Target, Trust,
};

/// What to do with a host whose certificate is not pinned yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NewHost {
    /// Ask on the terminal (refuse when there is none).
    Ask,
    /// Pin it without asking (`--accept-new`).
    Accept,
}

/// Where to connect and how.
pub(crate) struct Connect {
    /// The host.
    pub(crate) target: Target,
    opts: ConnectOptions,
    /// The known-hosts file, when pinning.
    known_hosts: Option<PathBuf>,
}

impl Connect {
    /// Trust on first use with the known-hosts file at `path`.
    pub(crate) fn pinned(target: Target, path: PathBuf, new_host: NewHost) -> Self {
        let pins = TerminalPins {
            file: KnownHosts::new(path.clone()),
            new_host,
        };
        Self::with(target, Trust::FirstUse(Arc::new(pins)), Some(path))
    }

    /// Verify against the CA certificates in the PEM file at `path`.
    ///
    /// # Errors
    /// If the file cannot be read or holds no certificate.
    pub(crate) fn ca(target: Target, path: &PathBuf) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA file {}", path.display()))?;
        let trust = Trust::roots_from_pem(&pem)
            .with_context(|| format!("no usable CA certificate in {}", path.display()))?;
        Ok(Self::with(target, trust, None))
    }

    fn with(target: Target, trust: Trust, known_hosts: Option<PathBuf>) -> Self {
        Self {
            target,
            opts: ConnectOptions::new(trust),
            known_hosts,
        }
    }

    /// Asks the host for the certificate of `common_name`.
    pub(crate) fn common_name(mut self, common_name: Option<String>) -> Self {
        if let Some(cn) = common_name {
            self.opts = self.opts.common_name(cn);
        }
        self
    }

    /// Connects and waits for ASYNC_RDY.
    ///
    /// # Errors
    /// As [`Client::connect`]; a changed certificate comes with the full warning.
    pub(crate) async fn open(&self) -> anyhow::Result<Client> {
        match Client::connect(&self.target, &self.opts).await {
            Ok(client) => Ok(client),
            Err(Error::PinMismatch {
                host,
                presented,
                pinned,
            }) => bail!(changed_warning(
                &host,
                &presented,
                &pinned,
                &self.known_hosts
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// The default known-hosts file.
///
/// # Errors
/// When neither `XDG_CONFIG_HOME` nor `HOME` is set.
pub(crate) fn default_known_hosts() -> anyhow::Result<PathBuf> {
    KnownHosts::default_path()
        .context("neither XDG_CONFIG_HOME nor HOME is set; give --known-hosts")
}

/// The known-hosts file with the terminal's first-contact question.
struct TerminalPins {
    file: KnownHosts,
    new_host: NewHost,
}

impl PinStore for TerminalPins {
    fn pinned(&self, host: &str) -> Result<Option<String>, BoxError> {
        self.file.pinned(host)
    }

    fn accept_new(&self, host: &str, fingerprint: &Fingerprint) -> Result<bool, BoxError> {
        eprintln!("The authenticity of host {host} can't be established.");
        eprintln!("Its certificate SHA-256 fingerprint is {fingerprint}.");
        if self.new_host == NewHost::Accept {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "{host} is not a known host; pass --accept-new to trust its certificate"
            )
            .into());
        }
        eprint!("Trust this certificate and continue connecting (y/n)? ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        tokio::task::block_in_place(|| std::io::stdin().read_line(&mut answer))?;
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }

    fn pin(&self, host: &str, fingerprint: &Fingerprint) -> Result<(), BoxError> {
        if self.file.pinned(host)?.is_none() {
            self.file.pin(host, fingerprint)?;
            eprintln!(
                "Pinned {host} in {} (SHA-256 {fingerprint}).",
                self.file.path().display()
            );
        }
        Ok(())
    }
}

fn changed_warning(host: &str, presented: &str, pinned: &str, file: &Option<PathBuf>) -> String {
    let file = file
        .as_ref()
        .map_or_else(|| "the pin".to_owned(), |p| p.display().to_string());
    format!(
        "\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         @    WARNING: THE HOST CERTIFICATE HAS CHANGED!        @\n\
         @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
         Someone could be intercepting this connection (a man-in-the-middle attack),\n\
         or the host's certificate was replaced.\n\
         The certificate {host} sent has the SHA-256 fingerprint\n  {presented}\n\
         but {file} pins\n  {pinned}\n\
         If the new certificate is expected, remove the line for {host} from that file.\n\
         Connection refused"
    )
}
