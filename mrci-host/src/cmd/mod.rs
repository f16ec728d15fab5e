//! Internal commands: their static table, the context an instance runs with, and the task that
//! runs one (command id, branch id) instance (PROTOCOL.md §2.3–2.5, §5.9).
//!
//! An instance is a task fed the client's frames for its pair. It runs one invocation per
//! input frame that arrives while it is idle, ends every invocation with IDLE, and is reused
//! afterwards, exactly like a run-mode module process, so the session routes both the same
//! way. TERM_CMD aborts the current invocation (IDLE follows); KILL_CMD also ends the instance.
//!
//! Invariant: commands never touch session state directly; they read a published
//! [`SessionView`] and ask the session to change itself with a [`SessionRequest`], sent on the
//! same ordered channel as their output frames.

mod accounts;
mod auth;
mod cast;
mod channels;
mod groups;
mod info;
mod mods;
mod recovery;
mod subch;
mod table;
mod templates;
mod util;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use mrci_proto::{BranchId, CmdId, Frame, TypeId, text};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use self::cast::{CAST, TO_PEER};
pub(crate) use self::subch::plan_open;
use crate::{host::HostCtx, session::SessionView};

/// What a command may do when the session is logged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoggedInClass {
    /// Not loaded while logged in.
    Never,
    /// Loaded for every logged-in user; command ranks are ignored.
    Exempt,
    /// Loaded when the user's rank is at least as powerful as the command's rank (default 1).
    Ranked,
}

/// A self-service feature the operator can switch off (see [`Features`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Account creation before login (`add_acct` as a public command).
    Registration,
    /// Password recovery before login (`request_pw_reset`, `recover_acct` as public commands).
    Recovery,
    /// Email verification (`verify_email`, logged in or not at all).
    EmailVerify,
}

/// Which [`Feature`]s are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// [`Feature::Registration`].
    pub registration: bool,
    /// [`Feature::Recovery`].
    pub recovery: bool,
    /// [`Feature::EmailVerify`].
    pub email_verify: bool,
}

impl Features {
    /// Every feature on.
    pub const ALL: Self = Self {
        registration: true,
        recovery: true,
        email_verify: true,
    };

    /// Whether `feature` is on.
    pub fn on(self, feature: Feature) -> bool {
        match feature {
            Feature::Registration => self.registration,
            Feature::Recovery => self.recovery,
            Feature::EmailVerify => self.email_verify,
        }
    }
}

/// The future an invocation returns.
pub type CmdFuture<'a> = BoxFuture<'a, CmdResult>;

/// Runs one invocation: the context and the frame that started it.
pub type RunFn = for<'a> fn(&'a mut CmdCtx, Frame) -> CmdFuture<'a>;

/// An invocation's outcome. `Err` is an internal failure: the client gets a generic ERR and
/// the log gets the reason; a failure *for the client* is an ERR frame and `Ok`.
pub type CmdResult = Result<(), crate::Error>;

/// A command built into the host.
pub struct CommandDef {
    /// The command's name as announced.
    pub name: &'static str,
    /// Loaded while the session is not logged in.
    pub public: bool,
    /// Loaded while logged in, and how.
    pub logged_in: LoggedInClass,
    /// Handles GEN_FILE frames.
    pub gen_file: bool,
    /// A feature that must be on: for registration and recovery it gates only the public
    /// (logged-out) availability; for email verification it gates the command entirely.
    pub feature: Option<Feature>,
    /// One-line summary (NEW_CMD short help).
    pub summary: &'static str,
    /// Input/output usage (NEW_CMD IO help).
    pub io: &'static str,
    /// Long help.
    pub details: &'static str,
    /// The body.
    pub run: RunFn,
}

impl CommandDef {
    /// A user-ranked command without GEN_FILE or a feature switch, the most common kind.
    pub(crate) const fn ranked(
        name: &'static str,
        summary: &'static str,
        io: &'static str,
        details: &'static str,
        run: RunFn,
    ) -> Self {
        Self {
            name,
            public: false,
            logged_in: LoggedInClass::Ranked,
            gen_file: false,
            feature: None,
            summary,
            io,
            details,
            run,
        }
    }
}

impl std::fmt::Debug for CommandDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandDef")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every internal command, in name order.
pub fn internal_commands() -> &'static [CommandDef] {
    static ALL: std::sync::OnceLock<Vec<CommandDef>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<CommandDef> = accounts::commands()
            .into_iter()
            .chain(auth::commands())
            .chain(groups::commands())
            .chain(info::commands())
            .chain(recovery::commands())
            .chain(templates::commands())
            .chain(channels::commands())
            .chain(subch::commands())
            .chain(cast::commands())
            .chain(mods::commands())
            .collect();
        all.sort_by_key(|c| c.name);
        all
    })
}

