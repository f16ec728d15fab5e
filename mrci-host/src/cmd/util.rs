//! Helpers shared by the command families: required, flag and rank arguments, validation
//! against the data constraints, and the table adapters (`reply!`) that turn a body's outcome
//! into TEXT (success) or ERR (refusal).

use std::borrow::Cow;

use mrci_proto::{args::Args, constraints};

use super::{CmdCtx, Fail, Refusal, refuse};
use crate::bus::Event;

/// A refusal with this sentence (no `err: ` prefix).
pub(super) fn refused<T>(text: impl Into<Cow<'static, str>>) -> Result<T, Fail> {
    Err(Fail::Refused(Refusal::new(text)))
}

/// A body's outcome: the success text, or why not.
pub(super) type Outcome = Result<String, Fail>;

/// A required, non-empty argument.
pub(super) fn arg<'a>(args: &'a Args, key: &str) -> Result<&'a str, Fail> {
    args.required(key)
        .map_err(|_| refuse!("{key} is required.").into())
}

/// A `0`/`1` argument.
pub(super) fn flag_arg(args: &Args, key: &str) -> Result<bool, Fail> {
    match args.value(key) {
        Some("0") => Ok(false),
        Some("1") => Ok(true),
        _ => Err(refuse!("{key} must be 0 or 1.").into()),
    }
}

/// The account a client names with `-email` (preferred when valid) or `-user`, as `auth`,
/// `request_pw_reset` and `recover_acct` take it.
pub(super) fn login_arg(args: &Args) -> Result<&str, Refusal> {
    match (args.value("-email"), args.value("-user")) {
        (Some(email), _) if constraints::email(email).is_ok() => Ok(email),
        (_, Some(user)) if constraints::user_name(user).is_ok() => Ok(user),
        (None, None) => Err(Refusal::new("Give -user NAME or -email ADDRESS.")),
        _ => Err(Refusal::new("The user name or email address is not valid.")),
    }
}

/// An optional search filter (`-key text`): empty when absent; refused if it holds a control
/// character such as NUL or is over-long.
pub(super) fn filter_arg<'a>(args: &'a Args, key: &str) -> Result<&'a str, Fail> {
    let text = args.value(key).unwrap_or("");
    constraints::filter(text).map_err(|e| refuse!("{key}: {e}."))?;
    Ok(text)
}

/// A value that must satisfy one of the data constraints.
pub(super) fn valid(res: mrci_proto::Result<()>) -> Result<(), Fail> {
    res.map_err(|e| refuse!("{e}.").into())
}

/// A host rank argument that may not be more powerful than the caller's.
pub(super) fn rank_arg(args: &Args, key: &str, caller: u32) -> Result<u32, Fail> {
    let rank = constraints::host_rank(arg(args, key)?).map_err(|e| refuse!("{key}: {e}."))?;
    if rank < caller {
        return refused(format!(
            "You cannot assign rank {rank}, which is more powerful than your own ({caller})."
        ));
    }
    Ok(rank)
}

/// Delivers `event` to every session, this one last.
pub(super) fn broadcast(ctx: &CmdCtx, event: Event) {
    let sid = ctx.view().sid;
    ctx.host.bus.broadcast(Some(&sid), true, event);
}

/// Wraps `async fn body(ctx: &CmdCtx, args: &Args, caller_rank: u32) -> Outcome` as an
/// [`super::Exec::Task`] that sends the success text as TEXT.
macro_rules! reply {
    ($body:path) => {{
        async fn adapt(
            ctx: &mut $crate::cmd::CmdCtx,
            input: $crate::cmd::Input,
        ) -> $crate::cmd::CmdResult {
            let caller = ctx.rank();
            let text = $body(ctx, &input.args, caller).await?;
            ctx.text(&text).await;
            Ok(())
        }
        $crate::cmd::task!(adapt)
    }};
}
pub(super) use reply;
