//! Password hashing with Argon2id and PHC strings (COMMANDS.md §4.1, §7 item 2), the password
//! rule of seed 000 §6.4, and one-time passwords for `add-admin`.
//!
//! Invariant: hashing and verification run on the blocking pool, never on a runtime worker;
//! verification of an unknown account does the same work as a real one.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::{Config, Error, Result};

/// Argon2id with the configured cost.
#[derive(Clone, Debug)]
pub struct Hasher {
    params: Params,
}

impl Hasher {
    /// A hasher with the costs of `config.security`. Out-of-range costs fall back to the
    /// library defaults.
    pub fn new(config: &Config) -> Self {
        let sec = &config.security;
        let params = Params::new(sec.argon2_memory_kib, sec.argon2_iterations, 1, None)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "argon2 costs out of range; using the defaults");
                Params::default()
            });
        Self { params }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh random salt into a PHC string.
    ///
    /// # Errors
    /// [`Error::Password`] if hashing fails.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let argon2 = self.argon2();
        let password = password.to_owned();
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::Password(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            argon2
                .hash_password_with_salt(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Password(e.to_string()))
        })
        .await
        .map_err(|e| Error::Password(e.to_string()))?
    }

    /// Checks `password` against a PHC string in constant time.
    ///
    /// # Errors
    /// [`Error::Password`] if the stored hash is malformed.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        let argon2 = self.argon2();
        let (password, phc) = (password.to_owned(), phc.to_owned());
        tokio::task::spawn_blocking(move || {
            match argon2.verify_password(password.as_bytes(), phc.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(Error::Password(e.to_string())),
            }
        })
        .await
        .map_err(|e| Error::Password(e.to_string()))?
    }

    /// Does the work of a verification for an account that does not exist, so the answer
    /// takes as long as a wrong password for a real one: one Argon2id computation with the
    /// current cost and a random salt, whose result is thrown away.
    pub async fn verify_dummy(&self, password: &str) {
        if let Err(e) = self.hash(password).await {
            tracing::warn!(error = %e, "dummy password verification failed");
        }
    }
}

/// Checks the password rule: 8–200 characters with lower- and upper-case letters, a digit and
/// a symbol.
///
/// # Errors
/// A message saying which requirement is missing.
pub fn check_policy(password: &str) -> Result<(), String> {
    mrci_proto::constraints::password(password).map_err(|e| match e {
        mrci_proto::Error::Invalid { why, .. } => format!("The password {why}."),
        other => other.to_string(),
    })
}

/// A random password that satisfies the rule: 20 characters from the OS generator.
pub fn one_time_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"-_.!#%+=";
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL].concat();
    let random: [u8; 20] = crate::host::random_bytes();
    let mut out: Vec<u8> = random
        .iter()
        .map(|b| all[usize::from(*b) % all.len()])
        .collect();
    // Guarantee one of each class in the first four positions.
    for (slot, class) in [LOWER, UPPER, DIGIT, SYMBOL].iter().enumerate() {
        out[slot] = class[usize::from(random[slot]) % class.len()];
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        let mut config = Config::default();
        config.security.argon2_memory_kib = 64;
        config.security.argon2_iterations = 1;
        Hasher::new(&config)
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = cheap();
        let phc = hasher.hash("Secr3t!pass").await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(hasher.verify("Secr3t!pass", &phc).await.unwrap());
        assert!(!hasher.verify("Secr3t!pasS", &phc).await.unwrap());
        assert!(hasher.verify("x", "not a phc string").await.is_err());
        hasher.verify_dummy("anything").await;
    }

    #[tokio::test]
    async fn out_of_range_costs_fall_back_to_the_defaults() {
        let mut config = Config::default();
        config.security.argon2_memory_kib = 1;
        let phc = Hasher::new(&config).hash("Secr3t!pass").await.unwrap();
        assert!(phc.contains("m=19456,t=2,p=1"), "{phc}");
    }

    #[test]
    fn policy_and_one_time_passwords() {
        assert!(check_policy("Secr3t!pass").is_ok());
        let why = check_policy("short").unwrap_err();
        assert!(why.contains("8 to 200"), "{why}");
        for _ in 0..50 {
            let pw = one_time_password();
            assert_eq!(pw.len(), 20);
            assert!(check_policy(&pw).is_ok(), "{pw}");
        }
    }
}
