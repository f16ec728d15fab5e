//! Helpers shared by the administrative commands: required arguments, rank arguments, and
//! turning a body's outcome into TEXT (success), ERR (refusal) or an internal error.

use mrci_proto::{args::Args, constraints};

use super::CmdCtx;
use crate::bus::Event;

/// Why a body did not produce its success text.
pub(super) enum Fail {
    /// The request was refused; the text is the ERR the client sees.
    Refused(String),
    /// An internal failure (logged; the client gets a generic ERR).
    Internal(crate::Error),
}

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Self {
        Self::Internal(e)
    }
}

/// A refusal with this ERR text.
pub(super) fn refused<T>(text: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Refused(text.into()))
}

/// A body's outcome: the success text, or why not.
pub(super) type Outcome = Result<String, Fail>;

/// A required, non-empty argument.
pub(super) fn arg<'a>(args: &'a Args, key: &str) -> Result<&'a str, Fail> {
    args.required(key)
        .or_else(|_| refused(format!("err: {key} is required.")))
}

/// A `0`/`1` argument.
pub(super) fn flag_arg(args: &Args, key: &str) -> Result<bool, Fail> {
    match args.value(key) {
        Some("0") => Ok(false),
        Some("1") => Ok(true),
        _ => refused(format!("err: {key} must be 0 or 1.")),
    }
}

/// The account a client names with `-email` (preferred when valid) or `-user`, as `auth`,
/// `request_pw_reset` and `recover_acct` take it; `Err` is the refusal text.
pub(super) fn login_arg(args: &Args) -> Result<&str, &'static str> {
    match (args.value("-email"), args.value("-user")) {
        (Some(email), _) if constraints::email(email).is_ok() => Ok(email),
        (_, Some(user)) if constraints::user_name(user).is_ok() => Ok(user),
        (None, None) => Err("err: Give -user NAME or -email ADDRESS."),
        _ => Err("err: The user name or email address is not valid."),
    }
}

/// A value that must satisfy one of the data constraints.
pub(super) fn valid(res: mrci_proto::Result<()>) -> Result<(), Fail> {
    res.or_else(|e| refused(format!("err: {e}.")))
}

/// A host rank argument that may not be more powerful than the caller's.
pub(super) fn rank_arg(args: &Args, key: &str, caller: u32) -> Result<u32, Fail> {
    let rank = match constraints::host_rank(arg(args, key)?) {
        Ok(rank) => rank,
        Err(e) => return refused(format!("err: {key}: {e}.")),
    };
    if rank < caller {
        return refused(format!(
            "err: You cannot assign rank {rank}, which is more powerful than your own ({caller})."
        ));
    }
    Ok(rank)
}

/// Sends a body's outcome as TEXT or ERR; an internal failure is returned to the runner.
pub(super) async fn reply(ctx: &CmdCtx, res: Outcome) -> crate::Result<()> {
    match res {
        Ok(text) => ctx.text(&text).await,
        Err(Fail::Refused(refusal)) => ctx.err(&refusal).await,
        Err(Fail::Internal(e)) => return Err(e),
    }
    Ok(())
}

/// Delivers `event` to every session, this one last.
pub(super) fn broadcast(ctx: &CmdCtx, event: Event) {
    let sid = ctx.view().sid;
    ctx.host.bus.broadcast(Some(&sid), true, event);
}

/// Runs `$f(ctx, &args, caller_rank)` and replies with its outcome.
macro_rules! body {
    ($ctx:ident, $input:ident, $f:ident) => {
        async move {
            let args = mrci_proto::args::Args::parse(&$input.text_payload());
            let caller = $ctx.view().rank();
            let res = $f($ctx, &args, caller).await;
            super::util::reply($ctx, res).await
        }
        .boxed()
    };
}
pub(super) use body;

/// Ends an interactive body: a refusal becomes an ERR, an internal failure is returned.
pub(super) async fn settle(ctx: &CmdCtx, res: Result<(), Fail>) -> crate::Result<()> {
    match res {
        Ok(()) => Ok(()),
        Err(Fail::Refused(refusal)) => {
            ctx.err(&refusal).await;
            Ok(())
        }
        Err(Fail::Internal(e)) => Err(e),
    }
}

/// Runs the interactive `$f(ctx, args)` (it may prompt) and settles its outcome.
macro_rules! interactive {
    ($ctx:ident, $input:ident, $f:ident) => {
        async move {
            let args = mrci_proto::args::Args::parse(&$input.text_payload());
            let res = $f($ctx, args).await;
            super::util::settle($ctx, res).await
        }
        .boxed()
    };
}
pub(super) use interactive;
