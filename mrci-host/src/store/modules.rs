//! The `modules` table: module executables added with `add_mod` (COMMANDS.md §3.6).

use super::Store;
use crate::Result;

impl Store {
    /// Every registered module path, in insertion order (PostgreSQL's `modules` table has
    /// a `rowid` column for this, named after SQLite's implicit one).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn modules(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT module_executable FROM modules ORDER BY rowid")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Registers a module path; false if it is registered already.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn add_module(&self, path: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO modules (module_executable) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(path)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Unregisters a module path; false if it was not registered.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_module(&self, path: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM modules WHERE module_executable = $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::store_tests;

    store_tests! {
        async fn modules_round_trip(store) {
            assert!(store.add_module("/opt/a").await.unwrap());
            assert!(!store.add_module("/opt/a").await.unwrap());
            assert!(store.add_module("/opt/b").await.unwrap());
            assert_eq!(store.modules().await.unwrap(), ["/opt/a", "/opt/b"]);
            assert!(store.remove_module("/opt/a").await.unwrap());
            assert!(!store.remove_module("/opt/a").await.unwrap());
            assert_eq!(store.modules().await.unwrap(), ["/opt/b"]);
        }
    }
}
