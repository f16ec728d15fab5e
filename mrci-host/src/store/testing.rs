//! The store tests' two backends: every test declared with [`store_tests!`] runs on a fresh
//! SQLite file, and on a fresh PostgreSQL schema when PostgreSQL answers at
//! `MRCI_TEST_PG` (default [`DEFAULT_PG_URL`]).
//!
//! Invariant: a PostgreSQL test owns its schema alone, and drops it afterwards even when the
//! test fails; when PostgreSQL is unreachable the PostgreSQL half passes without running and
//! says so once per test binary on stderr, past the test harness's output capture.

use std::{future::Future, io::Write, panic::AssertUnwindSafe, time::Duration};

use futures::FutureExt;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;

use super::Store;

/// Where the PostgreSQL store tests look when `MRCI_TEST_PG` is unset.
pub(crate) const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Declares store tests that take a `Store`: each becomes `sqlite::NAME` and
/// `postgres::NAME`, with the enclosing module's items in scope.
macro_rules! store_tests {
    ($(async fn $name:ident($store:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::store::testing::on_sqlite(|$store| async move $body).await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::store::testing::on_postgres(|$store| async move $body).await;
                }
            )*
        }
    };
}
pub(crate) use store_tests;

/// Runs `test` on a store over a new SQLite file in a temporary directory.
pub(crate) async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("test.db"))
        .await
        .expect("open store");
    test(store.clone()).await;
    store.close().await;
}

/// Runs `test` on a store over a new PostgreSQL schema, then drops the schema; returns at
/// once when PostgreSQL is unreachable.
pub(crate) async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    with_pg_schema(|url| async move {
        let store = Store::connect(&url)
            .await
            .expect("connect and migrate the test schema");
        test(store.clone()).await;
        store.close().await;
    })
    .await;
}

/// Runs `test` with the URL of a new, empty PostgreSQL schema, then drops the schema, also
/// when the test panics; returns at once when PostgreSQL is unreachable.
pub(crate) async fn with_pg_schema<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(scratch) = PgScratch::create().await else {
        return;
    };
    let outcome = AssertUnwindSafe(test(scratch.url.clone()))
        .catch_unwind()
        .await;
    scratch.drop_schema().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A uniquely named, empty schema in the test database, and the URL that makes it the
/// connection's only search path.
struct PgScratch {
    /// The base URL with the schema as search path.
    url: String,
    base: String,
    schema: String,
}

impl PgScratch {
    /// Creates a schema; `None` (after the one SKIPPED line) when PostgreSQL is unreachable.
    async fn create() -> Option<Self> {
        let base = reachable_pg().await.as_ref()?.clone();
        let schema = format!(
            "mrci_test_{}",
            hex::encode(crate::host::random_bytes::<8>())
        );
        let mut conn = PgConnection::connect(&base).await.expect("test database");
        let sql = format!("CREATE SCHEMA {schema}");
        conn.execute(sqlx::AssertSqlSafe(sql))
            .await
            .expect("create the test schema");
        conn.close().await.expect("close");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Self { url, base, schema })
    }

    /// Drops the schema and everything in it.
    async fn drop_schema(self) {
        let mut conn = PgConnection::connect(&self.base)
            .await
            .expect("test database");
        // The name is ours: "mrci_test_" and hex digits.
        let sql = format!("DROP SCHEMA {} CASCADE", self.schema);
        conn.execute(sqlx::AssertSqlSafe(sql))
            .await
            .expect("drop the test schema");
        conn.close().await.expect("close");
    }
}

/// The test database URL if PostgreSQL answers there; asked once per test binary.
async fn reachable_pg() -> &'static Option<String> {
    static REACHABLE: OnceCell<Option<String>> = OnceCell::const_new();
    REACHABLE
        .get_or_init(|| async {
            let url = std::env::var("MRCI_TEST_PG").unwrap_or_else(|_| DEFAULT_PG_URL.into());
            let probe = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url));
            match probe.await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Some(url)
                }
                _ => {
                    // Straight to the stream: the harness captures eprintln! of passing tests.
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED: PostgreSQL store tests (no PostgreSQL at {url})"
                    );
                    None
                }
            }
        })
        .await
}
