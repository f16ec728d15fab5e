//! Copying a SQLite store into an empty PostgreSQL database (`admin::migrate_to`): every
//! table row for row, ids and foreign keys as they are, identity sequences moved past the
//! copied ids.
//!
//! Invariant: the copy reads one SQLite snapshot and writes one PostgreSQL transaction, so
//! it lands whole or not at all; [`TABLES`] names every column of the schema (a test checks
//! it against both backends' catalogues).

use std::fmt::Write;

use futures::TryStreamExt;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row, any::AnyRow};

use super::{Backend, Flag, Store};
use crate::{Error, Result};

/// Rows copied into one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCount {
    /// The table's name.
    pub table: &'static str,
    /// Rows copied.
    pub rows: u64,
}

/// How a column reads from SQLite and binds for PostgreSQL.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Blob,
    Flag,
}

/// One table: its columns, and the identity column whose sequence follows the copy.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    identity: Option<&'static str>,
}

use Kind::{Blob, Flag as Bool, Int, Text};

/// Every table in foreign-key order (a row's parents come first).
const TABLES: &[Table] = &[
    Table {
        name: "groups",
        columns: &[("group_id", Int), ("name", Text), ("host_rank", Int)],
        identity: Some("group_id"),
    },
    Table {
        name: "users",
        columns: &[
            ("user_id", Blob),
            ("user_name", Text),
            ("email_address", Text),
            ("display_name", Text),
            ("pw_hash", Text),
            ("group_id", Int),
            ("new_password_req", Bool),
            ("new_name_req", Bool),
            ("locked_until", Int),
            ("failed_logins", Int),
            ("lock_count", Int),
            ("email_verified", Bool),
            ("protected", Bool),
            ("time_stamp", Int),
            ("locked", Bool),
        ],
        identity: None,
    },
    Table {
        name: "login_failures",
        columns: &[
            ("user_id", Blob),
            ("ip_address", Text),
            ("failures", Int),
            ("lock_count", Int),
            ("locked_until", Int),
            ("last_failure", Int),
        ],
        identity: None,
    },
    Table {
        name: "auth_log",
        columns: &[
            ("id", Int),
            ("time_stamp", Int),
            ("ip_address", Text),
            ("app_name", Text),
            ("user_id", Blob),
            ("kind", Text),
            ("accepted", Bool),
            ("reason", Text),
        ],
        identity: Some("id"),
    },
    Table {
        name: "ip_history",
        columns: &[
            ("id", Int),
            ("time_stamp", Int),
            ("ip_address", Text),
            ("session_id", Text),
            ("app_name", Text),
            ("log_entry", Text),
        ],
        identity: Some("id"),
    },
    Table {
        name: "recovery_tokens",
        columns: &[
            ("user_id", Blob),
            ("token_hash", Blob),
            ("expires_at", Int),
            ("attempts", Int),
            ("issued_at", Int),
        ],
        identity: None,
    },
    Table {
        name: "email_verifications",
        columns: &[
            ("user_id", Blob),
            ("code_hash", Blob),
            ("expires_at", Int),
            ("attempts", Int),
        ],
        identity: None,
    },
    Table {
        name: "channels",
        columns: &[("channel_id", Int), ("channel_name", Text)],
        identity: Some("channel_id"),
    },
    Table {
        name: "channel_members",
        columns: &[
            ("channel_id", Int),
            ("user_id", Blob),
            ("pending_invite", Bool),
            ("access_level", Int),
        ],
        identity: None,
    },
    Table {
        name: "sub_channels",
        columns: &[
            ("channel_id", Int),
            ("sub_channel_id", Int),
            ("sub_channel_name", Text),
            ("lowest_access_level", Int),
            ("active_updates", Bool),
        ],
        identity: None,
    },
    Table {
        name: "read_only_flags",
        columns: &[
            ("channel_id", Int),
            ("sub_channel_id", Int),
            ("access_level", Int),
        ],
        identity: None,
    },
    Table {
        name: "command_ranks",
        columns: &[("module", Text), ("command_name", Text), ("host_rank", Int)],
        identity: None,
    },
    Table {
        name: "modules",
        columns: &[
            ("module_executable", Text),
            ("rowid", Int),
            ("listing", Text),
        ],
        identity: Some("rowid"),
    },
    Table {
        name: "ban_list",
        columns: &[
            ("ip_address", Text),
            ("time_stamp", Int),
            ("expires_at", Int),
            ("reason", Text),
        ],
        identity: None,
    },
    Table {
        name: "settings",
        columns: &[("key", Text), ("value", Text)],
        identity: None,
    },
    Table {
        name: "host_settings",
        columns: &[("key", Text), ("value", Text), ("changed_at", Int)],
        identity: None,
    },
];

/// Tables whose migrations insert rows; the copy replaces those rows with the source's.
const SEEDED: [&str; 2] = ["groups", "command_ranks"];

/// Parameters per INSERT: well under PostgreSQL's 65,535, and rows enough to save round trips.
const PARAMS_PER_INSERT: usize = 4000;

