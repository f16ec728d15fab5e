//! The command-rank table (COMMANDS.md §1.4): the host rank a ranked command needs, per
//! module. Internal commands use the module name [`INTERNAL_MODULE`].

use std::collections::HashMap;

use super::Store;
use crate::Result;

/// The `module` value of internal commands' rows.
pub const INTERNAL_MODULE: &str = "internal";

impl Store {
    /// Every command rank of `module`: command name (lower-case) → host rank.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn command_ranks(&self, module: &str) -> Result<HashMap<String, u32>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT command_name, host_rank FROM command_ranks WHERE module = ?")
                .bind(module)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, rank)| (name.to_lowercase(), u32::try_from(rank).unwrap_or(u32::MAX)))
            .collect())
    }

    /// Sets the rank a command needs.
    ///
    /// # Errors
    /// On a database failure (including rank 0, which the schema refuses).
    pub async fn set_command_rank(&self, module: &str, command: &str, rank: u32) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO command_ranks (module, command_name, host_rank) VALUES (?, ?, ?)")
            .bind(module)
            .bind(command)
            .bind(i64::from(rank))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Rank rows whose module and command contain the given texts: (module, command, rank).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn list_command_ranks(
        &self,
        module: &str,
        command: &str,
    ) -> Result<Vec<(String, String, u32)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT module, command_name, host_rank FROM command_ranks \
             WHERE module LIKE ?1 ESCAPE '\\' AND command_name LIKE ?2 ESCAPE '\\' ORDER BY module, command_name",
        )
        .bind(format!("%{}%", super::like_escape(module)))
        .bind(format!("%{}%", super::like_escape(command)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(m, c, r)| (m, c, u32::try_from(r).unwrap_or(u32::MAX)))
            .collect())
    }

    /// Adds a rank for a command that has none. False if it already has one.
    ///
    /// # Errors
    /// On a database failure (including rank 0).
    pub async fn add_command_rank(&self, module: &str, command: &str, rank: u32) -> Result<bool> {
        let done = sqlx::query("INSERT OR IGNORE INTO command_ranks (module, command_name, host_rank) VALUES (?, ?, ?)")
            .bind(module)
            .bind(command)
            .bind(i64::from(rank))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a command's rank (it falls back to rank 1). False if there was none.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_command_rank(&self, module: &str, command: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM command_ranks WHERE module = ? AND command_name = ?")
            .bind(module)
            .bind(command)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::temp_store;
    use super::*;

    #[tokio::test]
    async fn ranks_round_trip() {
        let (store, _dir) = temp_store().await;
        let defaults = store.command_ranks(INTERNAL_MODULE).await.unwrap();
        assert_eq!(
            defaults.get("cast"),
            Some(&2),
            "everyday commands ship at rank 2"
        );
        sqlx::query("DELETE FROM command_ranks")
            .execute(&store.pool)
            .await
            .unwrap();
        store
            .set_command_rank(INTERNAL_MODULE, "Host_Info", 2)
            .await
            .unwrap();
        store.set_command_rank("/opt/mod", "x", 3).await.unwrap();
        let ranks = store.command_ranks(INTERNAL_MODULE).await.unwrap();
        assert_eq!(ranks, HashMap::from([("host_info".to_owned(), 2)]));
        assert!(
            store
                .set_command_rank(INTERNAL_MODULE, "y", 0)
                .await
                .is_err()
        );
        assert!(
            store
                .remove_command_rank(INTERNAL_MODULE, "HOST_INFO")
                .await
                .unwrap()
        );
        assert!(
            store
                .command_ranks(INTERNAL_MODULE)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
