//! Target `session`: a byte stream written by a logged-in administrator to a real host.
//!
//! One host runs per process (plaintext loopback, a temporary SQLite data directory, cheap
//! password hashing, no per-address login limit) on a runtime whose threads are named
//! [`HOST_THREAD`]. For each input: an account `fuzzN` in the `admin` group is created, a new
//! client logs in with it, writes the input, closes its sending side and reads until the host
//! closes the connection; then a second, new client must complete the handshake and get an
//! answer from `my_info`; then the account is deleted.
//!
//! Invariant checked: no host thread panics (under libFuzzer its panic hook aborts the
//! process; under `cargo test` a hook counts panics on [`HOST_THREAD`] threads), the host ends
//! a session whose client has closed its side, and one client's bytes never stop the host
//! serving the next.
//!
//! Decisions: frames addressed to `add_mod` get a command id no command has before they are
//! written, because `add_mod` starts any executable of the machine as a module. When logging
//! in fails, an earlier input may have used its administrator rights to make that
//! impossible (renamed the group, changed the ranks), so the harness starts a fresh host once
//! and tries again; a second failure is a failure.

use std::{
    collections::HashMap,
    sync::{
        Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, ensure};
use mrci_proto::{CmdId, Frame};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    runtime::Runtime,
};

use crate::{ClientStream, PATIENCE, TestClient, TestHost};

/// The name of every thread of the host's runtime.
const HOST_THREAD: &str = "mrci-fuzz-host";

/// The password of every per-input account.
const PASSWORD: &str = "Fuzz-Sess10n!";

/// The command id written instead of `add_mod`'s: the top of the range, never assigned.
const UNUSED_CMD: CmdId = CmdId(u16::MAX);

/// How long one input may take in all; only a hang reaches it.
const ROUND_LIMIT: Duration = Duration::from_secs(90);

/// Panics seen on [`HOST_THREAD`] threads since the process started.
static HOST_PANICS: AtomicUsize = AtomicUsize::new(0);

struct Harness {
    runtime: Runtime,
    host: Mutex<TestHost>,
    rounds: AtomicU64,
}

/// See the module doc.
pub fn session(data: &[u8]) {
    let harness = harness();
    let mut host = harness.host.lock().unwrap_or_else(PoisonError::into_inner);
    let n = harness.rounds.fetch_add(1, Ordering::Relaxed);
    let outcome = harness
        .runtime
        .block_on(async { tokio::time::timeout(ROUND_LIMIT, round(&mut host, n, data)).await });
    match outcome {
        Err(_) => panic!("one input took longer than {ROUND_LIMIT:?}"),
        Ok(Err(e)) => panic!("{e:#}"),
        Ok(Ok(())) => {}
    }
    let panics = HOST_PANICS.load(Ordering::SeqCst);
    assert_eq!(panics, 0, "a host thread panicked (its message is above)");
}

/// The command ids a freshly logged-in administrator is given, by name: what a session
/// input must use to reach a command (for writing seeds).
///
/// # Errors
/// When the harness host cannot log an administrator in.
pub fn session_command_ids() -> anyhow::Result<HashMap<String, CmdId>> {
    let harness = harness();
    let host = harness.host.lock().unwrap_or_else(PoisonError::into_inner);
    let n = harness.rounds.fetch_add(1, Ordering::Relaxed);
    harness.runtime.block_on(async {
        let client = log_in(&host, n).await?;
        let ids = client.commands.clone();
        close(client.into_stream().0, &[]).await?;
        forget_user(&host, n).await;
        Ok(ids)
    })
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        count_host_panics();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(HOST_THREAD)
            .enable_all()
            .build()
            .expect("a tokio runtime for the host");
        let host = runtime
            .block_on(start_host())
            .expect("the session fuzzing host starts");
        Harness {
            runtime,
            host: Mutex::new(host),
            rounds: AtomicU64::new(0),
        }
    })
}

/// Chains a panic hook that counts panics on the host's threads.
fn count_host_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(HOST_THREAD) {
            HOST_PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
}

async fn start_host() -> anyhow::Result<TestHost> {
    TestHost::start_with(|c| {
        c.tls.allow_plaintext_loopback = true;
        c.security.auth_attempts_per_minute = 0;
    })
    .await
}

