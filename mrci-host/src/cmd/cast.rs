//! Casting and peer-to-peer commands (COMMANDS.md §2.9–2.10, §3.5).
//!
//! `cast` and `to_peer` carry data, so they are [`Exec::Inline`]: the session delivers the
//! client's frame itself in one hop (see `session::channels`). The others ask the session,
//! which owns the open list and the P2P links.

use mrci_proto::{Frame, SessionId, TypeId};

use super::{
    CmdCtx, CmdResult, CommandDef, Exec, Inline, Input, SessionRequest, table::show_table, task,
};
use crate::bus::P2pKind;

fn def(
    name: &'static str,
    summary: &'static str,
    io: &'static str,
    details: &'static str,
    exec: Exec,
) -> CommandDef {
    CommandDef::ranked(name, summary, io, details, exec)
}

const PEER: &str = "A SESSION_ID frame (28 bytes), or TEXT with the 56 hex digits of the id.";

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        def(
            "cast",
            "send any frame to the sessions sharing your writable sub-channels",
            "[any data]/[none]",
            "Receivers get the frame on async id 5. Host-only types are dropped.",
            Exec::Inline(Inline::Cast),
        ),
        def(
            "ping_peers",
            "ask the active peers on your sub-channels for their PEER_INFO",
            "[none]/[text]",
            "Peers answer on async id 21; they see your PEER_INFO on id 22.",
            task!(ping_peers),
        ),
        def(
            "to_peer",
            "send any frame to a peer you have a P2P link with",
            "[28-byte session id + data]/[none]",
            "The peer gets your session id followed by the data on async id 24.",
            Exec::Inline(Inline::ToPeer),
        ),
        def(
            "p2p_request",
            "ask another session for a P2P link",
            "[session id]/[text]",
            PEER,
            task!(p2p_request),
        ),
        def(
            "p2p_open",
            "accept a P2P request",
            "[session id]/[text]",
            PEER,
            task!(p2p_open),
        ),
        def(
            "p2p_close",
            "decline a P2P request or end a link",
            "[session id]/[text]",
            PEER,
            task!(p2p_close),
        ),
        def(
            "ls_p2p",
            "list your P2P links and requests",
            "[none]/[text]",
            "",
            task!(ls_p2p),
        ),
    ]
}

async fn ping_peers(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let text = ctx.ask(|reply| SessionRequest::Ping { reply }).await?;
    ctx.text(&text).await;
    Ok(())
}

/// The peer a P2P command names.
fn peer_arg(frame: &Frame) -> Option<SessionId> {
    if frame.type_id == TypeId::SESSION_ID {
        return SessionId::parse(&frame.payload).ok();
    }
    let bytes = hex::decode(frame.text_payload().trim()).ok()?;
    SessionId::parse(&bytes).ok()
}

async fn p2p(ctx: &mut CmdCtx, input: &Input, kind: P2pKind) -> CmdResult {
    let Some(peer) = peer_arg(&input.frame) else {
        return super::util::refused(
            "Give the peer's 28-byte session id (SESSION_ID, or 56 hex digits).",
        );
    };
    let text = ctx
        .ask(|reply| SessionRequest::P2p { peer, kind, reply })
        .await?;
    ctx.text(&text).await;
    Ok(())
}

async fn p2p_request(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    p2p(ctx, &input, P2pKind::Request).await
}

async fn p2p_open(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    p2p(ctx, &input, P2pKind::Open).await
}

async fn p2p_close(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    p2p(ctx, &input, P2pKind::Close).await
}

async fn ls_p2p(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let view = ctx.view();
    let rows = view
        .p2p
        .accepted()
        .iter()
        .map(|s| vec![hex::encode(s.0), "0".to_owned()])
        .chain(
            view.p2p
                .pending()
                .into_iter()
                .map(|s| vec![hex::encode(s.0), "1".to_owned()]),
        )
        .collect();
    show_table(ctx, &["peer_id", "pending"], rows).await;
    Ok(())
}
