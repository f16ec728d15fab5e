//! IP bans with normalised addresses, optional CIDR ranges and optional expiry (PROTOCOL.md
//! §1.2, COMMANDS.md §3.9 and §7 item 9), and the failed logins that ban an address
//! automatically.
//!
//! A ban is stored under its key: a single address (`10.0.0.1`, `2001:db8::1`) or a range
//! (`10.0.0.0/8`), IPv4-mapped IPv6 written as IPv4 and a range's host bits cleared, so one
//! ban has one spelling.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Store;
use crate::{Error, Result};

/// One ban.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Ban {
    /// The normalised address or range.
    pub ip_address: String,
    /// When it was added (Unix seconds).
    pub time_stamp: i64,
    /// When it ends, if ever.
    pub expires_at: Option<i64>,
    /// Why: the operator's note, or the automatic ban's reason.
    pub reason: String,
}

/// An address or a CIDR range of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or `v6/n`; IPv4-mapped IPv6 becomes
    /// IPv4 and the host bits of a range are cleared.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = || Error::Invalid(format!("{text:?} is not an IP address or CIDR range"));
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let full = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(full);
        if prefix > full {
            return Err(bad());
        }
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (addr, prefix),
            },
            IpAddr::V4(_) => (addr, prefix),
        };
        Ok(Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// True if `ip` (normalised) is this address or inside this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }

    /// True for a range rather than one address.
    pub fn is_range(&self) -> bool {
        self.prefix < if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_range() {
            write!(f, "{}/{}", self.addr, self.prefix)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & keep))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
    }
}

/// The text an address or range is stored under (see the module docs).
///
/// # Errors
/// [`Error::Invalid`] if `ip` is neither an address nor a range.
pub fn ip_key(ip: &str) -> Result<String> {
    Ok(IpNet::parse(ip)?.to_string())
}

impl Store {
    /// Bans an address (replacing an existing ban's expiry).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed address; database failures.
    pub async fn add_ban(&self, ip: &str, now: i64, expires_at: Option<i64>) -> Result<()> {
        self.ban(ip, now, expires_at, "").await
    }

    /// Bans an address or range with a reason (replacing an existing ban of the same key).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed address; database failures.
    pub async fn ban(
        &self,
        ip: &str,
        now: i64,
        expires_at: Option<i64>,
        reason: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO ban_list (ip_address, time_stamp, expires_at, reason) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (ip_address) DO UPDATE \
             SET time_stamp = excluded.time_stamp, expires_at = excluded.expires_at, \
             reason = excluded.reason",
        )
        .bind(ip_key(ip)?)
        .bind(now)
        .bind(expires_at)
        .bind(reason)
        .execute(self.db())
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
            .execute(self.db())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// True if the address has a ban, of its own or of a range holding it, that has not
    /// expired at `now`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed address; database failures.
    pub async fn is_banned(&self, ip: &str, now: i64) -> Result<bool> {
        let net = IpNet::parse(ip)?;
        let hit: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM ban_list WHERE ip_address = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(net.to_string())
        .bind(now)
        .fetch_optional(self.db())
        .await?;
        if hit.is_some() {
            return Ok(true);
        }
        let ranges: Vec<String> = sqlx::query_scalar(
            "SELECT ip_address FROM ban_list WHERE ip_address LIKE '%/%' \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .fetch_all(self.db())
        .await?;
        Ok(ranges
            .iter()
            .filter_map(|r| IpNet::parse(r).ok())
            .any(|r| r.contains(net.addr)))
    }

    /// Every ban, oldest first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn bans(&self) -> Result<Vec<Ban>> {
        Ok(sqlx::query_as(
            "SELECT ip_address, time_stamp, expires_at, reason FROM ban_list ORDER BY time_stamp, ip_address",
        )
        .fetch_all(self.db())
        .await?)
    }

    /// Failed logins from `ip` (any account, or none) since `since`: what the automatic ban
    /// counts.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn failed_logins_from(&self, ip: &str, since: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM auth_log WHERE ip_address = $1 AND kind = 'login' \
             AND NOT accepted AND time_stamp > $2",
        )
        .bind(ip)
        .bind(since)
        .fetch_one(self.db())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_tests;

    #[test]
    fn ranges_are_normalised_and_contain_their_addresses() {
        let net = IpNet::parse("10.1.2.3/8").unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains("10.200.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.9".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::a00:1".parse().unwrap()), "families differ");
        let v6 = IpNet::parse("2001:DB8::FFFF/32").unwrap();
        assert_eq!(v6.to_string(), "2001:db8::/32");
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert_eq!(
            IpNet::parse("::ffff:192.168.0.0/112").unwrap().to_string(),
            "192.168.0.0/16"
        );
        assert_eq!(IpNet::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(IpNet::parse("10.0.0.1/32").unwrap().to_string(), "10.0.0.1");
        for bad in ["10.0.0.1/33", "::1/129", "10.0.0.1/", "x/8", ""] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

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

        async fn ranges_ban_every_address_inside(store) {
            store.ban("192.168.7.9/24", 100, None, "lab").await.unwrap();
            assert!(store.is_banned("192.168.7.200", 150).await.unwrap());
            assert!(!store.is_banned("192.168.8.1", 150).await.unwrap());
            let bans = store.bans().await.unwrap();
            assert_eq!(bans[0].ip_address, "192.168.7.0/24");
            assert_eq!(bans[0].reason, "lab");
            assert!(store.remove_ban("192.168.7.0/24").await.unwrap());
            assert!(!store.is_banned("192.168.7.200", 150).await.unwrap());
        }
    }
}
