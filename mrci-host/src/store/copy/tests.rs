//! Tests of the SQLite-to-PostgreSQL copy: [`TABLES`] matches both schemas, a populated host
//! reads back the same through `Store` after `admin::migrate_to`, ids continue after the
//! copied ones, and non-empty targets are refused untouched.

use std::collections::BTreeSet;

use super::*;
use crate::{
    Config, admin,
    store::{
        INTERNAL_MODULE,
        testing::{store_tests, with_pg_schema},
    },
};

store_tests! {
    async fn tables_list_every_column_of_the_schema(store) {
        let sql = match store.backend() {
            Backend::Sqlite => {
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' \
                 AND m.name <> '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'"
            }
        };
        let found: BTreeSet<(String, String)> = sqlx::query_as(sql)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
        let listed: BTreeSet<(String, String)> = TABLES
            .iter()
            .flat_map(|t| t.columns.iter().map(|(c, _)| (t.name.to_owned(), (*c).to_owned())))
            // SQLite's rowid is implicit; it lists no such column.
            .filter(|(t, c)| {
                store.backend() == Backend::Postgres || !(t == "modules" && c == "rowid")
            })
            .collect();
        assert_eq!(found, listed);
    }
}

/// Fills a store with a little of everything, with gaps in the ids; returns the user names.
async fn populate(store: &Store) -> Vec<&'static str> {
    store.add_group("staff", 3).await.unwrap();
    store.add_group("temp", 4).await.unwrap();
    store
        .remove_group(&store.group("temp").await.unwrap().unwrap())
        .await
        .unwrap();
    store.add_group("crew", 5).await.unwrap();
    let mk = |name, email, group| store.create_user(name, email, group, "phc", false, false);
    let alice = mk("Alice", Some("alice@example.org"), "admin")
        .await
        .unwrap();
    let bob = mk("bob", None, "staff").await.unwrap();
    let carol = mk("carol", Some("Carol@Example.org"), "users")
        .await
        .unwrap();
    let dave = mk("dave", None, "users").await.unwrap();
    store.set_password(&alice, "phc2", true).await.unwrap();
    store.set_display_name(&bob, "Bob B.").await.unwrap();
    store.set_locked(&carol, true).await.unwrap();
    store.set_email_verified(&carol, true).await.unwrap();
    let limits = crate::config::Security {
        max_failed_logins: 1,
        ..Default::default()
    };
    store
        .record_login_failure(&carol, "10.0.0.8", 1000, &limits)
        .await
        .unwrap();
    store
        .log_auth(Some(&dave), "10.0.0.9", "app", false, "wrong password", 5)
        .await
        .unwrap();
    store
        .log_auth(Some(&alice), "10.0.0.1", "app", true, "ok", 6)
        .await
        .unwrap();
    store
        .log_recovery(None, "10.0.0.2", "app", false, "unknown", 7)
        .await
        .unwrap();
    store.delete_user(&dave).await.unwrap();
    store
        .log_ip("10.0.0.1", "ab", "app", "Session Active", 8)
        .await
        .unwrap();
    store
        .log_ip("10.0.0.1", "ab", "app", "Session Ended", 9)
        .await
        .unwrap();

    let lobby = store
        .add_channel("Lobby", &alice, 10)
        .await
        .unwrap()
        .unwrap();
    let gone = store
        .add_channel("Gone", &alice, 10)
        .await
        .unwrap()
        .unwrap();
    store.remove_channel(gone).await.unwrap();
    store.add_channel("Club", &bob, 10).await.unwrap().unwrap();
    store.invite(lobby, &bob).await.unwrap();
    store.accept_invite(lobby, &bob).await.unwrap();
    store.set_member_level(lobby, &bob, lv(3)).await.unwrap();
    store.invite(lobby, &carol).await.unwrap();
    for name in ["a", "b", "c"] {
        store.add_sub_channel(lobby, name, 10).await.unwrap();
    }
    store.remove_sub_channel(lobby, 1).await.unwrap();
    store.set_sub_channel_level(lobby, 2, lv(5)).await.unwrap();
    store.set_sub_channel_active(lobby, 0, true).await.unwrap();
    store.add_rdonly_flag(lobby, 0, lv(4)).await.unwrap();
    store.add_rdonly_flag(lobby, 200, lv(5)).await.unwrap();

    store.set_command_rank("/opt/mod", "Foo", 3).await.unwrap();
    store
        .remove_command_rank(INTERNAL_MODULE, "cast")
        .await
        .unwrap();
    store.add_ban("10.0.0.7", 100, Some(200)).await.unwrap();
    store.add_ban("2001:db8::1", 100, None).await.unwrap();
    store.ban("10.9.0.0/16", 100, None, "lab").await.unwrap();
    store
        .set_host_setting("limits.max_sessions", Some("7"), 100)
        .await
        .unwrap();
    // Insertion order differs from name order: the copy must keep it.
    store.add_module("/opt/b", "session").await.unwrap();
    store.add_module("/opt/a", "once").await.unwrap();
    store
        .set_setting("reset_subject", Some("Hello"))
        .await
        .unwrap();
    store
        .put_recovery_token(&alice, b"token", 10, 100)
        .await
        .unwrap();
    store.recovery_attempt_failed(&alice).await.unwrap();
    sqlx::query(
        "INSERT INTO email_verifications (user_id, code_hash, expires_at) VALUES ($1, $2, 50)",
    )
    .bind(&carol.0[..])
    .bind(&b"code"[..])
    .execute(&store.pool)
    .await
    .unwrap();
    vec!["Alice", "bob", "carol"]
}

