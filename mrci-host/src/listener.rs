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
    Config, Result,
    admission::Stage,
    bus::Event,
    handshake::handshake,
    host::{Clock, HostCtx, Stop, normalise_ip},
    session::Session,
};

/// How long the accept loop pauses after a failed accept (usually out of descriptors), so it
/// does not spin while sessions end and free them.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A bound host, ready to [`Host::run`].
pub struct Host {
    ctx: Arc<HostCtx>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
}

impl Host {
    /// Binds the configured listen address.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn bind(ctx: Arc<HostCtx>) -> Result<Self> {
        let listener = TcpListener::bind(ctx.config.listen).await?;
        let metrics = match ctx.config.metrics.listen {
            Some(addr) => {
                let metrics = crate::metrics::bind(addr).await?;
                ctx.set_metrics_addr(metrics.local_addr()?);
                Some(metrics)
            }
            None => None,
        };
        Ok(Self {
            ctx,
            listener,
            metrics,
        })
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
        self.serve(shutdown).await.map(drop)
    }

    /// Serves until `shutdown` completes ([`Stop::Close`]) or `close_host` / `restart_host`
    /// asks, then shuts down gracefully: every session is told, running commands end with
    /// IDLE, and the database is closed. Returns how it was asked to stop.
    ///
    /// # Errors
    /// Never for per-connection failures; only if the listener itself fails for good.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<Stop> {
        let Self {
            ctx,
            listener,
            metrics,
        } = self;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        if let Some(metrics) = metrics {
            tracker.spawn(crate::metrics::serve(
                metrics,
                Arc::clone(&ctx),
                cancel.clone(),
            ));
        }
        tokio::pin!(shutdown);
        let stop_requested = ctx.stop_requested();
        tokio::pin!(stop_requested);
        let stop = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break Stop::Close,
                stop = &mut stop_requested => {
                    let text = match stop {
                        Stop::Close => "\nThe host is closing; the connection will end.\n",
                        Stop::Restart => "\nThe host is restarting; the connection will end. Reconnect in a moment.\n",
                    };
                    ctx.bus.broadcast(None, false, Event::SysMsg { text: text.into(), is_err: false });
                    break stop;
                }
                res = listener.accept() => match res {
                    Ok((tcp, peer)) => admit(&ctx, &tracker, &cancel, tcp, peer).await,
                    Err(e) => {
                        // Running out of descriptors is transient; back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        };
        tracing::info!(sessions = ctx.session_count(), ?stop, "shutting down");
        drop(listener);
        cancel.cancel();
        tracker.close();
        let deadline = Duration::from_secs(ctx.settings().limits.shutdown_grace_secs)
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
        Ok(stop)
    }
}

/// Runs the host until it is closed: opens the context for `load()`'s configuration, listens,
/// and serves; after `restart_host` it calls `load()` again, re-opens the database and
/// listens again on the same address (the one actually bound, when the configured port is
/// 0 and the configured address did not change). `reload` asks for the configuration and
/// certificates to be re-read without a restart (SIGHUP); `started` sees each start.
///
/// # Errors
/// If the configuration cannot be loaded, or the context opened or the address bound.
pub async fn run_until_closed(
    mut load: impl FnMut() -> Result<Config>,
    clock: Clock,
    shutdown: impl Future<Output = ()>,
    reload: Arc<tokio::sync::Notify>,
    mut started: impl FnMut(&Arc<HostCtx>, SocketAddr),
) -> Result<()> {
    tokio::pin!(shutdown);
    let mut bound: Option<(SocketAddr, SocketAddr)> = None;
    loop {
        let mut config = load()?;
        if let Some((configured, actual)) = bound
            && configured == config.listen
        {
            config.listen = actual;
        }
        let configured = config.listen;
        let ctx = HostCtx::open(config, clock.clone()).await?;
        let host = Host::bind(Arc::clone(&ctx)).await?;
        let addr = host.local_addr()?;
        bound = Some((configured, addr));
        started(&ctx, addr);
        let serving = host.serve(&mut shutdown);
        tokio::pin!(serving);
        let stop = loop {
            tokio::select! {
                res = &mut serving => break res?,
                () = reload.notified() => match load() {
                    Ok(file) => {
                        if let Err(e) = ctx.reload(file).await {
                            tracing::error!(error = %e, "reload failed; the previous settings stay");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "reload failed; the previous settings stay"),
                },
            }
        };
        if stop == Stop::Close {
            return Ok(());
        }
        tracing::info!("restarting");
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
        // The ban check reads the store: done here, not in the accept loop, so that a slow
        // database delays only this connection, never the next accept.
        if banned(&ctx, &mut tcp, peer, ip).await {
            return;
        }
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

/// True (and the connection closed) if `ip` is banned or the ban list cannot be read.
async fn banned(
    ctx: &HostCtx,
    tcp: &mut tokio::net::TcpStream,
    peer: SocketAddr,
    ip: std::net::IpAddr,
) -> bool {
    let banned = ctx.store.is_banned(&ip.to_string(), ctx.clock.now()).await;
    match banned {
        Ok(false) => false,
        Ok(true) => {
            tracing::info!(%peer, "refused: address is banned");
            let _ = tcp.shutdown().await;
            true
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "refused: could not check the ban list");
            true
        }
    }
}
