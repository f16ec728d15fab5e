//! The task that runs one (command id, branch id) instance of an internal [`Exec::Task`]
//! command, and the session's handle on it (PROTOCOL.md §2.5).
//!
//! An instance runs one invocation per input frame that arrives while it is idle, ends every
//! invocation with IDLE, and is reused afterwards, exactly like a run-mode module process.
//! Control frames from the client follow the session's one policy (`session::instances`):
//! TERM_CMD aborts the running invocation, KILL_CMD aborts it and ends the instance, and
//! either answers IDLE when nothing was running; HALT_CMD/RESUME_CMD set a flag the body may
//! honour ([`CmdCtx::wait_resumed`]). The host's own kill (session end, command unloaded)
//! ends the instance with IDLE only if an invocation was running.
//!
//! [`Exec::Task`]: super::Exec::Task

use std::sync::Arc;

use futures::future::BoxFuture;
use mrci_proto::{BranchId, CmdId, Frame, TypeId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{CmdCtx, Fail, INTERNAL_ERROR, Input, Outbox, RunFn, SessionMsg};
use crate::{host::HostCtx, session::SessionView};

/// Frames a client may queue for one instance before it is told it sends too fast.
pub(crate) const INPUT_FRAMES: usize = 32;

/// GEN_FILE frames one instance may hold at once: queued for it, or taken and not yet done
/// with (an upload keeps the hold until the chunk is written, see
/// [`CmdCtx::next_input_held`]). The session reads nothing more from its client until the
/// hold is given back, so an upload holds one chunk in memory whatever the file size (the
/// next waits in the socket's buffers, which keep the client sending meanwhile), and the
/// decoder receives the next chunk into the memory of the one just written.
pub(crate) const FILE_SLOT: usize = 1;

/// A client frame on its way to an instance, with its hold on the GEN_FILE slot.
pub(crate) type Queued = (Frame, Option<OwnedSemaphorePermit>);

/// A client's control frame for a running instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// TERM_CMD: abort the current invocation.
    Term,
    /// KILL_CMD from the client: abort and end the instance.
    Kill,
}

/// The session's side of a running instance.
#[derive(Debug)]
pub(crate) struct InstanceHandle {
    input: mpsc::Sender<Queued>,
    file_slot: Arc<Semaphore>,
    control: mpsc::UnboundedSender<Control>,
    halted: watch::Sender<bool>,
    kill: CancellationToken,
}

impl InstanceHandle {
    /// Queues a client frame; false when the instance is not keeping up (or is gone).
    pub(crate) fn feed(&self, frame: Frame) -> bool {
        self.input.try_send((frame, None)).is_ok()
    }

    /// Queues a GEN_FILE frame with the instance's [`FILE_SLOT`] and returns the future that
    /// completes once the instance is done with it (at once for a frame it just takes, once
    /// written for an upload's chunk); the session reads nothing more from its client until
    /// that future is done.
    pub(crate) fn feed_file(&self, frame: Frame) -> BoxFuture<'static, ()> {
        debug_assert_eq!(frame.type_id, TypeId::GEN_FILE);
        let file_slot = Arc::clone(&self.file_slot);
        if let Ok(permit) = Arc::clone(&file_slot).try_acquire_owned()
            && let Ok(slot) = self.input.try_reserve()
        {
            slot.send((frame, Some(permit)));
            return Box::pin(async move {
                drop(file_slot.acquire().await);
            });
        }
        let input = self.input.clone();
        Box::pin(async move {
            let permit = Arc::clone(&file_slot).acquire_owned().await.ok();
            // A closed channel means the instance ended; the frame has no one to go to.
            if input.send((frame, permit)).await.is_ok() {
                drop(file_slot.acquire().await);
            }
        })
    }

    /// Delivers a client TERM_CMD or KILL_CMD.
    pub(crate) fn control(&self, control: Control) {
        let _ = self.control.send(control);
    }

    /// HALT_CMD (true) or RESUME_CMD (false); the session clears it when an invocation ends.
    pub(crate) fn set_halted(&self, halted: bool) {
        self.halted.send_replace(halted);
    }

    /// The host ends the instance (session end, command unloaded).
    pub(crate) fn kill(&self) {
        self.kill.cancel();
    }
}

/// Starts the task for one (command id, branch id) pair of an internal command.
pub(crate) fn spawn(
    name: String,
    run: RunFn,
    host: Arc<HostCtx>,
    (cmd, branch): (CmdId, BranchId),
    out: Outbox,
    view: watch::Receiver<Arc<SessionView>>,
) -> InstanceHandle {
    let (input_tx, input) = mpsc::channel(INPUT_FRAMES);
    let (control_tx, control) = mpsc::unbounded_channel();
    let (halted_tx, halted) = watch::channel(false);
    let kill = CancellationToken::new();
    let ctx = CmdCtx {
        host,
        cmd,
        branch,
        input,
        out,
        view,
        halted,
    };
    tokio::spawn(run_instance(name, run, ctx, control, kill.clone()));
    InstanceHandle {
        input: input_tx,
        file_slot: Arc::new(Semaphore::new(FILE_SLOT)),
        control: control_tx,
        halted: halted_tx,
        kill,
    }
}

