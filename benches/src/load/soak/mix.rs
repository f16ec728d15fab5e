//! The soak's well-behaved clients: churning sessions (connect, log in — sometimes with a
//! wrong password or an unknown user — run `my_info`, `ls_cmds` and a table command,
//! sometimes a module command, then log out or just leave), a module caller that keeps its
//! module process warm, and a canary that times `my_info` for the whole soak.
//!
//! Invariant: every action ends within [`PATIENCE`] and in exactly one
//! [`Tally`](super::tally::Tally) count.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mrci_cli::client::{Client, Error};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

use super::{Ctx, VICTIM};
use crate::load::{
    client::{self, PATIENCE},
    stats::Samples,
};

/// Table commands the churning sessions run (each fits one page here).
const TABLES: [&str; 3] = ["ls_users", "ls_groups", "ls_chs"];

/// Runs `action` within [`PATIENCE`], counting a failure as unexpected.
async fn bounded<F>(ctx: &Ctx, action: F)
where
    F: Future<Output = anyhow::Result<()>>,
{
    match tokio::time::timeout(PATIENCE, action).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ctx.tally.unexpected(&format!("{e:#}")),
        Err(_) => ctx.tally.unexpected("an action took longer than 30 s"),
    }
}

/// A churning client: one action after another until the soak stops.
pub async fn churn(id: u64, ctx: Arc<Ctx>) {
    let mut rng = StdRng::seed_from_u64(id);
    while !ctx.stop.is_cancelled() {
        let roll = rng.random_range(0..100);
        match roll {
            0..10 => bounded(&ctx, refused_login(&ctx, VICTIM, "wrong password")).await,
            10..15 => bounded(&ctx, refused_login(&ctx, "no_such_user", "unknown user")).await,
            _ => {
                let (table, module, ending) = (
                    TABLES[rng.random_range(0..TABLES.len())],
                    rng.random_range(0..100) < 10,
                    rng.random_range(0..3),
                );
                bounded(&ctx, session_round(&ctx, table, module, ending)).await;
            }
        }
        ctx.rest(ctx.pause).await;
    }
}

/// A login that must be refused.
async fn refused_login(ctx: &Ctx, user: &str, what: &str) -> anyhow::Result<()> {
    let mut session = ctx.host.connect().await?;
    match session.login(user, "Wr0ng-Passw0rd!").await {
        Err(Error::LoginRefused { .. } | Error::LoginPrompt { .. }) => {
            ctx.tally.expected(&format!("login refused: {what}"));
            Ok(())
        }
        Ok(_) => bail!("login with a {what} was accepted"),
        Err(e) => Err(e).context(format!("login with a {what}")),
    }
}

/// Log in, run commands, leave (0: `logout` first, 1: just close, 2: close mid-command).
async fn session_round(ctx: &Ctx, table: &str, module: bool, ending: u32) -> anyhow::Result<()> {
    let mut session = ctx.host.session().await.context("login")?;
    ctx.tally.ok("login");
    for (name, args) in [("my_info", ""), ("ls_cmds", ""), (table, "")] {
        client::ok(&mut session, name, args)
            .await
            .with_context(|| format!("{name} failed"))?;
        ctx.tally.ok(name);
    }
    if module && let Some(name) = &ctx.module_cmd {
        greet(&mut session, name).await?;
        ctx.tally.ok("module call, new process");
    }
    match ending {
        0 => {
            client::ok(&mut session, "logout", "").await?;
            ctx.tally.ok("logout, then close");
        }
        1 => ctx.tally.ok("close without logout"),
        _ => {
            session
                .send_text(
                    client::id(&session, "ls_users")?,
                    mrci_proto::BranchId(0),
                    "",
                )
                .await?;
            ctx.tally.ok("close with a command running");
        }
    }
    Ok(())
}

/// Runs the module's `greet` and checks its answer.
async fn greet(session: &mut Client, name: &str) -> anyhow::Result<()> {
    let out = session.run(name, "soak").await?;
    if !out.is_ok() || !out.text().contains("hello, soak") {
        bail!("module command {name} answered {:?}", out.text());
    }
    Ok(())
}

/// Calls the module command on one session every `every`, reconnecting after a failure.
pub async fn module_caller(ctx: Arc<Ctx>, every: Duration) {
    let Some(name) = ctx.module_cmd.clone() else {
        return;
    };
    let mut session: Option<Client> = None;
    while !ctx.stop.is_cancelled() {
        let res = tokio::time::timeout(PATIENCE, async {
            if session.is_none() {
                session = Some(ctx.host.session().await?);
            }
            if let Some(s) = session.as_mut() {
                greet(s, &name).await?;
            }
            anyhow::Ok(())
        })
        .await;
        match res {
            Ok(Ok(())) => ctx.tally.ok("module call, warm process"),
            Ok(Err(e)) => {
                ctx.tally.unexpected(&format!("warm module call: {e:#}"));
                session = None;
            }
            Err(_) => {
                ctx.tally
                    .unexpected("warm module call took longer than 30 s");
                session = None;
            }
        }
        ctx.rest(every).await;
    }
}

/// `my_info` latencies through the soak, with when each was taken.
#[derive(Debug, Default)]
pub struct Canary {
    /// `(seconds since the soak began, milliseconds)`.
    pub points: Vec<(f64, f64)>,
}

impl Canary {
    /// The samples taken between `from` and `to` seconds.
    pub fn window(&self, from: f64, to: f64) -> Samples {
        let mut s = Samples::default();
        for &(_, ms) in self.points.iter().filter(|p| p.0 >= from && p.0 < to) {
            s.push(Duration::from_secs_f64(ms / 1000.0));
        }
        s
    }
}

/// Times `my_info` on one logged-in session every `every` until the soak stops.
pub async fn canary(ctx: Arc<Ctx>, every: Duration, start: Instant, out: Arc<Mutex<Canary>>) {
    let mut session: Option<Client> = None;
    while !ctx.stop.is_cancelled() {
        let res = tokio::time::timeout(PATIENCE, async {
            if session.is_none() {
                session = Some(ctx.host.session().await?);
            }
            let Some(s) = session.as_mut() else {
                bail!("no session");
            };
            let t0 = Instant::now();
            client::ok(s, "my_info", "").await?;
            anyhow::Ok(t0.elapsed())
        })
        .await;
        match res {
            Ok(Ok(took)) => out
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .points
                .push((start.elapsed().as_secs_f64(), took.as_secs_f64() * 1000.0)),
            Ok(Err(e)) => {
                ctx.tally.unexpected(&format!("canary my_info: {e:#}"));
                session = None;
            }
            Err(_) => {
                ctx.tally.unexpected("canary my_info took longer than 30 s");
                session = None;
            }
        }
        ctx.rest(every).await;
    }
}
