//! Graceful shutdown: a command waiting for input when the host stops still ends with IDLE,
//! and the TLS connection is closed cleanly.

use mrci_proto::{BranchId, Frame, TypeId};
use mrci_tests::{TestClient, TestHost};

#[tokio::test]
async fn shutdown_finishes_the_command_in_flight() -> anyhow::Result<()> {
    let host = TestHost::start().await?;
    let mut client = TestClient::connect(host.addr).await?;
    let id = client.id("auth")?;
    client
        .send(Frame::text(id, BranchId(4), "-user someone"))
        .await?;
    let prompt = client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::PRIV_TEXT)
        .await?;
    assert!(!prompt.is_empty());
    let stopping = tokio::spawn(host.shutdown());
    // The instance is ended and its IDLE still reaches the client before the close.
    let frames = client
        .until(|f| f.cmd_id == id && f.type_id == TypeId::IDLE)
        .await?;
    assert_eq!(frames.last().map(|f| f.branch_id), Some(BranchId(4)));
    assert!(client.closed().await);
    stopping.await??;
    Ok(())
}
