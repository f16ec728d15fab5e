//! The store: a `Store` over one sqlx pool, SQLite (a file, the default) or PostgreSQL,
//! with the embedded migrations of `mrci-host/migrations/sqlite/` or
//! `mrci-host/migrations/postgres/`. One file per table family; SQL lives next to the function
//! that runs it. Commands see one `Store` and never learn which backend runs.
//!
//! # Design: one store over sqlx's runtime-generic `Any` pool
//! Every method runs one statement text on an [`sqlx::AnyPool`]; the driver is chosen by the
//! URL at connection time. Statements are written once in the dialect both backends accept
//! (`$n` placeholders, which sqlx's SQLite driver binds by number; `TRUE`/`FALSE`; `ON CONFLICT`
//! upserts; `RETURNING`; `COUNT(CASE …)` rather than summing booleans; `lower(x) LIKE lower($n)
//! ESCAPE '\'` filters). Only where the schemas differ does a method pick its text with
//! `Store::sql`: SQLite compares names with its `COLLATE NOCASE` columns (and their indexes),
//! PostgreSQL with `lower(name) = lower($n)` against unique indexes on `lower(name)`. About ten
//! statements differ; no function exists twice. Write transactions that must not interleave
//! take SQLite's `BEGIN IMMEDIATE`, or on PostgreSQL a row lock on the channel or account they
//! serialise on (`WriteLock`).
//!
//! Why `Any` rather than an enum over two native pools: `Any` covers every column type the
//! store uses on both backends (i64 ids and times, levels read as i64 and checked into u8,
//! 32-byte BLOB/BYTEA ids, NULLs, text; booleans through `Flag` because SQLite hands them
//! back as integers), and a generic function over two native pools needs sqlx's executor
//! bounds on every one of ~80 methods. The price is the copy of each argument and row into
//! `Any` values. Against native pools on the same database (`benches/benches/store.rs`, and
//! client CPU time per query): on SQLite none measurable (`user_by_id` 34 µs through `Any`,
//! 42 µs native, whose lookup also steps the statement to its end); on PostgreSQL 2–5 µs a
//! lookup and 5–8 µs an insert, under the ~10 µs that would have ruled `Any` out.
//!
//! Invariant: every query binds its parameters (no SQL is built from user text), and every
//! function that depends on time takes `now` (Unix seconds) from the caller.

mod backend;
mod bans;
mod channels;
mod copy;
mod groups;
mod logins;
mod logs;
mod modules;
mod ranks;
mod recovery;
mod settings;
#[cfg(test)]
pub(crate) mod testing;
mod timed;
mod users;

use std::path::Path;

use sqlx::AnyPool;

pub use backend::Backend;
pub use bans::{Ban, IpNet, ip_key};
pub use channels::{Channel, ChannelRow, Member, RdonlyFlag, SubChannel};
pub use copy::TableCount;
pub use groups::{Group, INITIAL_GROUP_ID};
pub use logins::LoginBlock;
pub use logs::{ActRow, AuthRow};
pub use ranks::INTERNAL_MODULE;
pub use recovery::RecoveryToken;
pub use users::UserRecord;

use crate::Result;
use backend::{Flag, WriteLock};

/// The host's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating it and its directory if needed) the SQLite database file and brings
    /// its schema up to date. SQLite runs in WAL mode with `synchronous = NORMAL`, foreign
    /// keys on and a 5-second busy timeout.
    ///
    /// # Errors
    /// If the file cannot be opened or a migration fails.
    pub async fn open(path: &Path) -> Result<Self> {
        backend::open_sqlite(path).await
    }

    /// Connects to the database a URL names and brings its schema up to date:
    /// `postgres://user@host:port/database` (or `postgresql://`; PostgreSQL's own URL
    /// parameters, such as `options=-c search_path=…`, apply), or `sqlite:PATH` /
    /// `sqlite://PATH` for a database file opened as [`Store::open`] does.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for another scheme; otherwise if the database cannot be
    /// reached or a migration fails.
    pub async fn connect(url: &str) -> Result<Self> {
        backend::connect(url).await
    }

    /// The pool as an executor that times each statement (see [`timed`]).
    fn db(&self) -> timed::Timed<'_> {
        timed::Timed(&self.pool)
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when an insert or update broke a UNIQUE constraint (a name or address is taken), on
/// either backend.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// True when an insert named a missing row (no such channel or user), on either backend.
fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Escapes `%`, `_` and `\` so user text matches literally in `LIKE $n ESCAPE '\'`.
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

/// The `LIKE` pattern "contains `text` literally".
fn contains(text: &str) -> String {
    format!("%{}%", like_escape(text))
}

#[cfg(test)]
mod tests;
