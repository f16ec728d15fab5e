//! Criterion benchmark of the store's backend seam: the same hot statements through
//! `mrci_host::Store` (sqlx's runtime-generic `Any` pool) and through a native sqlx pool of
//! the same database, so the difference is what `Any` costs per query. SQLite always;
//! PostgreSQL too when one answers at `MRCI_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), in a scratch schema dropped afterwards.
//!
//! The native statements mirror `store/users.rs` and `store/logs.rs` text for text, and the
//! native lookup decodes the same columns `Store::user_by_id` does.
#![forbid(unsafe_code)]

use std::{hint::black_box, time::Duration};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use mrci_host::Store;
use mrci_proto::UserId;
use sqlx::{
    Connection, Database, Executor, PgConnection, Pool, Row,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::runtime::Runtime;

/// `Store::user_by_id`'s statement.
const USER_BY_ID: &str = "SELECT u.user_id, u.user_name, COALESCE(u.email_address, '') AS email, \
     u.display_name, g.name AS group_name, g.host_rank, u.pw_hash, u.new_password_req, \
     u.new_name_req, u.locked_until, u.failed_logins, u.email_verified, u.locked, u.time_stamp \
     FROM users u JOIN groups g ON g.group_id = u.group_id WHERE u.user_id = $1";

/// `Store::log_ip`'s statement.
const LOG_IP: &str = "INSERT INTO ip_history (time_stamp, ip_address, session_id, app_name, \
     log_entry) VALUES ($1, $2, $3, $4, $5)";

fn store(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("bench.db");
    let (store, id) = runtime.block_on(seeded(Store::open(&path)));
    let native = runtime.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .expect("the native pool opens the same file")
    });
    let mut group = c.benchmark_group("store_sqlite");
    compare(&mut group, &runtime, &store, &native, &id);
    group.finish();
    runtime.block_on(async {
        native.close().await;
        store.close().await;
    });

    let pg_url = std::env::var("MRCI_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    if let Some((schema_url, schema)) = runtime.block_on(pg_schema(&pg_url)) {
        let (store, id) = runtime.block_on(seeded(Store::connect(&schema_url)));
        let native = runtime.block_on(async {
            PgPoolOptions::new()
                .max_connections(8)
                .connect(&schema_url)
                .await
                .expect("the native pool reaches the same schema")
        });
        let mut group = c.benchmark_group("store_postgres");
        compare(&mut group, &runtime, &store, &native, &id);
        group.finish();
        runtime.block_on(async {
            native.close().await;
            store.close().await;
            drop_schema(&pg_url, &schema).await;
        });
    }
}

/// Benchmarks the lookup and the insert through `Store` and through `native`.
fn compare<DB: Database>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    store: &Store,
    native: &Pool<DB>,
    id: &UserId,
) where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Decode<'q, DB>,
    for<'q> bool: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    group.bench_function("user_by_id/any", |b| {
        b.iter(|| {
            runtime
                .block_on(store.user_by_id(black_box(id)))
                .expect("lookup")
        });
    });
    group.bench_function("user_by_id/native", |b| {
        b.iter(|| runtime.block_on(native_user(native, black_box(id))));
    });
    group.bench_function("log_ip/any", |b| {
        b.iter(|| {
            runtime
                .block_on(store.log_ip("10.0.0.1", "ab01", "bench", "Session Active", 1))
                .expect("insert");
        });
    });
    group.bench_function("log_ip/native", |b| {
        b.iter(|| {
            runtime.block_on(async {
                sqlx::query(LOG_IP)
                    .bind(1i64)
                    .bind("10.0.0.1")
                    .bind("ab01")
                    .bind("bench")
                    .bind("Session Active")
                    .execute(native)
                    .await
                    .expect("insert")
            })
        });
    });
}

/// The native lookup, decoding every column `Store::user_by_id` decodes.
async fn native_user<DB: Database>(native: &Pool<DB>, id: &UserId) -> usize
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Decode<'q, DB>,
    for<'q> bool: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let row = sqlx::query(USER_BY_ID)
        .bind(&id.0[..])
        .fetch_one(native)
        .await
        .expect("lookup");
    let user_id: Vec<u8> = row.try_get(0).expect("id");
    let texts: Vec<String> = [1, 2, 3, 4, 6]
        .into_iter()
        .map(|i| row.try_get(i).expect("text"))
        .collect();
    let numbers: Vec<i64> = [5, 10, 13]
        .into_iter()
        .map(|i| row.try_get(i).expect("number"))
        .collect();
    let flags: Vec<bool> = [7, 8, 11, 12]
        .into_iter()
        .map(|i| row.try_get(i).expect("flag"))
        .collect();
    let locked_until: Option<i64> = row.try_get(9).expect("lock");
    user_id.len() + texts.len() + numbers.len() + flags.len() + usize::from(locked_until.is_some())
}

/// The store, migrated, with one account to look up.
async fn seeded(open: impl Future<Output = mrci_host::Result<Store>>) -> (Store, UserId) {
    let store = open.await.expect("the store opens");
    let id = store
        .create_user(
            "alice",
            Some("alice@example.org"),
            "users",
            "phc",
            false,
            false,
        )
        .await
        .expect("an account");
    (store, id)
}

/// A fresh schema and the URL that selects it, or `None` when PostgreSQL is unreachable.
async fn pg_schema(base: &str) -> Option<(String, String)> {
    let mut conn = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(base))
        .await
        .ok()?
        .ok()?;
    let schema = format!("mrci_bench_{}", std::process::id());
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
    conn.execute(sqlx::AssertSqlSafe(sql)).await.ok()?;
    conn.close().await.ok()?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some((
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    ))
}

async fn drop_schema(base: &str, schema: &str) {
    let mut conn = PgConnection::connect(base).await.expect("PostgreSQL");
    let sql = format!("DROP SCHEMA {schema} CASCADE");
    conn.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("drop the bench schema");
}

criterion_group!(benches, store);
criterion_main!(benches);
