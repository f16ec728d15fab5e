//! Groups and command ranks across live sessions: an admin changes groups, ranks and command
//! ranks, and the affected sessions get MY_INFO and exactly the command-set difference.

use mrci_tests::{TestClient, TestHost};

const PW: &str = "Gr0up-tests!";

async fn logged_in(host: &TestHost, user: &str) -> anyhow::Result<TestClient> {
    let mut client = TestClient::connect(host.addr).await?;
    client.login(user, PW).await?;
    Ok(client)
}

#[tokio::test]
async fn group_and_rank_changes_reach_the_affected_sessions() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    host.add_user("bob", PW, "users").await?;
    host.add_user("carl", PW, "users").await?;
    let mut admin = logged_in(&host, "root_admin").await?;
    let mut bob = logged_in(&host, "bob").await?;
    let mut carl = logged_in(&host, "carl").await?;
    assert!(!bob.commands.contains_key("host_info"));

    assert!(
        admin
            .ok("add_group", "-name staff")
            .await?
            .contains("host rank 2")
    );
    admin.ok("set_group", "-user bob -group staff").await?;
    let info = bob.next_my_info().await?;
    assert_eq!(info.host_rank, 2);
    assert!(bob.ok("my_info", "").await?.contains("staff"));

    // Raising staff to rank 1 gives bob the rank-1 commands.
    admin.ok("set_group_rank", "-name staff -rank 1").await?;
    assert_eq!(bob.next_my_info().await?.host_rank, 1);
    bob.until_command("host_info", true).await?;
    bob.until_command("ls_groups", true).await?;
    bob.until_command("set_group", true).await?;
    // Staff is now level with the admin, so the admin can no longer change it.
    let err = admin
        .refused("set_group_rank", "-name staff -rank 3")
        .await?;
    assert!(err.contains("not below your rank"), "{err}");
    // Bob (rank 1) cannot act on another rank-1 account.
    let err = bob
        .refused("set_group", "-user root_admin -group users")
        .await?;
    assert!(err.contains("not below your rank"), "{err}");

    // A command rank opens host_info to rank 2.
    admin
        .ok("add_ranked_cmd", "-command host_info -rank 2")
        .await?;
    carl.until_command("host_info", true).await?;
    assert!(carl.ok("host_info", "").await?.contains("sessions"));
    let err = admin
        .refused("add_ranked_cmd", "-command host_info -rank 3")
        .await?;
    assert!(err.contains("already has a rank"), "{err}");
    assert!(admin.ok("ls_ranked_cmds", "").await?.contains("host_info"));

    // Renaming carl's group reaches carl.
    admin
        .ok("rename_group", "-name users -new_name members")
        .await?;
    carl.next_my_info().await?;
    assert!(carl.ok("my_info", "").await?.contains("members"));

    // Moving everyone to a rank-3 group takes host_info away again.
    admin.ok("add_group", "-name crew -rank 3").await?;
    assert!(
        admin
            .ok("trans_group", "-src members -dst crew")
            .await?
            .contains("Moved 1 users")
    );
    assert_eq!(carl.next_my_info().await?.host_rank, 3);
    carl.until_command("host_info", false).await?;

    let err = admin.refused("rm_group", "-name crew").await?;
    assert!(err.contains("members"), "{err}");
    let err = admin.refused("rm_group", "-name members").await?;
    assert!(err.contains("built-in"), "the initial group stays: {err}");
    admin.ok("rm_ranked_cmd", "-command host_info").await?;
    let err = admin.refused("rm_ranked_cmd", "-command host_info").await?;
    assert!(err.contains("no rank"), "{err}");
    host.shutdown().await
}

#[tokio::test]
async fn table_filters_are_literal_and_page() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    host.add_user("root_admin", PW, "admin").await?;
    let mut admin = logged_in(&host, "root_admin").await?;
    for attempt in [
        "' OR 1=1 --",
        "%",
        "_",
        "\" OR \"\"=\"",
        "x'; DROP TABLE groups; --",
    ] {
        let args = mrci_proto::args::ArgsBuilder::new()
            .arg("-group_name", attempt)
            .build();
        let out = admin.ok("ls_groups", &args).await?;
        assert!(out.contains("No matching rows"), "{attempt}: {out}");
    }
    assert!(admin.ok("ls_groups", "").await?.contains("admin"));
    // 60 groups page at 50 rows.
    for i in 0..60 {
        admin.ok("add_group", &format!("-name g{i:02}")).await?;
    }
    let id = admin.id("ls_groups")?;
    admin
        .send(mrci_proto::Frame::text(
            id,
            mrci_proto::BranchId(0),
            "-group_name g",
        ))
        .await?;
    let prompt = admin.expect(id, mrci_proto::TypeId::TEXT).await?;
    assert!(prompt.contains("page 1 of 2"), "{prompt}");
    admin
        .send(mrci_proto::Frame::text(id, mrci_proto::BranchId(0), ""))
        .await?;
    let rest = admin.collect(id, mrci_proto::BranchId(0)).await?;
    assert!(rest.iter().any(|(_, t)| t.contains("g59")), "{rest:?}");
    host.shutdown().await
}
