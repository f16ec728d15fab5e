//! The auth log and IP history (COMMANDS.md §4.3, §4.6): one row per login attempt and per
//! session event.

use mrci_proto::UserId;

use super::Store;
use crate::Result;

impl Store {
    /// Records a login attempt.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn log_auth(
        &self,
        user: Option<&UserId>,
        ip: &str,
        app: &str,
        accepted: bool,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_log (time_stamp, ip_address, app_name, user_id, kind, accepted, reason) \
             VALUES (?, ?, ?, ?, 'login', ?, ?)",
        )
        .bind(now)
        .bind(ip)
        .bind(app)
        .bind(user.map(|u| u.0.to_vec()))
        .bind(accepted)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Login attempts logged for the named user: (failed, accepted).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn auth_log_count(&self, user_name: &str) -> Result<(i64, i64)> {
        let row: (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(a.accepted = 0), 0), COALESCE(SUM(a.accepted = 1), 0) FROM auth_log a \
             JOIN users u ON u.user_id = a.user_id WHERE u.user_name = ?",
        )
        .bind(user_name)
        .fetch_one(&self.pool)
        .await?;
        Ok(row)
    }

    /// Records a session event for an address ("Session Active", "Session Ended", …).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn log_ip(
        &self,
        ip: &str,
        session_hex: &str,
        app: &str,
        entry: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO ip_history (time_stamp, ip_address, session_id, app_name, log_entry) VALUES (?, ?, ?, ?, ?)")
            .bind(now)
            .bind(ip)
            .bind(session_hex)
            .bind(app)
            .bind(entry)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest `limit` IP-history entries for an address: (time, entry).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn ip_history(&self, ip: &str, limit: i64) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as("SELECT time_stamp, log_entry FROM ip_history WHERE ip_address = ? ORDER BY id DESC LIMIT ?")
            .bind(ip)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::temp_store;

    #[tokio::test]
    async fn auth_and_ip_rows() {
        let (store, _dir) = temp_store().await;
        let id = store
            .create_user("dave", None, "users", "phc", false, false)
            .await
            .unwrap();
        store
            .log_auth(Some(&id), "10.0.0.1", "app", false, "wrong password", 1)
            .await
            .unwrap();
        store
            .log_auth(Some(&id), "10.0.0.1", "app", true, "ok", 2)
            .await
            .unwrap();
        store
            .log_auth(None, "10.0.0.1", "app", false, "unknown account", 3)
            .await
            .unwrap();
        assert_eq!(store.auth_log_count("dave").await.unwrap(), (1, 1));
        store
            .log_ip("10.0.0.1", "ab", "app", "Session Active", 5)
            .await
            .unwrap();
        store
            .log_ip("10.0.0.1", "ab", "app", "Session Ended", 6)
            .await
            .unwrap();
        let rows = store.ip_history("10.0.0.1", 10).await.unwrap();
        assert_eq!(
            rows,
            [
                (6, "Session Ended".to_owned()),
                (5, "Session Active".to_owned())
            ]
        );
    }
}
