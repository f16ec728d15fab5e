//! The `modules` table: module executables added with `add_mod` (COMMANDS.md §3.6).

use sqlx::Row;

use super::Store;
use crate::Result;

impl Store {
    /// Every registered module path, in insertion order (PostgreSQL's `modules` table has
    /// a `rowid` column for this, named after SQLite's implicit one).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn modules(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT module_executable, listing FROM modules ORDER BY rowid")
            .fetch_all(self.db())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Registers a module path with how it is listed (`session` or `once`); false if it is
    /// registered already.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn add_module(&self, path: &str, listing: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO modules (module_executable, listing) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(path)
        .bind(listing)
        .execute(self.db())
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
            .execute(self.db())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::store_tests;

    store_tests! {
        async fn modules_round_trip(store) {
            assert!(store.add_module("/opt/a", "session").await.unwrap());
            assert!(!store.add_module("/opt/a", "once").await.unwrap());
            assert!(store.add_module("/opt/b", "once").await.unwrap());
            let pair = |p: &str, l: &str| (p.to_owned(), l.to_owned());
            assert_eq!(
                store.modules().await.unwrap(),
                [pair("/opt/a", "session"), pair("/opt/b", "once")]
            );
            assert!(store.remove_module("/opt/a").await.unwrap());
            assert!(!store.remove_module("/opt/a").await.unwrap());
            assert_eq!(store.modules().await.unwrap(), [pair("/opt/b", "once")]);
        }
    }
}
