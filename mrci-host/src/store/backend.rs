//! What differs between the backends below the statements: how a pool is opened and set up,
//! which migrations it runs, how a flag column reads back, and how a write transaction keeps
//! concurrent writers apart.
//!
//! Invariant: SQLite connections always run with WAL, `synchronous = NORMAL`, foreign keys
//! and a busy timeout, whichever way the store was opened.

use std::{path::Path, str::FromStr, time::Duration};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sqlx::{
    Any, Decode, Executor, Transaction, Type, ValueRef,
    any::{AnyConnectOptions, AnyPoolOptions, AnyTypeInfo, AnyTypeInfoKind, AnyValueRef},
    error::BoxDynError,
    migrate::Migrator,
    sqlite::SqliteConnectOptions,
};

use super::Store;
use crate::{Error, Result};
use mrci_proto::UserId;

/// The database behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file (the default, `Store::open`).
    Sqlite,
    /// A PostgreSQL database (`Store::connect("postgres://…")`).
    Postgres,
}

/// The SQLite schema. These files are the ones earlier hosts applied from `migrations/`:
/// moved, never edited, so existing databases keep their applied-migration checksums.
pub(super) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL schema, numbered like the SQLite one: migration N does the same on both.
pub(super) static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per pool. SQLite serialises writers anyway; readers share the WAL.
const MAX_CONNECTIONS: u32 = 8;

/// Run on every new SQLite connection (sqlx's `Any` URL cannot carry these settings).
/// In WAL mode NORMAL still never corrupts the database; a power cut can only lose the last
/// commits (log rows, mostly), and it saves an fsync per commit.
const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

/// Characters written as-is in the path part of a SQLite URL; everything else is
/// percent-encoded, so no file name can be read as a URL delimiter or escape.
const PATH_CHARS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// Opens a SQLite file, creating it and its directory, and migrates it.
pub(super) async fn open_sqlite(path: &Path) -> Result<Store> {
    sqlx::any::install_default_drivers();
    let file = path
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} names no database file", path.display())))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    tokio::fs::create_dir_all(dir).await?;
    // An absolute path, so no part of it can be read as a URL's host.
    let path = tokio::fs::canonicalize(dir).await?.join(file);
    let text = path
        .to_str()
        .ok_or_else(|| Error::Config(format!("{} is not UTF-8", path.display())))?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        utf8_percent_encode(text, PATH_CHARS)
    );
    let options = AnyConnectOptions::from_str(&url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_SETUP).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    SQLITE_MIGRATIONS.run(&pool).await?;
    Ok(Store {
        pool,
        backend: Backend::Sqlite,
    })
}

/// Connects to a `postgres://` or `sqlite:` URL and migrates the database.
pub(super) async fn connect(url: &str) -> Result<Store> {
    sqlx::any::install_default_drivers();
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "sqlite" => {
            let options = SqliteConnectOptions::from_str(url)?;
            open_sqlite(options.get_filename()).await
        }
        "postgres" | "postgresql" => {
            let pool = AnyPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                // A command waits this long for an unreachable database before its ERR.
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(AnyConnectOptions::from_str(url)?)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Ok(Store {
                pool,
                backend: Backend::Postgres,
            })
        }
        _ => Err(Error::Config(
            "the database URL must start with postgres://, postgresql:// or sqlite:".to_owned(),
        )),
    }
}

/// What a write transaction serialises on: concurrent transactions with the same lock run
/// one after the other.
pub(super) enum WriteLock<'a> {
    /// One account (memberships it may still add).
    User(&'a UserId),
    /// One channel table id (its owner and its sub-channel ids).
    Channel(i64),
}

impl Store {
    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the few statements whose text
    /// differs (see the module docs).
    pub(super) fn sql(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self.backend {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }

    /// Begins a transaction that holds `lock` until it ends. SQLite takes its one write lock
    /// up front (`BEGIN IMMEDIATE`), so reads inside see no concurrent writer's rows;
    /// PostgreSQL locks the row `lock` names (a missing row locks nothing, and the
    /// transaction's own statements then find it missing too).
    pub(super) async fn begin_write(
        &self,
        lock: WriteLock<'_>,
    ) -> Result<Transaction<'static, Any>> {
        if self.backend == Backend::Sqlite {
            return Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?);
        }
        let mut tx = self.pool.begin().await?;
        // NO KEY UPDATE: serialises these transactions without blocking the foreign-key
        // checks of inserts that merely reference the row.
        match lock {
            WriteLock::User(id) => {
                sqlx::query("SELECT 1 FROM users WHERE user_id = $1 FOR NO KEY UPDATE")
                    .bind(&id.0[..])
                    .fetch_optional(&mut *tx)
                    .await?;
            }
            WriteLock::Channel(ch) => {
                sqlx::query("SELECT 1 FROM channels WHERE channel_id = $1 FOR NO KEY UPDATE")
                    .bind(ch)
                    .fetch_optional(&mut *tx)
                    .await?;
            }
        }
        Ok(tx)
    }
}

/// A flag column: PostgreSQL returns BOOLEAN, SQLite the INTEGER 0 or 1 it stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Flag(pub(super) bool);

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <bool as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind() == AnyTypeInfoKind::Bool || ty.kind().is_integer()
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.type_info().kind() == AnyTypeInfoKind::Bool {
            Ok(Self(<bool as Decode<Any>>::decode(value)?))
        } else {
            Ok(Self(<i64 as Decode<Any>>::decode(value)? != 0))
        }
    }
}

/// Reads a flag column by name.
pub(super) fn flag(row: &sqlx::any::AnyRow, col: &str) -> Result<bool> {
    use sqlx::Row;
    Ok(row.try_get::<Flag, _>(col)?.0)
}
