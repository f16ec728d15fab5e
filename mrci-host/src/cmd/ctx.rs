//! What a running command sees and uses: [`CmdCtx`] (host context, its session's published
//! view, its input frames, its output to the client) and the messages between an instance
//! task and its session ([`SessionMsg`], [`SessionRequest`]).
//!
//! Invariant: an instance never touches session state; it reads the published
//! [`SessionView`] and asks for changes with a [`SessionRequest`], sent on the same ordered
//! channel as its output, so a change is applied before any output that follows it. Output is
//! bounded in bytes (the session's output budget): a command producing faster than the client
//! reads waits instead of piling frames up in memory.

use std::sync::Arc;

use bytes::Bytes;
use mrci_proto::{BranchId, CmdId, Frame, SessionId, TypeId, UserId, args::Args, text};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::Refusal;
use crate::{
    bus::P2pKind,
    host::HostCtx,
    session::{OpenSub, SessionView},
};

/// The frame that started an invocation, with its TEXT arguments parsed (COMMANDS.md §0.1).
#[derive(Debug)]
pub(crate) struct Input {
    /// The frame as the client sent it.
    pub frame: Frame,
    /// Its payload read as the argument language (empty for binary payloads).
    pub args: Args,
}

impl Input {
    /// Parses `frame`'s payload as arguments.
    pub(crate) fn new(frame: Frame) -> Self {
        let args = Args::parse(&frame.text_payload());
        Self { frame, args }
    }
}

/// A request from a command to its session.
#[derive(Debug)]
pub(crate) enum SessionRequest {
    /// Log in as this user (re-read from the store by the session).
    Login {
        /// The authenticated account.
        user_id: UserId,
    },
    /// Log out and reload the public command set.
    Logout,
    /// Open a sub-channel the command checked access to.
    OpenSub {
        /// The sub-channel and how it opens.
        sub: OpenSub,
        /// The outcome.
        reply: Reply,
    },
    /// Close an open sub-channel.
    CloseSub {
        /// The sub-channel.
        key: mrci_proto::SubChKey,
        /// The outcome.
        reply: Reply,
    },
    /// Set or clear the channel owner override.
    OwnerOverride(bool),
    /// Set the working directory of the file commands (relative to the file root).
    SetDir(String),
    /// Ping the active peers.
    Ping {
        /// The outcome.
        reply: Reply,
    },
    /// A P2P request, acceptance or close towards `peer`.
    P2p {
        /// The other session.
        peer: SessionId,
        /// What to do.
        kind: P2pKind,
        /// The outcome.
        reply: Reply,
    },
}

/// Where the session answers a request: the success text or the refusal.
pub(crate) type Reply = oneshot::Sender<Result<String, Refusal>>;

/// What an instance sends to its session, in order.
#[derive(Debug)]
pub(crate) enum SessionMsg {
    /// A frame for the client on the instance's pair.
    Frame {
        /// The instance's command id.
        cmd: CmdId,
        /// The instance's branch id.
        branch: BranchId,
        /// Payload type.
        type_id: TypeId,
        /// Payload.
        payload: Bytes,
        /// The part of the output budget the frame holds until it is written.
        budget: Option<OwnedSemaphorePermit>,
    },
    /// The current invocation finished (an IDLE frame for the client).
    Idle {
        /// The instance's command id.
        cmd: CmdId,
        /// The instance's branch id.
        branch: BranchId,
    },
    /// A state change only the session may make.
    Request(SessionRequest),
    /// The instance task has ended.
    Ended {
        /// The instance's command id.
        cmd: CmdId,
        /// The instance's branch id.
        branch: BranchId,
    },
}

/// The session's side of its instances' output: the ordered channel and the byte budget.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<SessionMsg>,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

impl Outbox {
    /// An outbox whose frames may hold at most `budget_bytes` of payload at a time, and the
    /// session's receiving end.
    pub(crate) fn new(budget_bytes: usize) -> (Self, mpsc::Receiver<SessionMsg>) {
        let budget_bytes = budget_bytes.clamp(1, Semaphore::MAX_PERMITS);
        // Messages are small; the byte budget, not this count, bounds the memory they hold.
        let (tx, rx) = mpsc::channel(OUTBOX_MESSAGES);
        let budget = Arc::new(Semaphore::new(budget_bytes));
        (
            Self {
                tx,
                budget,
                budget_bytes,
            },
            rx,
        )
    }

    pub(crate) async fn send(&self, msg: SessionMsg) {
        // A closed channel means the session is gone; there is no one left to tell.
        let _ = self.tx.send(msg).await;
    }

    /// Waits until the budget has room for `len` payload bytes (a frame larger than the whole
    /// budget waits for all of it).
    async fn reserve(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let n = len.min(self.budget_bytes);
        if n == 0 {
            return None;
        }
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        Arc::clone(&self.budget).acquire_many_owned(n).await.ok()
    }
}

