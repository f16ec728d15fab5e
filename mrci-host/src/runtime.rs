//! Settings that change while the host runs (`host_config`, SIGHUP): which configuration
//! keys may change, reading and writing a [`Config`] by dotted key (`limits.max_sessions`),
//! and the live configuration: the file's, with the stored runtime changes on top.
//!
//! Which wins: a value set with `host_config -set` is stored in the database and wins over
//! the configuration file, across restarts and reloads, until `host_config -unset` removes it.
//!
//! Invariant: the live configuration always passes [`Config::validate`]; a change that would
//! not is refused and changes nothing.

use std::sync::{Arc, RwLock};

use crate::{Config, Error, Result};

/// The keys `host_config` may change, in menu order.
pub const RUNTIME_KEYS: &[&str] = &[
    "security.auto_ban_failed_logins",
    "security.max_failed_logins",
    "limits.max_sessions",
    "accounts.public_registration",
    "accounts.password_reset",
    "accounts.email_verify",
    "channels.active_updates",
    "channels.max_sub_channels",
    "channels.max_channels_per_user",
    "limits.max_unauthenticated",
    "limits.max_unauthenticated_per_address",
    "security.lockout_secs",
    "security.max_failed_logins_per_account",
    "security.account_backoff_secs",
    "security.auto_ban_window_secs",
    "security.auto_ban_secs",
    "security.auth_attempts_per_minute",
    "accounts.initial_group",
    "accounts.recovery_token_secs",
    "accounts.recovery_max_attempts",
    "accounts.recovery_resend_secs",
    "limits.login_timeout_secs",
    "limits.header_timeout_secs",
    "limits.tls_timeout_secs",
    "limits.max_payload",
    "limits.max_payload_before_login",
    "limits.frame_stall_secs",
    "limits.write_stall_secs",
    "limits.output_budget_bytes",
    "limits.shutdown_grace_secs",
    "modules.listing_timeout_ms",
    "files.max_upload_bytes",
    "files.keep_free_bytes",
];

