//! The runtime settings `host_config` changed (issue 15): one row per dotted configuration
//! key, its value as a TOML literal. A row wins over the configuration file until it is
//! removed (`host_config -unset`).

use super::Store;
use crate::Result;

impl Store {
    /// Every runtime setting: (dotted key, TOML literal), in key order.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn host_settings(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT key, value FROM host_settings ORDER BY key")
                .fetch_all(self.db())
                .await?,
        )
    }

    /// Stores a runtime setting, or with `None` removes it (the file's value applies again).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_host_setting(&self, key: &str, value: Option<&str>, now: i64) -> Result<()> {
        match value {
            Some(value) => {
                sqlx::query(
                    "INSERT INTO host_settings (key, value, changed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                     changed_at = excluded.changed_at",
                )
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(self.db())
                .await?
            }
            None => {
                sqlx::query("DELETE FROM host_settings WHERE key = $1")
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
        async fn runtime_settings_replace_and_unset(store) {
            store.set_host_setting("limits.max_sessions", Some("5"), 1).await.unwrap();
            store.set_host_setting("limits.max_sessions", Some("6"), 2).await.unwrap();
            store.set_host_setting("accounts.public_registration", Some("true"), 2).await.unwrap();
            assert_eq!(
                store.host_settings().await.unwrap(),
                [
                    ("accounts.public_registration".to_owned(), "true".to_owned()),
                    ("limits.max_sessions".to_owned(), "6".to_owned()),
                ]
            );
            store.set_host_setting("limits.max_sessions", None, 3).await.unwrap();
            assert_eq!(store.host_settings().await.unwrap().len(), 1);
        }
    }
}
