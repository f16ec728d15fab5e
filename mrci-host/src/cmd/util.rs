//! Helpers shared by the administrative commands: required arguments, rank arguments, and
//! turning a body's `Ok(text)` / `Err(refusal)` into TEXT or ERR.

use mrci_proto::{args::Args, constraints};

use super::CmdCtx;
use crate::bus::Event;

/// What went wrong, as the ERR text the client sees.
pub(super) type Refusal = String;

/// A body's outcome: a database failure, or a reply for the client.
pub(super) type Outcome = crate::Result<Result<String, Refusal>>;

/// A required, non-empty argument.
pub(super) fn arg<'a>(args: &'a Args, key: &str) -> Result<&'a str, Refusal> {
    args.required(key)
        .map_err(|_| format!("err: {key} is required."))
}

/// A host rank argument that may not be more powerful than the caller's.
pub(super) fn rank_arg(args: &Args, key: &str, caller: u32) -> Result<u32, Refusal> {
    let rank = constraints::host_rank(arg(args, key)?).map_err(|e| format!("err: {key}: {e}."))?;
    if rank < caller {
        return Err(format!(
            "err: You cannot assign rank {rank}, which is more powerful than your own ({caller})."
        ));
    }
    Ok(rank)
}

/// Sends a body's outcome as TEXT or ERR.
pub(super) async fn reply(ctx: &CmdCtx, res: Outcome) -> crate::Result<()> {
    match res? {
        Ok(text) => ctx.text(&text).await,
        Err(refusal) => ctx.err(&refusal).await,
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
