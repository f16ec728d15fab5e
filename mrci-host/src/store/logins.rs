//! Failed logins and the pauses they cause (COMMANDS.md §4.3, hardened for issue 12).
//!
//! Two counters, so that guessing never locks the owner out:
//! - per (account, address): `max_failed_logins` failures in a row from one address lock that
//!   address out of that account for `lockout_secs`, doubling with each further lock of the
//!   same pair (capped at a day);
//! - per account: `max_failed_logins_per_account` failures from all addresses together since
//!   the last success start a pause of `account_backoff_secs`, which holds back only the
//!   addresses that have failed on the account; an address with no failures logs in at once.
//!
//! A success from an address clears that address's record and the account's count.
//!
//! Invariant: every change runs in one write transaction per account, so concurrent failures
//! are each counted once and a lock starts exactly when its threshold is crossed.

use mrci_proto::UserId;
use sqlx::Row;

use super::{Store, backend::WriteLock};
use crate::{Result, config::Security};

/// Why a login attempt may not go ahead now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginBlock {
    /// This address failed too often on this account; until when.
    Address(i64),
    /// The account is pausing addresses that failed on it; until when.
    Account(i64),
}

/// The longest lock of one address.
const MAX_LOCK_SECS: i64 = 86_400;

impl Store {
    /// Whether a login to `user` from `ip` must wait, at `now`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn login_block(
        &self,
        user: &UserId,
        ip: &str,
        now: i64,
    ) -> Result<Option<LoginBlock>> {
        let pair = sqlx::query(
            "SELECT f.failures, f.locked_until, u.locked_until AS account_until \
             FROM users u LEFT JOIN login_failures f \
             ON f.user_id = u.user_id AND f.ip_address = $2 WHERE u.user_id = $1",
        )
        .bind(&user.0[..])
        .bind(ip)
        .fetch_optional(self.db())
        .await?;
        let Some(row) = pair else {
            return Ok(None);
        };
        let failures: Option<i64> = row.try_get("failures")?;
        let address_until: Option<i64> = row.try_get("locked_until")?;
        let account_until: Option<i64> = row.try_get("account_until")?;
        if let Some(until) = address_until.filter(|t| *t > now) {
            return Ok(Some(LoginBlock::Address(until)));
        }
        let failed_here = failures.is_some();
        Ok(account_until
            .filter(|t| *t > now && failed_here)
            .map(LoginBlock::Account))
    }

    /// Counts a wrong password for `user` from `ip` at `now`; returns the pause it starts,
    /// if any.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn record_login_failure(
        &self,
        user: &UserId,
        ip: &str,
        now: i64,
        limits: &Security,
    ) -> Result<Option<LoginBlock>> {
        let mut tx = self.begin_write(WriteLock::User(user)).await?;
        let pair = sqlx::query(
            "INSERT INTO login_failures (user_id, ip_address, failures, lock_count, last_failure) \
             VALUES ($1, $2, 1, 0, $3) \
             ON CONFLICT (user_id, ip_address) DO UPDATE \
             SET failures = login_failures.failures + 1, last_failure = excluded.last_failure \
             RETURNING failures, lock_count",
        )
        .bind(&user.0[..])
        .bind(ip)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let (failures, locks): (i64, i64) = (pair.try_get(0)?, pair.try_get(1)?);
        let account = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE user_id = $1 \
             RETURNING failed_logins",
        )
        .bind(&user.0[..])
        .fetch_optional(&mut *tx)
        .await?;
        let account_failures: i64 = match account {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        let mut block = None;
        if failures >= i64::from(limits.max_failed_logins.max(1)) {
            let secs = limits
                .lockout_secs
                .max(1)
                .saturating_mul(1 << locks.clamp(0, 16))
                .min(MAX_LOCK_SECS);
            sqlx::query(
                "UPDATE login_failures SET failures = 0, lock_count = lock_count + 1, \
                 locked_until = $1 WHERE user_id = $2 AND ip_address = $3",
            )
            .bind(now + secs)
            .bind(&user.0[..])
            .bind(ip)
            .execute(&mut *tx)
            .await?;
            block = Some(LoginBlock::Address(now + secs));
        }
        if account_failures >= i64::from(limits.max_failed_logins_per_account.max(1)) {
            let until = now + limits.account_backoff_secs.max(1);
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = $1 WHERE user_id = $2")
                .bind(until)
                .bind(&user.0[..])
                .execute(&mut *tx)
                .await?;
            block = block.or(Some(LoginBlock::Account(until)));
        }
        tx.commit().await?;
        Ok(block)
    }

    /// A correct password for `user` from `ip`: forgets that address's failures and the
    /// account's count and pause.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn record_login_success(&self, user: &UserId, ip: &str) -> Result<()> {
        let mut tx = self.begin_write(WriteLock::User(user)).await?;
        sqlx::query("DELETE FROM login_failures WHERE user_id = $1 AND ip_address = $2")
            .bind(&user.0[..])
            .bind(ip)
            .execute(&mut *tx)
            .await?;
        end_account_pause(tx, user).await
    }

    /// Forgets every failed login of `user` from every address and ends its pauses (an
    /// operator's `mrci host passwd`).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn clear_login_failures(&self, user: &UserId) -> Result<()> {
        let mut tx = self.begin_write(WriteLock::User(user)).await?;
        sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
            .bind(&user.0[..])
            .execute(&mut *tx)
            .await?;
        end_account_pause(tx, user).await
    }
}

