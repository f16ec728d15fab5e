//! The auth log and IP history (COMMANDS.md §4.3, §4.6): one row per login attempt and per
//! session event.

use mrci_proto::UserId;

use super::{Flag, Store, contains};
use crate::Result;

/// Counts of a user's failed and accepted logins; the user filter is appended at compile
/// time.
macro_rules! count_auth {
    () => {
        "SELECT COUNT(CASE WHEN NOT a.accepted THEN 1 END), COUNT(CASE WHEN a.accepted THEN 1 END) \
         FROM auth_log a JOIN users u ON u.user_id = a.user_id "
    };
}

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
        self.insert_auth_log("login", user, ip, app, accepted, reason, now)
            .await
    }

    /// One `auth_log` row of `kind` ('login' or 'recovery').
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn insert_auth_log(
        &self,
        kind: &str,
        user: Option<&UserId>,
        ip: &str,
        app: &str,
        accepted: bool,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_log (time_stamp, ip_address, app_name, user_id, kind, accepted, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now)
        .bind(ip)
        .bind(app)
        .bind(user.map(|u| u.0.to_vec()))
        .bind(kind)
        .bind(accepted)
        .bind(reason)
        .execute(self.db())
        .await?;
        Ok(())
    }

    /// Login attempts logged for the named user: (failed, accepted).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn auth_log_count(&self, user_name: &str) -> Result<(i64, i64)> {
        let row: (i64, i64) = sqlx::query_as(self.sql(
            concat!(count_auth!(), "WHERE u.user_name = $1"),
            concat!(count_auth!(), "WHERE lower(u.user_name) = lower($1)"),
        ))
        .bind(user_name)
        .fetch_one(self.db())
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
        sqlx::query("INSERT INTO ip_history (time_stamp, ip_address, session_id, app_name, log_entry) VALUES ($1, $2, $3, $4, $5)")
            .bind(now)
            .bind(ip)
            .bind(session_hex)
            .bind(app)
            .bind(entry)
            .execute(self.db())
            .await?;
        Ok(())
    }

    /// The newest `limit` IP-history entries for an address: (time, entry).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn ip_history(&self, ip: &str, limit: i64) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as("SELECT time_stamp, log_entry FROM ip_history WHERE ip_address = $1 ORDER BY id DESC LIMIT $2")
            .bind(ip)
            .bind(limit)
            .fetch_all(self.db())
            .await?)
    }
}

/// One auth-log row as `ls_auth_log` shows it.
pub type AuthRow = (i64, String, String, String, bool, String);

/// One IP-history row as `ls_act_log` shows it.
pub type ActRow = (i64, String, String, String, String);

impl Store {
    /// Auth-log rows whose address and user name contain the given texts, newest first:
    /// (time, ip, user name or "", app, accepted, reason).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn list_auth_log(&self, ip: &str, user: &str) -> Result<Vec<AuthRow>> {
        let rows: Vec<(i64, String, String, String, Flag, String)> = sqlx::query_as(
            "SELECT a.time_stamp, a.ip_address, COALESCE(u.user_name, ''), a.app_name, a.accepted, a.reason \
             FROM auth_log a LEFT JOIN users u ON u.user_id = a.user_id \
             WHERE lower(a.ip_address) LIKE lower($1) ESCAPE '\\' \
             AND lower(COALESCE(u.user_name, '')) LIKE lower($2) ESCAPE '\\' \
             ORDER BY a.id DESC",
        )
        .bind(contains(ip))
        .bind(contains(user))
        .fetch_all(self.db())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(t, ip, user, app, accepted, reason)| (t, ip, user, app, accepted.0, reason))
            .collect())
    }

    /// IP-history rows whose address and entry contain the given texts, newest first:
    /// (time, ip, session id, app, entry).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn list_act_log(&self, ip: &str, entry: &str) -> Result<Vec<ActRow>> {
        Ok(sqlx::query_as(
            "SELECT time_stamp, ip_address, session_id, app_name, log_entry FROM ip_history \
             WHERE lower(ip_address) LIKE lower($1) ESCAPE '\\' \
             AND lower(log_entry) LIKE lower($2) ESCAPE '\\' ORDER BY id DESC",
        )
        .bind(contains(ip))
        .bind(contains(entry))
        .fetch_all(self.db())
        .await?)
    }
}

impl Store {
    /// Deletes the IP-history rows [`Store::list_act_log`] would list for the same filters;
    /// returns how many.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn delete_act_log(&self, ip: &str, entry: &str) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM ip_history WHERE lower(ip_address) LIKE lower($1) ESCAPE '\\' \
             AND lower(log_entry) LIKE lower($2) ESCAPE '\\'",
        )
        .bind(contains(ip))
        .bind(contains(entry))
        .execute(self.db())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::store_tests;

    store_tests! {
        async fn auth_and_ip_rows(store) {
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
            let rows = store.list_auth_log("10.0", "").await.unwrap();
            assert_eq!(rows.len(), 3);
            assert_eq!(rows[0].2, "", "unknown accounts have no user name");
            assert_eq!(store.list_auth_log("", "dav").await.unwrap().len(), 2);
            assert!(store.list_auth_log("%", "").await.unwrap().is_empty());
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
            let acts = store.list_act_log("", "Ended").await.unwrap();
            assert_eq!(acts.len(), 1);
            assert_eq!(acts[0].4, "Session Ended");
        }
    }
}
