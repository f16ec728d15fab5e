//! Tests of opening the store: migrations, SQLite's settings, URLs, existing databases, and
//! the concurrency rules both backends must keep under simultaneous writers.

use futures::future::join_all;
use mrci_proto::UserId;
use sqlx::Row;

use super::{
    LoginBlock,
    backend::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS},
    testing::{store_tests, with_pg_schema},
    *,
};
use crate::{Error, config::Security};

/// The SHA-384 checksums SQLite databases recorded when they applied migrations 1–4 from
/// `migrations/`: the moved files must keep them, or existing hosts refuse to start.
const APPLIED_CHECKSUMS: [&str; 4] = [
    "40e6ad038663270060ed866f903cbf023172a8f74808e808b6955fe585ff5a2a1c01783ecdb0fa6b96efa4d8cf0f817d",
    "1af59b982faa0a919b2e647f4390723e83a11856040729cf09dcc22a90c2fcf2c8aa27d8c3f51de1d91d2b1a65424cdb",
    "7d3a4e77eedcabf62248c0e94d202bb3f30cc3fad464395eda1b96fd2e75ad9f9b00bd9cc2ce40bccd4bdbae6da7617c",
    "20e0688ba4ec5c0a8bc1af6d7c0ed00308364cf5099e083572338ceff57579eeba27d498cdb5957484a959485962a6a4",
];

#[test]
fn sqlite_migrations_keep_their_checksums() {
    let checksums: Vec<String> = SQLITE_MIGRATIONS
        .iter()
        .take(APPLIED_CHECKSUMS.len())
        .map(|m| hex::encode(&m.checksum))
        .collect();
    assert_eq!(checksums, APPLIED_CHECKSUMS);
}

#[test]
fn both_backends_number_their_migrations_alike() {
    let versions = |m: &sqlx::migrate::Migrator| {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
}

#[tokio::test]
async fn sqlite_migrates_once_and_keeps_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new-dir").join("m.db");
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.close().await;
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.user_counts().await.unwrap(), (0, 0));
    // Every pooled connection, not only the first, has the settings.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(store.pool.acquire().await.unwrap());
    }
    for conn in &mut conns {
        let row = sqlx::query(
            "SELECT (SELECT journal_mode FROM pragma_journal_mode), \
             (SELECT synchronous FROM pragma_synchronous), \
             (SELECT foreign_keys FROM pragma_foreign_keys), \
             (SELECT timeout FROM pragma_busy_timeout)",
        )
        .fetch_one(&mut **conn)
        .await
        .unwrap();
        let mode: String = row.try_get(0).unwrap();
        let values: Vec<i64> = (1..4).map(|i| row.try_get(i).unwrap()).collect();
        assert_eq!((mode.as_str(), values), ("wal", vec![1, 1, 5000]));
    }
}

