//! The operator's side of a cluster with the real binary: `mrci host migrate --to` moves a
//! SQLite host's data into a fresh PostgreSQL database, two `mrci host run` processes share
//! it over NATS, `mrci host status` lists them, and a node killed with SIGKILL drops out of
//! the list while the other carries on. Skipped with one visible line without PostgreSQL
//! and NATS.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
};

use mrci_tests::cluster::{Services, TestDb};

use super::support::mrci;

fn host(args: &[&str], config: &Path) -> Output {
    Command::new(mrci())
        .arg("host")
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("MRCI_CONFIG")
        .env_remove("MRCI_DATA_DIR")
        .output()
        .expect("run mrci host")
}

/// Starts `mrci host run -c config` and returns once it listens.
fn node(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    let mut child = Command::new(mrci())
        .args(["host", "run", "--listen", "127.0.0.1:0", "-c"])
        .arg(config)
        .env_remove("MRCI_CONFIG")
        .env_remove("MRCI_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn mrci host run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("the node exited before listening; see its log");
        };
        if line.starts_with("MRCI host listening on ") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn status_until(config: &Path, nodes: usize) -> String {
    // Each status listens for 2.5 heartbeats; a node just started may need one more round.
    for _ in 0..20 {
        let out = host(&["status"], config);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&format!("cluster:        {nodes} node(s) heard")) {
            return text;
        }
    }
    panic!("status never heard {nodes} nodes");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_then_two_nodes_share_the_data_and_status_lists_them() {
    let Some(services) = Services::find().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_dir = dir.path().join("single");
    let out = Command::new(mrci())
        .args(["host", "add-admin", "--data-dir"])
        .arg(&sqlite_dir)
        .arg("root_admin")
        .env_remove("MRCI_CONFIG")
        .output()
        .expect("add-admin");
    assert!(out.status.success(), "{out:?}");

    let db = TestDb::create(&services.pg).await.expect("fresh database");
    let single = dir.path().join("single.toml");
    std::fs::write(&single, format!("data_dir = {sqlite_dir:?}\n")).expect("config");
    let out = host(&["migrate", "--to", &db.url], &single);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("users"), "{text}");

    let prefix = format!("cli{}", std::process::id());
    let configs: Vec<_> = (1..=2)
        .map(|i| {
            let path = dir.path().join(format!("n{i}.toml"));
            let data = dir.path().join(format!("n{i}"));
            std::fs::write(
                &path,
                format!(
                    "data_dir = {data:?}\n[cluster]\ndatabase_url = {:?}\nnats_url = {:?}\nnode = \"n{i}\"\nsubject_prefix = \"{prefix}\"\nheartbeat_ms = 200\n",
                    db.url, services.nats
                ),
            )
            .expect("config");
            path
        })
        .collect();
    let mut n1 = node(&configs[0], &dir.path().join("n1.log"));
    let mut n2 = node(&configs[1], &dir.path().join("n2.log"));

    let text = status_until(&configs[0], 2);
    assert!(
        text.contains("accounts:       1 (1 with host rank 1)"),
        "the migrated admin is in the shared database: {text}"
    );
    assert!(
        text.contains("  n1: 0 sessions") && text.contains("  n2: 0 sessions"),
        "{text}"
    );

    // A node killed without warning stops being heard; the other carries on.
    n2.kill().expect("kill n2");
    n2.wait().expect("reap n2");
    let text = status_until(&configs[0], 1);
    assert!(
        text.contains("  n1: ") && !text.contains("  n2: "),
        "{text}"
    );

    n1.kill().expect("kill n1");
    n1.wait().expect("reap n1");
    db.drop_db().await.expect("drop the database");
}