/// Every setting of `config` as (dotted key, TOML literal), in key order.
pub fn flatten(config: &Config) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
        match value {
            toml::Value::Table(table) => {
                for (k, v) in table {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = toml::Value::try_from(config) {
        walk("", &value, &mut out);
    }
    out.sort();
    out
}

/// The TOML literal of one setting.
///
/// # Errors
/// [`Error::Invalid`] for an unknown key or a section.
pub fn get(config: &Config, key: &str) -> Result<String> {
    flatten(config)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .ok_or_else(|| Error::Invalid(format!("no setting named {key}")))
}

/// `config` with `key` set from `text`, as the operator typed it: a number for a number,
/// `0`/`1`/`true`/`false` for a switch, or a TOML literal as stored. Checked with
/// [`Config::validate`].
///
/// # Errors
/// [`Error::Invalid`] for a key that cannot change at run time, a value of the wrong type, or
/// a configuration that would not validate.
pub fn with(config: &Config, key: &str, text: &str) -> Result<Config> {
    if !RUNTIME_KEYS.contains(&key) {
        return Err(Error::Invalid(format!(
            "{key} cannot change while the host runs (edit the configuration file and restart)"
        )));
    }
    let mut root = toml::Value::try_from(config).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut slot = &mut root;
    for part in key.split('.') {
        slot = slot
            .get_mut(part)
            .ok_or_else(|| Error::Invalid(format!("no setting named {key}")))?;
    }
    let text = text.trim();
    let bad = || Error::Invalid(format!("{text:?} is not a valid value for {key}"));
    *slot = match slot {
        toml::Value::Integer(_) => toml::Value::Integer(text.parse().map_err(|_| bad())?),
        toml::Value::Boolean(_) => toml::Value::Boolean(match text {
            "1" | "true" | "on" | "yes" => true,
            "0" | "false" | "off" | "no" => false,
            _ => return Err(bad()),
        }),
        toml::Value::String(_) => toml::Value::String(text.trim_matches('"').to_owned()),
        _ => return Err(bad()),
    };
    let config: Config = root
        .try_into()
        .map_err(|e: toml::de::Error| Error::Invalid(format!("{key}: {}", e.message())))?;
    config
        .validate()
        .map_err(|e| Error::Invalid(e.to_string().replace("configuration: ", "")))?;
    Ok(config)
}

/// The file's configuration and the live one (the file's with the runtime changes on top).
#[derive(Debug)]
pub(crate) struct Live {
    inner: RwLock<(Arc<Config>, Arc<Config>)>,
}

impl Live {
    /// The live configuration of `file` with `stored` (dotted key, literal) applied; a stored
    /// change that no longer applies is logged and skipped.
    pub(crate) fn new(file: Config, stored: &[(String, String)]) -> Self {
        let live = overlay(&file, stored);
        Self {
            inner: RwLock::new((Arc::new(file), Arc::new(live))),
        }
    }

    /// The live configuration.
    pub(crate) fn current(&self) -> Arc<Config> {
        Arc::clone(&self.read().1)
    }

    /// The configuration file's.
    pub(crate) fn file(&self) -> Arc<Config> {
        Arc::clone(&self.read().0)
    }

    /// Replaces the live configuration.
    pub(crate) fn set_current(&self, config: Config) {
        self.write().1 = Arc::new(config);
    }

    /// A re-read configuration file: the live configuration becomes `file` with `stored` on
    /// top.
    pub(crate) fn reload(&self, file: Config, stored: &[(String, String)]) {
        let live = overlay(&file, stored);
        *self.write() = (Arc::new(file), Arc::new(live));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Arc<Config>, Arc<Config>)> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, (Arc<Config>, Arc<Config>)> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn overlay(file: &Config, stored: &[(String, String)]) -> Config {
    let mut live = file.clone();
    for (key, literal) in stored {
        match with(&live, key, literal) {
            Ok(next) => {
                if get(file, key).ok().as_deref() != Some(literal.as_str()) {
                    tracing::info!(
                        key = %key,
                        value = %literal,
                        "a runtime setting (host_config) overrides the configuration file"
                    );
                }
                live = next;
            }
            Err(e) => tracing::warn!(key = %key, error = %e, "stored runtime setting ignored"),
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_set_by_dotted_key() {
        let config = Config::default();
        assert_eq!(get(&config, "limits.max_sessions").unwrap(), "100");
        let next = with(&config, "limits.max_sessions", "500").unwrap();
        assert_eq!(next.limits.max_sessions, 500);
        let next = with(&next, "accounts.public_registration", "1").unwrap();
        assert!(next.accounts.public_registration);
        for (key, value) in [
            ("limits.max_sessions", "0"),
            ("limits.max_sessions", "many"),
            ("limits.max_sessions", "-1"),
            ("channels.max_sub_channels", "257"),
            ("accounts.public_registration", "2"),
            ("listen", "0.0.0.0:1"),
            ("no.such", "1"),
        ] {
            assert!(with(&config, key, value).is_err(), "{key}={value}");
        }
        assert!(
            flatten(&config)
                .iter()
                .any(|(k, _)| k == "tls.common_names")
        );
        for key in RUNTIME_KEYS {
            assert!(get(&config, key).is_ok(), "{key}");
        }
    }

    #[test]
    fn stored_changes_win_over_the_file_until_reload_drops_them() {
        let stored = vec![("limits.max_sessions".to_owned(), "7".to_owned())];
        let live = Live::new(Config::default(), &stored);
        assert_eq!(live.current().limits.max_sessions, 7);
        assert_eq!(live.file().limits.max_sessions, 100);
        let mut file = Config::default();
        file.limits.max_sessions = 9;
        file.accounts.public_registration = true;
        live.reload(file.clone(), &stored);
        assert_eq!(live.current().limits.max_sessions, 7);
        assert!(live.current().accounts.public_registration);
        live.reload(file, &[]);
        assert_eq!(live.current().limits.max_sessions, 9);
        let bad = vec![("listen".to_owned(), "\"x\"".to_owned())];
        assert_eq!(
            Live::new(Config::default(), &bad).current().listen,
            Config::default().listen
        );
    }
}
