//! Helpers for end-to-end tests of async events: what a client receives on an async id, the
//! seed TEXT it must carry, and proof that an event did *not* reach a session.
//!
//! That proof is a marker: a display-name change sends the session a MY_INFO through the same
//! ordered event queue, after anything queued before it.

use anyhow::Context;
use mrci_proto::{
    BranchId, Frame, TypeId, async_cmd::AsyncCmd, async_id::AsyncId, payload::MyInfo,
};
use mrci_tests::TestClient;

/// Asserts that `frame` is async command `cmd` as a client receives it: on the async id,
/// branch 0, type TEXT, with exactly the seed TEXT `text`, which parses back to `cmd`.
pub(crate) fn assert_seed(frame: &Frame, cmd: &AsyncCmd, text: &str) -> anyhow::Result<()> {
    assert_eq!(
        (frame.cmd_id, frame.branch_id, frame.type_id),
        (cmd.id().cmd_id(), BranchId(0), TypeId::TEXT),
        "{frame:?}"
    );
    assert_eq!(frame.text_payload(), text);
    assert_eq!(&AsyncCmd::parse(cmd.id(), &frame.payload)?, cmd);
    Ok(())
}

/// The next frame on async id `id`.
pub(crate) async fn next_on(client: &mut TestClient, id: AsyncId) -> anyhow::Result<Frame> {
    let frames = client.until(|f| f.cmd_id == id.cmd_id()).await?;
    frames.into_iter().last().context("until returns the match")
}

/// Receives the next frame on `cmd`'s async id and asserts it is `cmd` with seed TEXT `text`.
pub(crate) async fn seed_on(
    client: &mut TestClient,
    cmd: &AsyncCmd,
    text: &str,
) -> anyhow::Result<()> {
    let frame = next_on(client, cmd.id()).await?;
    assert_seed(&frame, cmd, text)
}

/// Runs `name` to its IDLE and also waits for a frame on async id `id`, which may arrive
/// before or after the IDLE. Returns the command's text and that frame; fails on ERR.
pub(crate) async fn run_then(
    client: &mut TestClient,
    name: &str,
    text: &str,
    id: AsyncId,
) -> anyhow::Result<(String, Frame)> {
    let cmd = client.id(name)?;
    client.send(Frame::text(cmd, BranchId(0), text)).await?;
    let (mut idle, mut out, mut event) = (false, String::new(), None);
    while !(idle && event.is_some()) {
        let f = client.recv().await?;
        if f.cmd_id == cmd {
            match f.type_id {
                TypeId::ERR => anyhow::bail!("{name} {text}: {}", f.text_payload()),
                TypeId::IDLE => idle = true,
                _ => out.push_str(&f.text_payload()),
            }
        }
        if f.cmd_id == id.cmd_id() && event.is_none() {
            event = Some(f);
        }
    }
    Ok((out, event.context("the loop ends with an event")?))
}

/// Changes the display name to `marker` and receives up to the MY_INFO that shows it and the
/// command's IDLE; fails if a frame on one of `ids` arrived first.
pub(crate) async fn none_on(
    client: &mut TestClient,
    ids: &[AsyncId],
    marker: &str,
) -> anyhow::Result<()> {
    let cmd = client.id("set_disp_name")?;
    let text = format!("-new_name \"{marker}\"");
    client.send(Frame::text(cmd, BranchId(0), &text)).await?;
    let (mut idle, mut shown) = (false, false);
    while !(idle && shown) {
        let f = client.recv().await?;
        let id = ids.iter().find(|id| id.cmd_id() == f.cmd_id);
        assert!(id.is_none(), "unexpected {id:?}: {:?}", f.text_payload());
        idle |= f.cmd_id == cmd && f.type_id == TypeId::IDLE;
        shown |=
            f.type_id == TypeId::MY_INFO && MyInfo::parse(&f.payload)?.peer.display_name == marker;
    }
    Ok(())
}