/// Ends the account-wide pause of `user` (its failure count and lock) and commits `tx`.
async fn end_account_pause(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    user: &UserId,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET failed_logins = 0, lock_count = 0, locked_until = NULL \
         WHERE user_id = $1",
    )
    .bind(&user.0[..])
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_tests;

    fn limits() -> Security {
        Security {
            max_failed_logins: 3,
            lockout_secs: 100,
            max_failed_logins_per_account: 5,
            account_backoff_secs: 50,
            ..Security::default()
        }
    }

    async fn user(store: &Store) -> UserId {
        store
            .create_user("owner", None, "users", "phc", false, false)
            .await
            .unwrap()
    }

    store_tests! {
        async fn one_address_is_locked_out_not_the_owner(store) {
            let (id, limits) = (user(&store).await, limits());
            for _ in 0..2 {
                assert_eq!(store.record_login_failure(&id, "10.0.0.9", 1000, &limits).await.unwrap(), None);
            }
            assert_eq!(
                store.record_login_failure(&id, "10.0.0.9", 1000, &limits).await.unwrap(),
                Some(LoginBlock::Address(1100))
            );
            assert_eq!(store.login_block(&id, "10.0.0.9", 1050).await.unwrap(), Some(LoginBlock::Address(1100)));
            assert_eq!(store.login_block(&id, "10.0.0.1", 1050).await.unwrap(), None, "the owner's address");
            assert_eq!(store.login_block(&id, "10.0.0.9", 1100).await.unwrap(), None, "the lock ends");
            // A second lock of the same pair lasts twice as long.
            for _ in 0..2 {
                store.record_login_failure(&id, "10.0.0.9", 2000, &limits).await.unwrap();
            }
            assert_eq!(
                store.record_login_failure(&id, "10.0.0.9", 2000, &limits).await.unwrap(),
                Some(LoginBlock::Address(2200))
            );
        }

        async fn spread_guessing_pauses_only_failing_addresses(store) {
            let (id, limits) = (user(&store).await, limits());
            for n in 0..4 {
                let ip = format!("10.1.0.{n}");
                assert_eq!(store.record_login_failure(&id, &ip, 1000, &limits).await.unwrap(), None);
            }
            assert_eq!(
                store.record_login_failure(&id, "10.1.0.9", 1000, &limits).await.unwrap(),
                Some(LoginBlock::Account(1050))
            );
            assert_eq!(store.login_block(&id, "10.1.0.2", 1010).await.unwrap(), Some(LoginBlock::Account(1050)));
            assert_eq!(store.login_block(&id, "192.0.2.7", 1010).await.unwrap(), None, "no failures from here");
            store.record_login_success(&id, "192.0.2.7").await.unwrap();
            assert_eq!(store.login_block(&id, "10.1.0.2", 1010).await.unwrap(), None, "a success ends the pause");
        }

        async fn a_success_clears_only_its_address(store) {
            let (id, limits) = (user(&store).await, limits());
            for ip in ["10.2.0.1", "10.2.0.2"] {
                for _ in 0..3 {
                    store.record_login_failure(&id, ip, 1000, &limits).await.unwrap();
                }
            }
            store.record_login_success(&id, "10.2.0.1").await.unwrap();
            assert_eq!(store.login_block(&id, "10.2.0.1", 1001).await.unwrap(), None);
            assert_eq!(store.login_block(&id, "10.2.0.2", 1001).await.unwrap(), Some(LoginBlock::Address(1100)));
        }
    }
}