/// Everything the store shows about the populated data, as text.
async fn snapshot(store: &Store, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for name in names {
        let user = store.find_user(name).await.unwrap().unwrap();
        ids.push(user.id);
        out.push(format!("{user:?}"));
        out.push(format!(
            "{:?}",
            store.user_channel_rows(&user.id).await.unwrap()
        ));
        out.push(format!(
            "{:?}",
            store.recovery_token(&user.id).await.unwrap()
        ));
        out.push(format!("{:?}", store.auth_log_count(name).await.unwrap()));
    }
    out.push(format!("{:?}", store.list_users("", "").await.unwrap()));
    out.push(format!("{:?}", store.list_groups("", "").await.unwrap()));
    for channel in store.find_channels("", None).await.unwrap() {
        out.push(format!("{channel:?}"));
        out.push(format!(
            "{:?}",
            store.members(channel.id, "", "").await.unwrap()
        ));
        out.push(format!(
            "{:?}",
            store.sub_channels(channel.id).await.unwrap()
        ));
        out.push(format!(
            "{:?}",
            store.rdonly_flags(channel.id).await.unwrap()
        ));
    }
    out.push(format!(
        "{:?}",
        store.list_command_ranks("", "").await.unwrap()
    ));
    out.push(format!("{:?}", store.bans().await.unwrap()));
    out.push(format!("{:?}", store.host_settings().await.unwrap()));
    out.push(format!("{:?}", store.list_auth_log("", "").await.unwrap()));
    out.push(format!("{:?}", store.list_act_log("", "").await.unwrap()));
    out.push(format!("{:?}", store.modules().await.unwrap()));
    out.push(format!(
        "{:?}",
        store.setting("reset_subject").await.unwrap()
    ));
    let codes: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
        "SELECT code_hash, expires_at, attempts FROM email_verifications WHERE user_id = $1",
    )
    .bind(&ids[2].0[..])
    .fetch_all(&store.pool)
    .await
    .unwrap();
    out.push(format!("{codes:?}"));
    out
}

