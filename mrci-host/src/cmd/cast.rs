//! Casting and peer-to-peer commands (COMMANDS.md §2.9–2.10, §3.5).
//!
//! `cast` and `to_peer` carry data, so the session runs them itself in one hop (see
//! `session::channels`); their bodies here only exist for commands that list them. The others
//! ask the session, which owns the open list and the P2P links.

use futures::FutureExt;
use mrci_proto::{Frame, SessionId, TypeId};

use super::{CmdCtx, CmdFuture, CommandDef, SessionRequest, table::show_table};
use crate::bus::P2pKind;

/// The name of the command the session runs inline for casts.
pub const CAST: &str = "cast";
/// The name of the command the session runs inline for peer data.
pub const TO_PEER: &str = "to_peer";

fn def(
    name: &'static str,
    summary: &'static str,
    io: &'static str,
    details: &'static str,
    run: super::RunFn,
) -> CommandDef {
    CommandDef::ranked(name, summary, io, details, run)
}

const PEER: &str = "A SESSION_ID frame (28 bytes), or TEXT with the 56 hex digits of the id.";

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        def(
            CAST,
            "send any frame to the sessions sharing your writable sub-channels",
            "[any data]/[none]",
            "Receivers get the frame on async id 5. Host-only types are dropped.",
            inline,
        ),
        def(
            "ping_peers",
            "ask the active peers on your sub-channels for their PEER_INFO",
            "[none]/[text]",
            "Peers answer on async id 21; they see your PEER_INFO on id 22.",
            ping_peers,
        ),
        def(
            TO_PEER,
            "send any frame to a peer you have a P2P link with",
            "[28-byte session id + data]/[none]",
            "The peer gets your session id followed by the data on async id 24.",
            inline,
        ),
        def(
            "p2p_request",
            "ask another session for a P2P link",
            "[session id]/[text]",
            PEER,
            p2p_request,
        ),
        def(
            "p2p_open",
            "accept a P2P request",
            "[session id]/[text]",
            PEER,
            p2p_open,
        ),
        def(
            "p2p_close",
            "decline a P2P request or end a link",
            "[session id]/[text]",
            PEER,
            p2p_close,
        ),
        def(
            "ls_p2p",
            "list your P2P links and requests",
            "[none]/[text]",
            "",
            ls_p2p,
        ),
    ]
}

/// The session handles `cast` and `to_peer` before an instance would run; nothing to do.
fn inline(_ctx: &mut CmdCtx, _input: Frame) -> CmdFuture<'_> {
    async { Ok(()) }.boxed()
}

fn ping_peers(ctx: &mut CmdCtx, _input: Frame) -> CmdFuture<'_> {
    async move {
        match ctx.ask(|reply| SessionRequest::Ping { reply }).await {
            Ok(text) => ctx.text(&text).await,
            Err(refusal) => ctx.err(&refusal).await,
        }
        Ok(())
    }
    .boxed()
}

/// The peer a P2P command names.
fn peer_arg(frame: &Frame) -> Option<SessionId> {
    if frame.type_id == TypeId::SESSION_ID {
        return <[u8; 28]>::try_from(&frame.payload[..]).ok().map(SessionId);
    }
    let text = frame.text_payload();
    let bytes = hex::decode(text.trim()).ok()?;
    <[u8; 28]>::try_from(bytes.as_slice()).ok().map(SessionId)
}

async fn p2p(ctx: &mut CmdCtx, input: Frame, kind: P2pKind) -> crate::Result<()> {
    let Some(peer) = peer_arg(&input) else {
        ctx.err("err: Give the peer's 28-byte session id (SESSION_ID, or 56 hex digits).")
            .await;
        return Ok(());
    };
    match ctx
        .ask(|reply| SessionRequest::P2p { peer, kind, reply })
        .await
    {
        Ok(text) => ctx.text(&text).await,
        Err(refusal) => ctx.err(&refusal).await,
    }
    Ok(())
}

fn p2p_request(ctx: &mut CmdCtx, input: Frame) -> CmdFuture<'_> {
    p2p(ctx, input, P2pKind::Request).boxed()
}

fn p2p_open(ctx: &mut CmdCtx, input: Frame) -> CmdFuture<'_> {
    p2p(ctx, input, P2pKind::Open).boxed()
}

fn p2p_close(ctx: &mut CmdCtx, input: Frame) -> CmdFuture<'_> {
    p2p(ctx, input, P2pKind::Close).boxed()
}

fn ls_p2p(ctx: &mut CmdCtx, _input: Frame) -> CmdFuture<'_> {
    async move {
        let view = ctx.view();
        let rows = view
            .p2p_accepted
            .iter()
            .map(|s| vec![hex::encode(s.0), "0".to_owned()])
            .chain(
                view.p2p_pending
                    .iter()
                    .map(|s| vec![hex::encode(s.0), "1".to_owned()]),
            )
            .collect();
        show_table(ctx, &["peer_id", "pending"], rows).await;
        Ok(())
    }
    .boxed()
}
