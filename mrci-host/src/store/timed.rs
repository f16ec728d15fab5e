//! [`Timed`]: the pool as an sqlx executor that times every statement it runs, for the
//! `mrci_db_query_seconds{query}` histogram of the metrics endpoint.
//!
//! The label is the statement's kind and first table (`select users`, `insert auth_log`,
//! `update users`), read from the SQL text when sqlx asks for it, so every store method is
//! measured without naming itself and the label set stays as small as the set of tables.
//! A statement is timed from the call until its result (or its last row) is handed back, or
//! until the caller drops it; a failed statement is recorded too, with its own time.
//!
//! Statements inside a transaction (`Store::write`'s `BEGIN IMMEDIATE`, the migration copy)
//! run on the transaction's connection and are not timed one by one.
//!
//! A process without a recorder (no `[metrics] listen`) skips all of it: the statement runs
//! on the pool directly, without a clock read or a label scan.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::BoxStream};
use sqlx::{
    Any, AnyPool, Database, Either, Error, Execute, Executor, SqlStr,
    any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo},
};

/// The pool, timing each statement it runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timed<'p>(pub(crate) &'p AnyPool);

/// The label of a statement: `verb table`, lower case (`select users`), or `verb` alone
/// when no table follows (`select`, `pragma`).
pub(crate) fn label(sql: &str) -> String {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';'))
        .filter(|w| !w.is_empty())
        .take(64)
        .collect();
    let Some(verb) = words.first().map(|w| w.to_ascii_lowercase()) else {
        return "empty".to_owned();
    };
    let after = match verb.as_str() {
        "select" | "delete" => "from",
        "insert" | "replace" => "into",
        "update" => "update",
        _ => return verb,
    };
    let table = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case(after))
        .and_then(|i| words.get(i + 1))
        .map(|t| t.trim_matches('"').to_ascii_lowercase());
    match table {
        Some(t) if t != "select" && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            format!("{verb} {t}")
        }
        _ => verb,
    }
}

/// Records the time since `start` under the label sqlx's read of the SQL left behind, when
/// dropped (at the end of the statement, or when its caller gives it up).
struct Clock {
    start: Instant,
    label: Arc<OnceLock<String>>,
}

impl Drop for Clock {
    fn drop(&mut self) {
        let label = self
            .label
            .get()
            .cloned()
            .unwrap_or_else(|| "unknown".to_owned());
        crate::metrics::db_query(label, self.start.elapsed());
    }
}

/// A statement that writes its label into the shared slot when sqlx reads its SQL.
struct Spy<E> {
    inner: E,
    label: Arc<OnceLock<String>>,
}

impl<'q, E: Execute<'q, Any>> Execute<'q, Any> for Spy<E> {
    fn sql(self) -> SqlStr {
        let sql = self.inner.sql();
        let _ = self.label.set(label(sql.as_str()));
        sql
    }

    fn statement(&self) -> Option<&<Any as Database>::Statement> {
        self.inner.statement()
    }

    fn take_arguments(
        &mut self,
    ) -> Result<Option<<Any as Database>::Arguments>, sqlx::error::BoxDynError> {
        self.inner.take_arguments()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }
}

fn spy<E>(query: E) -> (Spy<E>, Clock) {
    let label = Arc::new(OnceLock::new());
    let clock = Clock {
        start: Instant::now(),
        label: Arc::clone(&label),
    };
    (
        Spy {
            inner: query,
            label,
        },
        clock,
    )
}

impl<'p> Executor<'p> for Timed<'p> {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        if !crate::metrics::recording() {
            return self.0.fetch_many(query);
        }
        let (query, clock) = spy(query);
        self.0
            .fetch_many(query)
            .map(move |item| {
                let _ = &clock;
                item
            })
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        if !crate::metrics::recording() {
            return self.0.fetch_optional(query);
        }
        let (query, clock) = spy(query);
        let fut = self.0.fetch_optional(query);
        async move {
            let out = fut.await;
            drop(clock);
            out
        }
        .boxed()
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, Error>>
    where
        'p: 'e,
    {
        self.0.prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<Any>, Error>>
    where
        'p: 'e,
    {
        self.0.describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels_name_the_kind_and_first_table() {
        assert_eq!(
            label("SELECT a, b FROM users u WHERE x = $1"),
            "select users"
        );
        assert_eq!(label("  select count(*) from \"bans\""), "select bans");
        assert_eq!(
            label("INSERT INTO auth_log(a, b) VALUES ($1, $2)"),
            "insert auth_log"
        );
        assert_eq!(
            label("INSERT OR IGNORE INTO ip_history VALUES (1)"),
            "insert ip_history"
        );
        assert_eq!(label("UPDATE users SET x = 1"), "update users");
        assert_eq!(label("DELETE FROM sessions WHERE 1"), "delete sessions");
        assert_eq!(label("WITH t AS (SELECT 1) SELECT * FROM t"), "with");
        assert_eq!(label("PRAGMA foreign_keys"), "pragma");
        assert_eq!(label("SELECT 1"), "select");
        assert_eq!(label(""), "empty");
        assert_eq!(label("SELECT x FROM (SELECT 1)"), "select");
    }
}