fn config_in(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

#[tokio::test]
async fn a_populated_host_reads_back_the_same_from_postgres() {
    with_pg_schema(|url| async move {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let source = Store::open(&config.db_path()).await.unwrap();
        let names = populate(&source).await;
        let before = snapshot(&source, &names).await;
        source.close().await;

        let counts = admin::migrate_to(&config, &url).await.unwrap();
        let count = |table| counts.iter().find(|c| c.table == table).unwrap().rows;
        assert_eq!(counts.len(), TABLES.len());
        assert_eq!(
            (count("users"), count("groups"), count("channels")),
            (3, 4, 2)
        );
        assert_eq!((count("auth_log"), count("sub_channels")), (3, 2));
        assert_eq!(count("email_verifications"), 1);

        let target = Store::connect(&url).await.unwrap();
        assert_eq!(snapshot(&target, &names).await, before);
        // Ids continue after the copied ones; nothing collides.
        let alice = target.find_user("alice").await.unwrap().unwrap().id;
        let max = target
            .find_channels("", None)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .max();
        let next = target
            .add_channel("New", &alice, 10)
            .await
            .unwrap()
            .unwrap();
        assert!(Some(next) > max);
        let groups = target.list_groups("", "").await.unwrap();
        target.add_group("fresh", 2).await.unwrap();
        let fresh = target.group("fresh").await.unwrap().unwrap().id;
        assert!(groups.iter().all(|g| g.id < fresh));
        target
            .log_ip("10.0.0.1", "cd", "app", "Later", 10)
            .await
            .unwrap();
        assert_eq!(
            target.ip_history("10.0.0.1", 1).await.unwrap()[0].1,
            "Later"
        );
        target.add_module("/opt/c", "session").await.unwrap();
        let paths: Vec<String> = target
            .modules()
            .await
            .unwrap()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(
            target.modules().await.unwrap()[1].1,
            "once",
            "the listing is copied"
        );
        assert_eq!(paths, ["/opt/b", "/opt/a", "/opt/c"]);
        target.close().await;

        let again = admin::migrate_to(&config, &url).await;
        assert!(matches!(again, Err(Error::Invalid(m)) if m.contains("not empty")));
    })
    .await;
}

#[tokio::test]
async fn a_migrated_but_unused_target_is_empty_enough() {
    with_pg_schema(|url| async move {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let source = Store::open(&config.db_path()).await.unwrap();
        source.add_group("only-here", 4).await.unwrap();
        source.close().await;
        // A host started once on the target: migrated and seeded, no data.
        Store::connect(&url).await.unwrap().close().await;
        admin::migrate_to(&config, &url).await.unwrap();
        let target = Store::connect(&url).await.unwrap();
        assert!(target.group("only-here").await.unwrap().is_some());
        assert_eq!(
            target
                .command_ranks(INTERNAL_MODULE)
                .await
                .unwrap()
                .get("cast"),
            Some(&2)
        );
        target.close().await;
    })
    .await;
}

#[tokio::test]
async fn foreign_tables_and_missing_sources_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let missing = admin::migrate_to(&config, "postgres://127.0.0.1:1/none").await;
    assert!(matches!(missing, Err(Error::Invalid(m)) if m.contains("no SQLite database")));
    Store::open(&config.db_path()).await.unwrap().close().await;
    let sqlite_target = format!("sqlite://{}", dir.path().join("other.db").display());
    assert!(matches!(
        admin::migrate_to(&config, &sqlite_target).await,
        Err(Error::Invalid(_))
    ));
    with_pg_schema(|url| async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE other_app (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        let res = admin::migrate_to(&config, &url).await;
        assert!(matches!(res, Err(Error::Invalid(m)) if m.contains("other_app")));
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(tables, 1, "nothing was created");
        conn.close().await.unwrap();
    })
    .await;
}

/// A channel level from its number (test shorthand).
fn lv(n: u8) -> mrci_proto::ChLevel {
    mrci_proto::ChLevel::new(n).expect("a level 1-5")
}
