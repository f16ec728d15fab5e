//! IP bans with normalised addresses and optional expiry (PROTOCOL.md §1.2, COMMANDS.md §7
//! item 9).

use std::net::IpAddr;

use super::Store;
use crate::{Error, Result};

/// One ban.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Ban {
    /// The normalised address.
    pub ip_address: String,
    /// When it was added (Unix seconds).
    pub time_stamp: i64,
    /// When it ends, if ever.
    pub expires_at: Option<i64>,
}

/// The text an address is stored under: parsed, then `normalise_ip`d (IPv4-mapped
/// IPv6 becomes IPv4).
///
/// # Errors
/// [`Error::Invalid`] if `ip` is not an address.
pub fn ip_key(ip: &str) -> Result<String> {
    let addr: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("{ip:?} is not an IP address")))?;
    Ok(crate::host::normalise_ip(addr).to_string())
}

impl Store {
    /// Bans an address (replacing an existing ban's expiry).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed address; database failures.
    pub async fn add_ban(&self, ip: &str, now: i64, expires_at: Option<i64>) -> Result<()> {
        sqlx::query(
            "INSERT INTO ban_list (ip_address, time_stamp, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (ip_address) DO UPDATE \
             SET time_stamp = excluded.time_stamp, expires_at = excluded.expires_at",
        )
        .bind(ip_key(ip)?)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Lifts a ban. False if there was none.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed address; database failures.
    pub async fn remove_ban(&self, ip: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM ban_list WHERE ip_address = $1")
            .bind(ip_key(ip)?)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// True if the address has a ban that has not expired at `now`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed address; database failures.
    pub async fn is_banned(&self, ip: &str, now: i64) -> Result<bool> {
        let hit: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM ban_list WHERE ip_address = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(ip_key(ip)?)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(hit.is_some())
    }

    /// Every ban, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn bans(&self) -> Result<Vec<Ban>> {
        Ok(sqlx::query_as(
            "SELECT ip_address, time_stamp, expires_at FROM ban_list ORDER BY time_stamp",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_tests;

    store_tests! {
        async fn bans_are_normalised_and_expire(store) {
            store
                .add_ban("::ffff:10.0.0.1", 100, Some(200))
                .await
                .unwrap();
            assert!(store.is_banned("10.0.0.1", 150).await.unwrap());
            assert!(!store.is_banned("10.0.0.1", 200).await.unwrap(), "expired");
            store.add_ban("2001:DB8::1", 100, None).await.unwrap();
            assert!(store.is_banned("2001:db8:0::1", 1_000_000).await.unwrap());
            assert_eq!(store.bans().await.unwrap().len(), 2);
            assert!(store.remove_ban("::ffff:10.0.0.1").await.unwrap());
            assert!(!store.remove_ban("10.0.0.1").await.unwrap());
            assert!(matches!(
                store.add_ban("not-an-ip", 1, None).await,
                Err(Error::Invalid(_))
            ));
            assert_eq!(ip_key(" ::ffff:127.0.0.1 ").unwrap(), "127.0.0.1");
        }
    }
}