/// The output of a command that only reads the session's own state, which the session
/// computes in its own task instead of starting an instance: one hop less per call. `None`
/// for every other command.
pub fn local_reply(name: &str, view: &SessionView) -> Option<Vec<(TypeId, Bytes)>> {
    match name {
        "my_info" => Some(info::my_info_reply(view).to_vec()),
        _ => None,
    }
}

/// A request from a command to its session.
#[derive(Debug)]
pub enum SessionRequest {
    /// Log in as this user (re-read from the store by the session).
    Login {
        /// The authenticated account.
        user_id: mrci_proto::UserId,
    },
    /// Log out and reload the public command set.
    Logout,
    /// End the session after the current output is written.
    End,
    /// Open a sub-channel the command checked access to.
    OpenSub {
        /// The sub-channel and how it opens.
        sub: crate::session::OpenSub,
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
    /// Ping the active peers.
    Ping {
        /// The outcome.
        reply: Reply,
    },
    /// A P2P request, acceptance or close towards `peer`.
    P2p {
        /// The other session.
        peer: mrci_proto::SessionId,
        /// What to do.
        kind: crate::bus::P2pKind,
        /// The outcome.
        reply: Reply,
    },
}

/// Where the session answers a request: the success text or the refusal (ERR text).
pub type Reply = tokio::sync::oneshot::Sender<Result<String, String>>;

/// What an instance sends to its session, in order.
#[derive(Debug)]
pub enum SessionMsg {
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

/// Everything an invocation can see and do.
pub struct CmdCtx {
    /// Host-wide context: config, store, bus, clock.
    pub host: Arc<HostCtx>,
    /// The instance's command id.
    pub cmd: CmdId,
    /// The instance's branch id.
    pub branch: BranchId,
    input: mpsc::Receiver<Frame>,
    out: mpsc::Sender<SessionMsg>,
    view: watch::Receiver<Arc<SessionView>>,
}

impl CmdCtx {
    /// The session's current state.
    pub fn view(&self) -> Arc<SessionView> {
        Arc::clone(&self.view.borrow())
    }

    /// Sends a frame of any type to the client on this instance's pair.
    pub async fn send(&self, type_id: TypeId, payload: impl Into<Bytes>) {
        let msg = SessionMsg::Frame {
            cmd: self.cmd,
            branch: self.branch,
            type_id,
            payload: payload.into(),
        };
        // A closed channel means the session is gone; there is no one left to tell.
        let _ = self.out.send(msg).await;
    }

    /// Sends TEXT.
    pub async fn text(&self, s: &str) {
        self.send(TypeId::TEXT, text::encode(s)).await;
    }

    /// Sends ERR.
    pub async fn err(&self, s: &str) {
        self.send(TypeId::ERR, text::encode(s)).await;
    }

    /// Sends BIG_TEXT.
    pub async fn big_text(&self, s: &str) {
        self.send(TypeId::BIG_TEXT, text::encode(s)).await;
    }

    /// Sends a PRIV_TEXT prompt, after which the client hides the user's input.
    pub async fn priv_prompt(&self, s: &str) {
        self.send(TypeId::PRIV_TEXT, text::encode(s)).await;
    }

    /// Asks the session to change its state. The request is applied before any later output.
    pub async fn request(&self, req: SessionRequest) {
        let _ = self.out.send(SessionMsg::Request(req)).await;
    }

    /// Sends a request that the session answers, and waits for the answer. A session that
    /// is ending answers nothing; that reads as a refusal.
    pub async fn ask(&self, make: impl FnOnce(Reply) -> SessionRequest) -> Result<String, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.request(make(tx)).await;
        rx.await
            .unwrap_or_else(|_| Err("err: The session is closing.".into()))
    }

    /// Waits for the next frame the client sends to this pair (an answer to a prompt).
    /// `None` when the session is closing.
    pub async fn next_input(&mut self) -> Option<Frame> {
        self.input.recv().await
    }