/// How an invocation ended.
enum Ended {
    Done,
    Aborted,
    Killed,
}

async fn run_instance(
    name: String,
    run: RunFn,
    mut ctx: CmdCtx,
    mut control: mpsc::UnboundedReceiver<Control>,
    kill: CancellationToken,
) {
    let (cmd, branch, out) = (ctx.cmd, ctx.branch, ctx.out.clone());
    loop {
        let frame = tokio::select! {
            biased;
            () = kill.cancelled() => break,
            c = control.recv() => {
                // Nothing runs: answer the control frame with IDLE (PROTOCOL.md §2.5 (a)).
                out.send(SessionMsg::Idle { cmd, branch }).await;
                match c {
                    Some(Control::Term) => continue,
                    Some(Control::Kill) | None => break,
                }
            }
            frame = ctx.input.recv() => match frame { Some((f, _)) => f, None => break },
        };
        let ended = tokio::select! {
            biased;
            () = kill.cancelled() => Ended::Killed,
            c = control.recv() => match c {
                Some(Control::Term) => Ended::Aborted,
                Some(Control::Kill) | None => Ended::Killed,
            },
            res = timed(&name, run(&mut ctx, Input::new(frame))) => {
                report(&name, &ctx, res).await;
                Ended::Done
            }
        };
        if matches!(ended, Ended::Aborted) {
            // Input the client sent before its TERM_CMD (file chunks, acknowledgements) was
            // meant for the aborted invocation; it must not start new ones. A client waits
            // for the IDLE below before sending more to this pair.
            while ctx.input.try_recv().is_ok() {}
        }
        out.send(SessionMsg::Idle { cmd, branch }).await;
        if matches!(ended, Ended::Killed) {
            break;
        }
    }
    out.send(SessionMsg::Ended { cmd, branch }).await;
}

/// Runs one invocation and records it (`mrci_commands_total`, `mrci_command_seconds`).
async fn timed(name: &str, body: impl Future<Output = super::CmdResult>) -> super::CmdResult {
    let start = tokio::time::Instant::now();
    let res = body.await;
    crate::metrics::command(name, start.elapsed());
    res
}

/// Sends a body's refusal as ERR, or logs its internal failure and sends the generic ERR.
async fn report(name: &str, ctx: &CmdCtx, res: super::CmdResult) {
    match res {
        Ok(()) => {}
        Err(Fail::Refused(refusal)) => ctx.refuse(&refusal).await,
        Err(Fail::Internal(e)) if e.is_db_unreachable() => {
            tracing::warn!(command = name, error = %e, "database unreachable");
            ctx.refuse(&super::Refusal::new(super::refusal::DB_UNREACHABLE))
                .await;
        }
        Err(Fail::Internal(e)) => {
            tracing::error!(command = name, error = %e, "internal command failed");
            ctx.refuse(&super::Refusal::new(INTERNAL_ERROR)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::FutureExt as _;

    use super::*;

    fn handle() -> (InstanceHandle, mpsc::Receiver<Queued>) {
        let (input, rx) = mpsc::channel(INPUT_FRAMES);
        let handle = InstanceHandle {
            input,
            file_slot: Arc::new(Semaphore::new(FILE_SLOT)),
            control: mpsc::unbounded_channel().0,
            halted: watch::channel(false).0,
            kill: CancellationToken::new(),
        };
        (handle, rx)
    }

    fn chunk(n: u8) -> Frame {
        Frame::new(
            TypeId::GEN_FILE,
            CmdId(256),
            BranchId(0),
            Bytes::from(vec![n; 16]),
        )
    }

    #[tokio::test]
    async fn the_session_reads_on_only_once_the_chunk_is_done_with() {
        let (handle, mut rx) = handle();
        let mut parked = handle.feed_file(chunk(1));
        assert!((&mut parked).now_or_never().is_none(), "queued, not taken");
        let (frame, slot) = rx.recv().await.expect("delivered");
        assert_eq!(frame.payload[0], 1);
        assert!(slot.is_some(), "the chunk travels with the slot");
        assert!((&mut parked).now_or_never().is_none(), "taken, not written");
        drop(slot);
        assert!(parked.now_or_never().is_some(), "written: read on");
    }

    #[tokio::test]
    async fn a_frame_arriving_while_the_slot_is_held_waits_for_it() {
        let (handle, mut rx) = handle();
        // A frame taken and held (an upload's chunk being written); the session was parked
        // on it, but a second frame for the same instance must still wait.
        let first = handle.feed_file(chunk(1));
        let (_, held) = rx.recv().await.expect("delivered");
        drop(first);
        let mut second = handle.feed_file(chunk(2));
        assert!((&mut second).now_or_never().is_none());
        assert!(
            rx.try_recv().is_err(),
            "not delivered while the slot is held"
        );
        drop(held);
        let deliver = async {
            let (frame, slot) = rx.recv().await.expect("delivered");
            assert_eq!(frame.payload[0], 2);
            drop(slot);
        };
        tokio::join!(second, deliver);
    }
}