#[tokio::test]
async fn sqlite_urls_and_awkward_paths() {
    let dir = tempfile::tempdir().unwrap();
    // URL delimiters and an escape-like sequence in the name are file name characters.
    let path = dir.path().join("a dir #1").join("my%41?.db");
    let store = Store::open(&path).await.unwrap();
    store.add_module("/opt/m", "session").await.unwrap();
    store.close().await;
    assert!(path.is_file(), "the file has exactly the name asked for");
    let url = format!("sqlite://{}", dir.path().join("via-url.db").display());
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.close().await;
    assert!(dir.path().join("via-url.db").is_file());
    assert!(matches!(
        Store::connect("mysql://localhost/x").await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn postgres_migrates_once() {
    with_pg_schema(|url| async move {
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        store.close().await;
        let store = Store::connect(&url).await.unwrap();
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        store.close().await;
        assert_eq!(applied, POSTGRES_MIGRATIONS.iter().count() as i64);
    })
    .await;
}

#[test]
fn like_escape_quotes_wildcards() {
    assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
}

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(name, None, "users", "phc", false, false)
        .await
        .unwrap()
}

store_tests! {
    async fn migrations_seed_groups_and_no_account(store) {
        let groups: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, host_rank FROM groups ORDER BY group_id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(groups, [("admin".to_owned(), 1), ("users".to_owned(), 2)]);
        assert_eq!(store.user_counts().await.unwrap(), (0, 0), "no default account");
        // New groups get fresh ids after the seeded ones.
        store.add_group("staff", 3).await.unwrap();
        assert_eq!(store.group("staff").await.unwrap().unwrap().id, 3);
    }

    async fn concurrent_sub_channels_get_distinct_lowest_ids(store) {
        let owner = user(&store, "owner").await;
        let ch = store.add_channel("Busy", &owner, 5).await.unwrap().unwrap();
        let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        let ids = join_all(names.iter().map(|n| store.add_sub_channel(ch, n, 100))).await;
        let mut ids: Vec<u8> = ids.into_iter().map(|r| r.unwrap().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..8).collect::<Vec<u8>>());
    }

    async fn concurrent_owner_changes_leave_one_owner(store) {
        let owner = user(&store, "owner").await;
        let ch = store.add_channel("Crown", &owner, 5).await.unwrap().unwrap();
        let mut members = Vec::new();
        for i in 0..4 {
            let id = user(&store, &format!("m{i}")).await;
            assert!(store.invite(ch, &id).await.unwrap());
            assert!(store.accept_invite(ch, &id).await.unwrap());
            members.push(id);
        }
        let results = join_all(members.iter().map(|m| store.set_member_level(ch, m, lv(1)))).await;
        // Each transfer demoted exactly the owner before it: five owners in a chain.
        let demoted: Vec<UserId> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert!(demoted.contains(&owner));
        let owners = store.members(ch, "", "").await.unwrap();
        let owners: Vec<_> = owners.iter().filter(|m| m.level == lv(1)).collect();
        assert_eq!(owners.len(), 1);
        assert!(!demoted.contains(&owners[0].user_id), "the last owner was never demoted");
    }

    async fn a_recovery_token_is_consumed_once(store) {
        let id = user(&store, "fay").await;
        store.put_recovery_token(&id, b"hash", 1, 100).await.unwrap();
        let tries = join_all((0..8).map(|_| store.consume_recovery_token(&id, b"hash"))).await;
        let won = tries.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(won, 1);
        assert_eq!(store.recovery_token(&id).await.unwrap(), None);
    }

    async fn concurrent_channels_respect_the_membership_limit(store) {
        let owner = user(&store, "gus").await;
        let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
        let made = join_all(names.iter().map(|n| store.add_channel(n, &owner, 3))).await;
        let made = made.into_iter().filter(|r| r.as_ref().unwrap().is_some()).count();
        assert_eq!(made, 3);
        assert_eq!(store.member_channels(&owner).await.unwrap().len(), 3);
    }

    async fn concurrent_failures_lock_by_the_count(store) {
        let id = user(&store, "hal").await;
        let limits = Security {
            max_failed_logins: 3,
            lockout_secs: 60,
            ..Security::default()
        };
        let locks = join_all((0..6).map(|_| store.record_login_failure(&id, "10.0.0.1", 100, &limits))).await;
        let mut locks: Vec<LoginBlock> = locks.into_iter().filter_map(|r| r.unwrap()).collect();
        locks.sort_by_key(|b| match b {
            LoginBlock::Address(t) | LoginBlock::Account(t) => *t,
        });
        assert_eq!(
            locks,
            [LoginBlock::Address(160), LoginBlock::Address(220)],
            "the 3rd and the 6th failure lock, the second twice as long"
        );
        assert_eq!(store.user_by_id(&id).await.unwrap().unwrap().failed_logins, 6);
    }

    async fn names_are_unique_whatever_their_case(store) {
        let tries = join_all(["Zed", "zed", "ZED"].map(|n| {
            store.create_user(n, None, "users", "phc", false, false)
        }))
        .await;
        assert_eq!(tries.iter().filter(|r| r.is_ok()).count(), 1);
        store
            .create_user("ivy", Some("Ivy@Example.org"), "users", "phc", false, false)
            .await
            .unwrap();
        assert!(matches!(
            store.create_user("ivy2", Some("ivy@example.ORG"), "users", "phc", false, false).await,
            Err(Error::Invalid(m)) if m.contains("taken")
        ));
        assert!(store.add_channel("Hall", &user(&store, "jon").await, 5).await.unwrap().is_some());
        assert!(store.channel("hALL").await.unwrap().is_some());
    }
}

/// A channel level from its number (test shorthand).
fn lv(n: u8) -> mrci_proto::ChLevel {
    mrci_proto::ChLevel::new(n).expect("a level 1-5")
}