    /// Waits for the next TEXT answer; any other frame type is treated as an empty answer,
    /// which by convention cancels (COMMANDS.md §0.2).
    pub async fn next_text(&mut self) -> Option<String> {
        let frame = self.next_input().await?;
        Some(if frame.type_id == TypeId::TEXT {
            text::decode(&frame.payload)
        } else {
            String::new()
        })
    }
}

/// The session's side of a running instance.
pub struct InstanceHandle {
    /// Frames from the client for this pair.
    pub input: mpsc::Sender<Frame>,
    /// One message per TERM_CMD.
    pub term: mpsc::UnboundedSender<()>,
    /// Cancelled by KILL_CMD, command removal or session end.
    pub kill: CancellationToken,
}

/// Starts the task for one (command id, branch id) pair of an internal command.
pub fn spawn_instance(
    def: &'static CommandDef,
    host: Arc<HostCtx>,
    cmd: CmdId,
    branch: BranchId,
    out: mpsc::Sender<SessionMsg>,
    view: watch::Receiver<Arc<SessionView>>,
) -> InstanceHandle {
    let (input_tx, input) = mpsc::channel(32);
    let (term_tx, term) = mpsc::unbounded_channel();
    let kill = CancellationToken::new();
    let ctx = CmdCtx {
        host,
        cmd,
        branch,
        input,
        out,
        view,
    };
    tokio::spawn(run_instance(def, ctx, term, kill.clone()));
    InstanceHandle {
        input: input_tx,
        term: term_tx,
        kill,
    }
}

async fn run_instance(
    def: &'static CommandDef,
    mut ctx: CmdCtx,
    mut term: mpsc::UnboundedReceiver<()>,
    kill: CancellationToken,
) {
    let (cmd, branch, out) = (ctx.cmd, ctx.branch, ctx.out.clone());
    loop {
        let frame = tokio::select! {
            biased;
            _ = kill.cancelled() => break,
            frame = ctx.input.recv() => match frame { Some(f) => f, None => break },
        };
        // A TERM_CMD that raced with the end of the previous invocation must not abort this one.
        while term.try_recv().is_ok() {}
        let killed = tokio::select! {
            biased;
            _ = kill.cancelled() => true,
            _ = term.recv() => false,
            res = (def.run)(&mut ctx, frame) => {
                if let Err(e) = res {
                    tracing::error!(command = def.name, error = %e, "internal command failed");
                    ctx.err("err: The command failed because of an internal error; details were logged for the host admin.").await;
                }
                false
            }
        };
        let _ = out.send(SessionMsg::Idle { cmd, branch }).await;
        if killed {
            break;
        }
    }
    let _ = out.send(SessionMsg::Ended { cmd, branch }).await;
}

/// A command a session can load: built into the host, or listed by a module.
#[derive(Debug, Clone)]
pub enum CmdRef {
    /// An internal command.
    Internal(&'static CommandDef),
    /// A module command.
    Module(Arc<crate::modules::ModCmd>),
}

impl CmdRef {
    /// The command's own name (before any suffix that makes it unique in a session).
    pub fn name(&self) -> &str {
        match self {
            Self::Internal(def) => def.name,
            Self::Module(cmd) => &cmd.new_cmd.name,
        }
    }

    /// Whether it takes GEN_FILE frames.
    pub fn gen_file(&self) -> bool {
        match self {
            Self::Internal(def) => def.gen_file,
            Self::Module(cmd) => cmd.new_cmd.gen_file,
        }
    }

    /// One-line summary.
    pub fn summary(&self) -> &str {
        match self {
            Self::Internal(def) => def.summary,
            Self::Module(cmd) => &cmd.new_cmd.summary,
        }
    }

    /// Input/output usage.
    pub fn io(&self) -> &str {
        match self {
            Self::Internal(def) => def.io,
            Self::Module(cmd) => &cmd.new_cmd.io,
        }
    }

    /// Long help.
    pub fn details(&self) -> &str {
        match self {
            Self::Internal(def) => def.details,
            Self::Module(cmd) => &cmd.new_cmd.details,
        }
    }

    /// The same command (one definition, or one module's command of that name).
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Internal(a), Self::Internal(b)) => std::ptr::eq(*a, *b),
            (Self::Module(a), Self::Module(b)) => {
                a.module == b.module && a.new_cmd.name == b.new_cmd.name
            }
            _ => false,
        }
    }
}

/// Builds the NEW_CMD payload announcing `cmd` under `id` and its unique `name`
/// (PROTOCOL.md §3.3.16).
pub fn announcement(cmd: &CmdRef, id: CmdId, name: &str) -> Bytes {
    let lib = match cmd {
        CmdRef::Internal(_) => crate::host::library_name(),
        CmdRef::Module(m) => m.new_cmd.lib.clone(),
    };
    let new_cmd = mrci_proto::payload::NewCmd {
        cmd_id: id,
        gen_file: cmd.gen_file(),
        name: name.to_owned(),
        lib,
        summary: cmd.summary().to_owned(),
        io: cmd.io().to_owned(),
        details: cmd.details().to_owned(),
    };
    let mut out = bytes::BytesMut::new();
    new_cmd.write(&mut out);
    out.freeze()
}
