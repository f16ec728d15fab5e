//! The command-rank table (COMMANDS.md §1.4): the host rank a ranked command needs, per
//! module. Internal commands use the module name [`INTERNAL_MODULE`].

use std::collections::HashMap;

use super::{Store, contains};
use crate::Result;

/// The `module` value of internal commands' rows.
pub const INTERNAL_MODULE: &str = "internal";

/// The rank insert; its conflict clause is appended at compile time.
macro_rules! insert_rank {
    () => {
        "INSERT INTO command_ranks (module, command_name, host_rank) VALUES ($1, $2, $3) "
    };
}

/// The update of a rank row whose key exists.
macro_rules! set_rank {
    () => {
        "DO UPDATE SET command_name = excluded.command_name, host_rank = excluded.host_rank"
    };
}

impl Store {
    /// Every command rank of `module`: command name (lower-case) → host rank.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn command_ranks(&self, module: &str) -> Result<HashMap<String, u32>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT command_name, host_rank FROM command_ranks WHERE module = $1")
                .bind(module)
                .fetch_all(self.db())
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
        // The row takes the new spelling of the name too, as SQLite's INSERT OR REPLACE did.
        sqlx::query(self.sql(
            concat!(
                insert_rank!(),
                "ON CONFLICT (module, command_name) ",
                set_rank!()
            ),
            concat!(
                insert_rank!(),
                "ON CONFLICT (module, lower(command_name)) ",
                set_rank!()
            ),
        ))
        .bind(module)
        .bind(command)
        .bind(i64::from(rank))
        .execute(self.db())
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
             WHERE lower(module) LIKE lower($1) ESCAPE '\\' \
             AND lower(command_name) LIKE lower($2) ESCAPE '\\' \
             ORDER BY module, lower(command_name)",
        )
        .bind(contains(module))
        .bind(contains(command))
        .fetch_all(self.db())
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
        let done = sqlx::query(concat!(insert_rank!(), "ON CONFLICT DO NOTHING"))
            .bind(module)
            .bind(command)
            .bind(i64::from(rank))
            .execute(self.db())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a command's rank (it falls back to rank 1). False if there was none.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn remove_command_rank(&self, module: &str, command: &str) -> Result<bool> {
        let done = sqlx::query(self.sql(
            "DELETE FROM command_ranks WHERE module = $1 AND command_name = $2",
            "DELETE FROM command_ranks WHERE module = $1 AND lower(command_name) = lower($2)",
        ))
        .bind(module)
        .bind(command)
        .execute(self.db())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_tests;

    store_tests! {
        async fn ranks_round_trip(store) {
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
}
