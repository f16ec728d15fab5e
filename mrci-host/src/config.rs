//! Host configuration: a TOML file in which every setting is optional (COMMANDS.md §5.4,
//! adapted). With no file at all the host listens on `0.0.0.0:35516` and keeps its database,
//! certificate and runtime files in `./mrci-data`.
//!
//! Invariant: `Config::default()` is a complete, working configuration.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Everything the host can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory for the database, certificate and runtime files; created if missing.
    pub data_dir: PathBuf,
    /// SQLite file name inside `data_dir`.
    pub db_file: String,
    /// Certificate settings.
    pub tls: TlsConfig,
    /// Resource limits and deadlines.
    pub limits: Limits,
    /// Account security.
    pub security: Security,
}

/// TLS settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_path`. If unset, a self-signed certificate is
    /// generated into the data directory on first start.
    pub cert_path: Option<PathBuf>,
    /// PEM private key for `cert_path`.
    pub key_path: Option<PathBuf>,
    /// Common names this host serves (the client header names one). The self-signed
    /// certificate covers them too.
    pub common_names: Vec<String>,
    /// Let loopback clients use plaintext (host reply 1). Off by default.
    pub allow_plaintext_loopback: bool,
}

/// Limits and deadlines.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Maximum concurrent sessions (handshakes included).
    pub max_sessions: u32,
    /// Largest frame payload accepted from a client, in bytes (at most 16,777,215).
    pub max_payload: usize,
    /// Capacity of each session's inbox for events from other sessions.
    pub inbox_capacity: usize,
    /// Seconds a client has to send its 410-byte header.
    pub header_timeout_secs: u64,
    /// Seconds a client has to complete the TLS handshake.
    pub tls_timeout_secs: u64,
    /// Seconds in-flight commands may run on after shutdown begins.
    pub shutdown_grace_secs: u64,
}

/// Account security.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Failed logins in a row that lock an account.
    pub max_failed_logins: u32,
    /// Seconds of the first lock; each further lock doubles it (capped at a day).
    pub lockout_secs: i64,
    /// Password attempts (`auth`) allowed per client address per minute; 0 disables.
    pub auth_attempts_per_minute: u32,
    /// Argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 35516)),
            data_dir: PathBuf::from("mrci-data"),
            db_file: "mrci.db".into(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            security: Security::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_path: None,
            key_path: None,
            common_names: vec!["localhost".into()],
            allow_plaintext_loopback: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 100,
            max_payload: mrci_proto::frame::MAX_PAYLOAD,
            inbox_capacity: 256,
            header_timeout_secs: 5,
            tls_timeout_secs: 10,
            shutdown_grace_secs: 5,
        }
    }
}

impl Default for Security {
    fn default() -> Self {
        Self {
            max_failed_logins: 5,
            lockout_secs: 300,
            auth_attempts_per_minute: 20,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
        }
    }
}

impl Config {
    /// Loads `path`, or the defaults when `path` is `None`.
    ///
    /// # Errors
    /// [`Error::Config`] if the file cannot be read or is not valid TOML for these settings.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses TOML text; missing settings keep their defaults.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid TOML, unknown keys or values of the wrong type.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(&self.db_file)
    }

    /// Directory for module sockets (mode 0700).
    pub fn runtime_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "0.0.0.0:35516");
        assert!(!config.tls.allow_plaintext_loopback);
        assert_eq!(config.db_path(), Path::new("mrci-data/mrci.db"));
        let config = Config::from_toml_str(
            "listen = \"127.0.0.1:4000\"\n[limits]\nmax_sessions = 7\n[tls]\nallow_plaintext_loopback = true\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 4000);
        assert_eq!(config.limits.max_sessions, 7);
        assert_eq!(config.limits.header_timeout_secs, 5);
        assert!(config.tls.allow_plaintext_loopback);
        let err = Config::from_toml_str("no_such_setting = 1").unwrap_err();
        assert!(err.to_string().contains("no_such_setting"), "{err}");
    }
}
