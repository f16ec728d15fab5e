//! Many sessions at once.

use mrci_tests::{TestClient, TestHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sessions_can_be_open_at_once() -> anyhow::Result<()> {
    let host = TestHost::start_with(|c| {
        c.limits.max_sessions = 1100;
        c.limits.max_unauthenticated = 1100;
        c.limits.max_unauthenticated_per_address = 1100;
        c.tls.allow_plaintext_loopback = true;
    })
    .await?;
    let mut clients = Vec::with_capacity(1000);
    for chunk in 0..10 {
        let batch: Vec<_> = (0..100)
            .map(|_| tokio::spawn(TestClient::connect(host.addr)))
            .collect();
        for task in batch {
            clients.push(task.await??);
        }
        assert_eq!(clients.len(), (chunk + 1) * 100);
    }
    assert_eq!(host.ctx.bus.stats().sessions, 1000);
    let out = clients[999].run("my_info", "").await?;
    assert!(!out.is_empty());
    drop(clients);
    host.shutdown().await
}
