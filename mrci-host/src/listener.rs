//! The TCP listener: admission (max sessions, bans), one task per connection, and graceful
//! shutdown (PROTOCOL.md §1.1–1.2, STYLE.md §2.5).
//!
//! Shutdown order: stop accepting; cancel every session (each finishes its in-flight
//! commands within a grace period and closes TLS with close_notify); wait for the session
//! tasks; close the database pool.
//!
//! Invariant: a failure in one connection (bad header, stalled TLS, IO error) ends that
//! connection's task only and never the accept loop.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{io::AsyncWriteExt, net::TcpListener};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    Result,
    admission::Stage,
    handshake::handshake,
    host::{HostCtx, normalise_ip},
    session::Session,
};

/// How long the accept loop pauses after a failed accept (usually out of descriptors), so it
/// does not spin while sessions end and free them.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A bound host, ready to [`Host::run`].
pub struct Host {
    ctx: Arc<HostCtx>,
    listener: TcpListener,
}

impl Host {
    /// Binds the configured listen address.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn bind(ctx: Arc<HostCtx>) -> Result<Self> {
        let listener = TcpListener::bind(ctx.config.listen).await?;
        Ok(Self { ctx, listener })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// If the socket has no local address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The shared context.
    pub fn ctx(&self) -> &Arc<HostCtx> {
        &self.ctx
    }

    /// Serves until `shutdown` completes, then shuts down gracefully.
    ///
    /// # Errors
    /// Never for per-connection failures; only if the listener itself fails for good.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Self { ctx, listener } = self;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                res = listener.accept() => match res {
                    Ok((tcp, peer)) => admit(&ctx, &tracker, &cancel, tcp, peer).await,
                    Err(e) => {
                        // Running out of descriptors is transient; back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        tracing::info!(sessions = ctx.session_count(), "shutting down");
        drop(listener);
        cancel.cancel();
        tracker.close();
        let deadline = Duration::from_secs(ctx.config.limits.shutdown_grace_secs)
            + crate::session::CLOSE_WAIT * 2;
        if tokio::time::timeout(deadline, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("sessions did not finish in time; closing anyway");
        }
        if let Some(cluster) = &ctx.cluster {
            cluster.leave().await;
        }
        ctx.store.close().await;
        tracing::info!("host stopped");
        Ok(())
    }
}

/// Decides whether a connection may start a session, and starts it.
async fn admit(
    ctx: &Arc<HostCtx>,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    mut tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let ip = normalise_ip(peer.ip());
    match ctx.store.is_banned(&ip.to_string(), ctx.clock.now()).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::info!(%peer, "refused: address is banned");
            let _ = tcp.shutdown().await;
            return;
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "refused: could not check the ban list");
            return;
        }
    }
    let cancel = cancel.child_token();
    let ticket = match ctx
        .admission
        .admit(ip, &ctx.admission_limits(), cancel.clone())
    {
        Ok(ticket) => ticket,
        Err(refused) => {
            tracing::info!(%peer, "refused: {}", refused.reason());
            let _ = tcp.shutdown().await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let ctx = Arc::clone(ctx);
    tracker.spawn(async move {
        let admitted = tokio::select! {
            res = handshake(&ctx, tcp, peer) => res,
            () = cancel.cancelled() => return,
        };
        match admitted {
            Ok(admitted) => {
                ticket.set_stage(Stage::Ready);
                let session = Session::new(Arc::clone(&ctx), admitted, ticket, cancel);
                session.run().await;
            }
            Err(e) => tracing::info!(%peer, error = %e, "handshake failed; connection closed"),
        }
    });
}