/// Messages an instance may have in flight towards its session; its output bytes are bounded
/// separately by the budget.
const OUTBOX_MESSAGES: usize = 256;

/// Everything an invocation can see and do.
pub(crate) struct CmdCtx {
    /// Host-wide context: config, store, bus, clock.
    pub host: Arc<HostCtx>,
    /// The instance's command id.
    pub cmd: CmdId,
    /// The instance's branch id.
    pub branch: BranchId,
    pub(super) input: mpsc::Receiver<super::instance::Queued>,
    pub(super) out: Outbox,
    pub(super) view: watch::Receiver<Arc<SessionView>>,
    pub(super) halted: watch::Receiver<bool>,
}

impl CmdCtx {
    /// The session's current state.
    pub(crate) fn view(&self) -> Arc<SessionView> {
        Arc::clone(&self.view.borrow())
    }

    /// The caller's host rank (0 when logged out).
    pub(crate) fn rank(&self) -> u32 {
        self.view.borrow().rank()
    }

    /// The caller's user name (empty when logged out).
    pub(crate) fn user_name(&self) -> String {
        self.view
            .borrow()
            .user
            .as_ref()
            .map(|u| u.user_name.clone())
            .unwrap_or_default()
    }

    /// Sends a frame of any type to the client on this instance's pair, waiting while the
    /// session's output budget is spent.
    pub(crate) async fn send(&self, type_id: TypeId, payload: impl Into<Bytes>) {
        let payload = payload.into();
        let budget = self.out.reserve(payload.len()).await;
        let msg = SessionMsg::Frame {
            cmd: self.cmd,
            branch: self.branch,
            type_id,
            payload,
            budget,
        };
        self.out.send(msg).await;
    }

    /// Sends TEXT.
    pub(crate) async fn text(&self, s: &str) {
        self.send(TypeId::TEXT, text::encode(s)).await;
    }

    /// Sends a refusal as ERR; the command goes on (for refusals that end it, return
    /// [`super::Fail::Refused`]).
    pub(crate) async fn refuse(&self, refusal: &Refusal) {
        self.send(TypeId::ERR, text::encode(&refusal.wire_text()))
            .await;
    }

    /// Sends BIG_TEXT.
    pub(crate) async fn big_text(&self, s: &str) {
        self.send(TypeId::BIG_TEXT, text::encode(s)).await;
    }

    /// Sends a PRIV_TEXT prompt, after which the client hides the user's input.
    pub(crate) async fn priv_prompt(&self, s: &str) {
        self.send(TypeId::PRIV_TEXT, text::encode(s)).await;
    }

    /// Asks the session to change its state. The request is applied before any later output.
    pub(crate) async fn request(&self, req: SessionRequest) {
        self.out.send(SessionMsg::Request(req)).await;
    }

    /// Sends a request that the session answers, and waits for the answer. A session that
    /// is ending answers nothing; that reads as a refusal.
    pub(crate) async fn ask(
        &self,
        make: impl FnOnce(Reply) -> SessionRequest,
    ) -> Result<String, Refusal> {
        let (tx, rx) = oneshot::channel();
        self.request(make(tx)).await;
        rx.await
            .unwrap_or_else(|_| Err(Refusal::new("The session is closing.")))
    }

    /// Waits for the next frame the client sends to this pair (an answer to a prompt, or
    /// the next GEN_FILE chunk). `None` when the session is closing.
    pub(crate) async fn next_input(&mut self) -> Option<Frame> {
        // Taking the frame frees its share of the GEN_FILE queue (the permit drops here).
        self.input.recv().await.map(|(frame, _)| frame)
    }

    /// Like [`CmdCtx::next_input`], with the frame's hold on the instance's GEN_FILE slot
    /// (`instance::FILE_SLOT`): the session delivers no further file data to this instance
    /// until it is dropped, so an upload drops it once the chunk is on disk.
    pub(crate) async fn next_input_held(&mut self) -> Option<super::instance::Queued> {
        self.input.recv().await
    }

    /// Waits until every frame queued for the session (by any instance) has been written
    /// to the connection: the whole output budget is free again. A download reads its next
    /// chunk only then, so it holds one chunk at a time.
    pub(crate) async fn written(&self) {
        drop(self.out.reserve(self.out.budget_bytes).await);
    }

    /// Waits for the next TEXT answer; any other frame type is treated as an empty answer,
    /// which by convention cancels (COMMANDS.md §0.2).
    pub(crate) async fn next_text(&mut self) -> Option<String> {
        let frame = self.next_input().await?;
        Some(if frame.type_id == TypeId::TEXT {
            text::decode(&frame.payload)
        } else {
            String::new()
        })
    }

    /// Returns at once unless the instance is halted; then waits for RESUME_CMD.
    pub(crate) async fn wait_resumed(&mut self) {
        // An error means the instance is being torn down; the kill ends the body anyway.
        let _ = self.halted.wait_for(|halted| !halted).await;
    }
}