/// One column value of one row.
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Flag(Option<bool>),
}

impl Store {
    /// Copies this SQLite store into the empty PostgreSQL database at `url`; see
    /// [`crate::admin::migrate_to`] for the rules.
    pub(crate) async fn copy_to_postgres(&self, url: &str) -> Result<Vec<TableCount>> {
        if self.backend != Backend::Sqlite {
            return Err(Error::Invalid(
                "the source must be a SQLite store".to_owned(),
            ));
        }
        refuse_foreign_tables(url).await?;
        let target = Self::connect(url).await?;
        let res = self.copy_rows(&target).await;
        target.close().await;
        res
    }

    async fn copy_rows(&self, target: &Self) -> Result<Vec<TableCount>> {
        if target.backend != Backend::Postgres {
            return Err(Error::Invalid(
                "the target must be a PostgreSQL database".to_owned(),
            ));
        }
        for table in TABLES.iter().filter(|t| !SEEDED.contains(&t.name)) {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.name);
            let used: Flag = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&target.pool)
                .await?;
            if used.0 {
                return Err(Error::Invalid(format!(
                    "the target database is not empty: {} has rows",
                    table.name
                )));
            }
        }
        let mut src = self.pool.begin().await?;
        let mut dst = target.pool.begin().await?;
        for name in SEEDED {
            let sql = format!("DELETE FROM {name}");
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *dst).await?;
        }
        let mut counts = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let rows = copy_table(table, &mut src, &mut dst).await?;
            if let Some(col) = table.identity {
                // The next id is one past the highest copied, as SQLite would have given.
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', '{col}'), \
                     COALESCE(MAX({col}), 0) + 1, false) FROM {0}",
                    table.name
                );
                sqlx::query(AssertSqlSafe(sql)).execute(&mut *dst).await?;
            }
            counts.push(TableCount {
                table: table.name,
                rows,
            });
        }
        dst.commit().await?;
        src.rollback().await?;
        Ok(counts)
    }
}

/// Refuses a target that holds tables other than this schema's (another application's
/// data, or a different schema version's leftovers), before anything is written to it.
async fn refuse_foreign_tables(url: &str) -> Result<()> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Invalid(
            "the target must be a postgres:// or postgresql:// URL".to_owned(),
        ));
    }
    let mut conn = PgConnection::connect(url).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() ORDER BY table_name",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    let ours = |t: &str| t == "_sqlx_migrations" || TABLES.iter().any(|k| k.name == t);
    match tables.iter().find(|t| !ours(t)) {
        Some(t) => Err(Error::Invalid(format!(
            "the target database is not empty: it has a table {t:?}"
        ))),
        None => Ok(()),
    }
}

/// Copies one table in batches; returns its row count.
async fn copy_table(
    table: &Table,
    src: &mut sqlx::AnyConnection,
    dst: &mut sqlx::AnyConnection,
) -> Result<u64> {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let columns = columns.join(", ");
    // Names come from TABLES only, never from data: the statements are fixed text.
    let select = format!(
        "SELECT {columns} FROM {} ORDER BY {}",
        table.name, table.columns[0].0
    );
    let per_batch = (PARAMS_PER_INSERT / table.columns.len()).max(1);
    let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut *src);
    let mut batch: Vec<Value> = Vec::with_capacity(per_batch * table.columns.len());
    let mut n_rows = 0u64;
    while let Some(row) = rows.try_next().await? {
        read_row(table, &row, &mut batch)?;
        n_rows += 1;
        if batch.len() >= per_batch * table.columns.len() {
            insert_batch(table, &columns, &mut batch, dst).await?;
        }
    }
    if !batch.is_empty() {
        insert_batch(table, &columns, &mut batch, dst).await?;
    }
    Ok(n_rows)
}

fn read_row(table: &Table, row: &AnyRow, out: &mut Vec<Value>) -> Result<()> {
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        out.push(match kind {
            Int => Value::Int(row.try_get(i)?),
            Text => Value::Text(row.try_get(i)?),
            Blob => Value::Blob(row.try_get(i)?),
            Bool => Value::Flag(row.try_get::<Option<Flag>, _>(i)?.map(|f| f.0)),
        });
    }
    Ok(())
}

/// Inserts the rows in `batch` (column values row after row) and empties it.
async fn insert_batch(
    table: &Table,
    columns: &str,
    batch: &mut Vec<Value>,
    dst: &mut sqlx::AnyConnection,
) -> Result<()> {
    let width = table.columns.len();
    let mut sql = format!("INSERT INTO {} ({columns}) VALUES ", table.name);
    for row in 0..batch.len() / width {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..width {
            let sep = if col == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}${}", row * width + col + 1);
        }
        sql.push(')');
    }
    // The text varies with the batch's length: not worth a prepared-statement cache slot.
    let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for value in batch.drain(..) {
        query = match value {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Blob(v) => query.bind(v),
            Value::Flag(v) => query.bind(v),
        };
    }
    query.execute(&mut *dst).await?;
    Ok(())
}

#[cfg(test)]
mod tests;
