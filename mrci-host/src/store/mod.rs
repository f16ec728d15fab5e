//! The SQLite store: a `Store` over an sqlx pool with the embedded migrations of
//! `mrci-host/migrations/`. One file per table family; SQL lives next to the function that
//! runs it.
//!
//! Invariant: every query binds its parameters (no SQL is built from user text), and every
//! function that depends on time takes `now` (Unix seconds) from the caller.

mod bans;
mod channels;
mod groups;
mod logs;
mod modules;
mod ranks;
mod recovery;
mod users;

use std::{path::Path, time::Duration};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use bans::{Ban, normalise_ip};
pub use channels::{Channel, ChannelRow, Member, RdonlyFlag, SubChannel};
pub use groups::{Group, INITIAL_GROUP_ID};
pub use logs::{ActRow, AuthRow};
pub use ranks::INTERNAL_MODULE;
pub use recovery::RecoveryToken;
pub use users::UserRecord;

use crate::Result;

/// The host's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating it and its directory if needed) the database file and brings its
    /// schema up to date.
    ///
    /// # Errors
    /// If the file cannot be opened or a migration fails.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir).await?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL still never corrupts the database; a power cut can only lose
            // the last commits (log rows, mostly), and it saves an fsync per connection.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when an insert or update broke a UNIQUE constraint (a name or address is taken).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Escapes `%`, `_` and `\` so user text matches literally in `LIKE ? ESCAPE '\'`.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(crate) async fn temp_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("test.db"))
        .await
        .expect("open store");
    (store, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_once_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new-dir").join("m.db");
        let store = Store::open(&path).await.unwrap();
        let groups: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, host_rank FROM groups ORDER BY group_id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(groups, [("admin".to_owned(), 1), ("users".to_owned(), 2)]);
        assert_eq!(
            store.user_counts().await.unwrap(),
            (0, 0),
            "no default account"
        );
        store.close().await;
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.user_counts().await.unwrap(), (0, 0));
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn like_escape_quotes_wildcards() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
