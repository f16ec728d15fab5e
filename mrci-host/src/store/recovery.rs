//! Recovery tokens (hashed, single use, expiring, attempt-limited), the email-verified flag,
//! recovery rows of the auth log, and the key/value settings table that holds mail templates.

use mrci_proto::UserId;

use super::Store;
use crate::Result;

/// The stored form of a user's recovery token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryToken {
    /// SHA3-256 of the token text.
    pub token_hash: Vec<u8>,
    /// When it was issued (Unix seconds).
    pub issued_at: i64,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
    /// Wrong guesses so far.
    pub attempts: u32,
}

impl Store {
    /// Stores a new token for `user`, replacing any earlier one and its attempt count.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn put_recovery_token(
        &self,
        user: &UserId,
        token_hash: &[u8],
        issued_at: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO recovery_tokens (user_id, token_hash, issued_at, expires_at, attempts) \
             VALUES ($1, $2, $3, $4, 0) ON CONFLICT (user_id) DO UPDATE SET \
             token_hash = $2, issued_at = $3, expires_at = $4, attempts = 0",
        )
        .bind(&user.0[..])
        .bind(token_hash)
        .bind(issued_at)
        .bind(expires_at)
        .execute(self.db())
        .await?;
        Ok(())
    }

    /// The user's current token, if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn recovery_token(&self, user: &UserId) -> Result<Option<RecoveryToken>> {
        let row: Option<(Vec<u8>, i64, i64, i64)> = sqlx::query_as(
            "SELECT token_hash, issued_at, expires_at, attempts FROM recovery_tokens WHERE user_id = $1",
        )
        .bind(&user.0[..])
        .fetch_optional(self.db())
        .await?;
        Ok(row.map(
            |(token_hash, issued_at, expires_at, attempts)| RecoveryToken {
                token_hash,
                issued_at,
                expires_at,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            },
        ))
    }

    /// Counts a wrong guess; returns the new count.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn recovery_attempt_failed(&self, user: &UserId) -> Result<u32> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE recovery_tokens SET attempts = attempts + 1 WHERE user_id = $1 RETURNING attempts",
        )
        .bind(&user.0[..])
        .fetch_optional(self.db())
        .await?;
        Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Removes the user's token (used, expired or voided). True if there was one.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn delete_recovery_token(&self, user: &UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM recovery_tokens WHERE user_id = $1")
            .bind(&user.0[..])
            .execute(self.db())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the user's token if it still has this hash. True if it did: the caller may
    /// act on the token, and nobody else can.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn consume_recovery_token(&self, user: &UserId, token_hash: &[u8]) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM recovery_tokens WHERE user_id = $1 AND token_hash = $2")
                .bind(&user.0[..])
                .bind(token_hash)
                .execute(self.db())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the user's email address verified (or not).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_email_verified(&self, user: &UserId, verified: bool) -> Result<()> {
        sqlx::query("UPDATE users SET email_verified = $1 WHERE user_id = $2")
            .bind(verified)
            .bind(&user.0[..])
            .execute(self.db())
            .await?;
        Ok(())
    }

    /// Logs a recovery attempt in the auth log.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn log_recovery(
        &self,
        user: Option<&UserId>,
        ip: &str,
        app: &str,
        accepted: bool,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        self.insert_auth_log("recovery", user, ip, app, accepted, reason, now)
            .await
    }

    /// A setting's stored value; `None` means "use the built-in default".
    ///
    /// # Errors
    /// On a database failure.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(self.db())
                .await?,
        )
    }

    /// Stores a setting, or with `None` returns it to its default.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = $2",
                )
                .bind(key)
                .bind(value)
                .execute(self.db())
                .await?
            }
            None => {
                sqlx::query("DELETE FROM settings WHERE key = $1")
                    .bind(key)
                    .execute(self.db())
                    .await?
            }
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::store_tests;

    store_tests! {
        async fn tokens_replace_count_and_delete(store) {
            let id = store
                .create_user(
                    "erin",
                    Some("erin@example.org"),
                    "users",
                    "phc",
                    false,
                    false,
                )
                .await
                .unwrap();
            assert_eq!(store.recovery_token(&id).await.unwrap(), None);
            store.put_recovery_token(&id, b"h1", 10, 100).await.unwrap();
            assert_eq!(store.recovery_attempt_failed(&id).await.unwrap(), 1);
            assert_eq!(store.recovery_attempt_failed(&id).await.unwrap(), 2);
            store.put_recovery_token(&id, b"h2", 20, 200).await.unwrap();
            let token = store.recovery_token(&id).await.unwrap().unwrap();
            assert_eq!(
                (
                    token.token_hash.as_slice(),
                    token.issued_at,
                    token.expires_at,
                    token.attempts
                ),
                (&b"h2"[..], 20, 200, 0),
                "a new token replaces the old one and its count"
            );
            assert!(store.delete_recovery_token(&id).await.unwrap());
            assert!(!store.delete_recovery_token(&id).await.unwrap());
            assert_eq!(store.recovery_attempt_failed(&id).await.unwrap(), 0);
        }

        async fn settings_default_when_missing(store) {
            assert_eq!(store.setting("reset_subject").await.unwrap(), None);
            store.set_setting("reset_subject", Some("a")).await.unwrap();
            store.set_setting("reset_subject", Some("b")).await.unwrap();
            assert_eq!(
                store.setting("reset_subject").await.unwrap().as_deref(),
                Some("b")
            );
            store.set_setting("reset_subject", None).await.unwrap();
            assert_eq!(store.setting("reset_subject").await.unwrap(), None);
        }
    }
}