async fn round(host: &mut TestHost, n: u64, data: &[u8]) -> anyhow::Result<()> {
    let client = match log_in(host, n).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("session fuzzing: logging in failed ({e:#}); starting a fresh host");
            let old = std::mem::replace(host, start_host().await?);
            old.shutdown().await?;
            log_in(host, n)
                .await
                .context("logging in to a fresh host")?
        }
    };
    let bytes = neutralise(data, client.commands.get("add_mod").copied());
    close(client.into_stream().0, &bytes)
        .await
        .context("the fuzzed session")?;
    probe(host).await?;
    forget_user(host, n).await;
    Ok(())
}

async fn log_in(host: &TestHost, n: u64) -> anyhow::Result<TestClient> {
    let user = format!("fuzz{n}");
    host.add_user(&user, PASSWORD, "admin").await?;
    let mut client = TestClient::connect(host.addr).await?;
    client.login(&user, PASSWORD).await?;
    Ok(client)
}

/// Deletes the round's account if it still exists under its name (best effort: the input may
/// have renamed or deleted it).
async fn forget_user(host: &TestHost, n: u64) {
    if let Ok(Some(user)) = host.ctx.store.find_user(&format!("fuzz{n}")).await {
        let _ = host.ctx.store.delete_user(&user.id).await;
    }
}

/// A new client connects and `my_info` answers.
async fn probe(host: &TestHost) -> anyhow::Result<()> {
    let mut client = TestClient::connect(host.addr)
        .await
        .context("a new client could not connect after the input")?;
    let out = client
        .ok("my_info", "")
        .await
        .context("my_info did not answer after the input")?;
    ensure!(!out.is_empty(), "my_info answered nothing");
    close(client.into_stream().0, &[]).await
}

/// Writes `bytes`, closes the sending side and reads until the host closes the connection.
async fn close(stream: ClientStream, bytes: &[u8]) -> anyhow::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write = async move {
        // The host may close first (an oversized frame, a logout that ends the session).
        let _ = wr.write_all(bytes).await;
        let _ = wr.shutdown().await;
    };
    let read = async move {
        let mut sink = vec![0u8; 16 * 1024];
        while let Ok(1..) = rd.read(&mut sink).await {}
    };
    tokio::time::timeout(PATIENCE, async { tokio::join!(write, read) })
        .await
        .with_context(|| {
            format!("the host kept the session open {PATIENCE:?} after the client closed its side")
        })?;
    Ok(())
}

/// Rewrites the command id of every frame addressed to `add_mod` (see the module doc),
/// walking the frames back to back as the host's decoder does.
fn neutralise(data: &[u8], add_mod: Option<CmdId>) -> Vec<u8> {
    let mut out = data.to_vec();
    let Some(add_mod) = add_mod else {
        return out;
    };
    let mut at = 0;
    while let Some(head) = out.get(at..at + Frame::HEADER_LEN) {
        let cmd = u16::from_le_bytes([head[1], head[2]]);
        let len = usize::from(head[5]) | usize::from(head[6]) << 8 | usize::from(head[7]) << 16;
        if cmd == add_mod.0 {
            out[at + 1..at + 3].copy_from_slice(&UNUSED_CMD.0.to_le_bytes());
        }
        at += Frame::HEADER_LEN + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_frames_to_add_mod_are_rewritten() {
        let mut stream = Vec::new();
        for (cmd, payload) in [(300u16, &b"ab"[..]), (301, b""), (300, b"x")] {
            stream.push(2);
            stream.extend_from_slice(&cmd.to_le_bytes());
            stream.extend_from_slice(&[0, 0]);
            stream.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
            stream.extend_from_slice(payload);
        }
        stream.extend_from_slice(&[2, 0x2C, 0x01]);
        let out = neutralise(&stream, Some(CmdId(300)));
        assert_eq!(&out[1..3], &[0xFF, 0xFF]);
        assert_eq!(&out[11..13], &301u16.to_le_bytes());
        assert_eq!(&out[19..21], &[0xFF, 0xFF]);
        assert_eq!(&out[27..], &[2, 0x2C, 0x01]);
        assert_eq!(neutralise(&stream, None), stream);
    }
}
