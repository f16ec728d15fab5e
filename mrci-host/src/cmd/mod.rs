//! Internal commands: the one table of every command built into the host and how each runs
//! (PROTOCOL.md §2.3–2.5, §5.9).
//!
//! A command's [`Exec`] says how the session runs it, and the session's dispatch matches on
//! that and nothing else (see ARCHITECTURE.md for the table):
//! - [`Exec::Task`]: an instance task per (command id, branch id) pair, fed the client's
//!   frames (`instance`); most commands, and every one that prompts.
//! - [`Exec::Local`]: answered by the session from its own view in its own task, with no
//!   instance (`my_info`: one hop less per call).
//! - [`Exec::Inline`]: the client's frame is data for other sessions that the session
//!   delivers itself in one hop, in send order (`cast`, `to_peer`).
//! - [`Exec::Module`]: a run-mode module process (`session::instances`).
//!
//! Invariant: commands never touch session state directly; they read a published
//! [`SessionView`] and ask the session to change itself with a [`SessionRequest`], sent on the
//! same ordered channel as their output frames. A command body reports a refusal as
//! [`Fail::Refused`] and never writes the `err: ` prefix itself.

mod accounts;
mod auth;
mod cast;
mod certs;
mod channels;
mod ctx;
mod filecopy;
mod files;
mod groups;
mod info;
pub(crate) mod instance;
mod mods;
mod operate;
mod recovery;
mod refusal;
mod subch;
mod table;
mod templates;
mod transfer;
mod util;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use mrci_proto::{CmdId, TypeId};

pub(crate) use self::{
    ctx::{CmdCtx, Input, Outbox, SessionMsg, SessionRequest},
    refusal::{Fail, INTERNAL_ERROR, Refusal},
};
pub(crate) use self::{refusal::refuse, subch::plan_open};
use crate::session::SessionView;

/// What a command may do when the session is logged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoggedInClass {
    /// Not loaded while logged in.
    Never,
    /// Loaded for every logged-in user; command ranks are ignored.
    Exempt,
    /// Loaded when the user's rank is at least as powerful as the command's rank (default 1).
    Ranked,
}

/// A self-service feature the operator can switch off (see [`Features`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feature {
    /// Account creation before login (`add_acct` as a public command).
    Registration,
    /// Password recovery before login (`request_pw_reset`, `recover_acct` as public commands).
    Recovery,
    /// Email verification (`verify_email`, logged in or not at all).
    EmailVerify,
    /// The file commands (`fs_*`), on when `[files] root` is configured.
    Files,
}

/// Which [`Feature`]s are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Features {
    /// [`Feature::Registration`].
    pub registration: bool,
    /// [`Feature::Recovery`].
    pub recovery: bool,
    /// [`Feature::EmailVerify`].
    pub email_verify: bool,
    /// [`Feature::Files`].
    pub files: bool,
}

impl Features {
    /// Every feature on.
    #[cfg(test)]
    pub(crate) const ALL: Self = Self {
        registration: true,
        recovery: true,
        email_verify: true,
        files: true,
    };

    /// Whether `feature` is on.
    pub(crate) fn on(self, feature: Feature) -> bool {
        match feature {
            Feature::Registration => self.registration,
            Feature::Recovery => self.recovery,
            Feature::EmailVerify => self.email_verify,
            Feature::Files => self.files,
        }
    }
}

/// The future an invocation returns.
pub(crate) type CmdFuture<'a> = BoxFuture<'a, CmdResult>;

/// Runs one invocation of an [`Exec::Task`] command: the context and the frame that started it.
pub(crate) type RunFn = for<'a> fn(&'a mut CmdCtx, Input) -> CmdFuture<'a>;

/// An [`Exec::Local`] command: the frames the session sends for it, from its view alone.
pub(crate) type LocalFn = fn(&SessionView) -> Vec<(TypeId, Bytes)>;

/// An invocation's outcome: done (its output already sent), refused, or failed inside.
pub(crate) type CmdResult = Result<(), Fail>;

/// Data the session carries itself for an [`Exec::Inline`] command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inline {
    /// `cast`: to every session with a matching open sub-channel.
    Cast,
    /// `to_peer`: to one session with an accepted P2P link.
    ToPeer,
}

/// How a command runs; see the module docs.
#[derive(Clone)]
pub(crate) enum Exec {
    /// An instance task per (command id, branch id).
    Task(RunFn),
    /// Answered by the session from its view, without an instance.
    Local(LocalFn),
    /// Data the session delivers itself.
    Inline(Inline),
    /// A module's run-mode process.
    Module(Arc<crate::modules::ModCmd>),
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Task(_) => f.write_str("Task"),
            Self::Local(_) => f.write_str("Local"),
            Self::Inline(i) => write!(f, "Inline({i:?})"),
            Self::Module(m) => write!(f, "Module({})", m.new_cmd.name),
        }
    }
}

/// Wraps `async fn body(ctx: &mut CmdCtx, input: Input) -> CmdResult` as an [`Exec::Task`].
macro_rules! task {
    ($body:path) => {{
        fn run(
            ctx: &mut $crate::cmd::CmdCtx,
            input: $crate::cmd::Input,
        ) -> $crate::cmd::CmdFuture<'_> {
            Box::pin($body(ctx, input))
        }
        $crate::cmd::Exec::Task(run)
    }};
}
pub(crate) use task;

/// A command built into the host.
pub(crate) struct CommandDef {
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
    /// How it runs.
    pub exec: Exec,
}

impl CommandDef {
    /// A user-ranked command without GEN_FILE or a feature switch, the most common kind.
    pub(crate) fn ranked(
        name: &'static str,
        summary: &'static str,
        io: &'static str,
        details: &'static str,
        exec: Exec,
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
            exec,
        }
    }
}

impl std::fmt::Debug for CommandDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandDef")
            .field("name", &self.name)
            .field("exec", &self.exec)
            .finish_non_exhaustive()
    }
}

/// Every internal command, in name order.
pub(crate) fn internal_commands() -> &'static [CommandDef] {
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
            .chain(operate::commands())
            .chain(certs::commands())
            .chain(files::commands())
            .collect();
        all.sort_by_key(|c| c.name);
        debug_assert!(
            all.iter().all(|c| !matches!(c.exec, Exec::Module(_))),
            "internal commands do not run in modules"
        );
        all
    })
}

/// A command a session can load: built into the host, or listed by a module.
#[derive(Debug, Clone)]
pub(crate) enum CmdRef {
    /// An internal command.
    Internal(&'static CommandDef),
    /// A module command.
    Module(Arc<crate::modules::ModCmd>),
}

impl CmdRef {
    /// The command's own name (before any suffix that makes it unique in a session).
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Internal(def) => def.name,
            Self::Module(cmd) => &cmd.new_cmd.name,
        }
    }

    /// Whether it takes GEN_FILE frames.
    pub(crate) fn gen_file(&self) -> bool {
        match self {
            Self::Internal(def) => def.gen_file,
            Self::Module(cmd) => cmd.new_cmd.gen_file,
        }
    }

    /// One-line summary.
    pub(crate) fn summary(&self) -> &str {
        match self {
            Self::Internal(def) => def.summary,
            Self::Module(cmd) => &cmd.new_cmd.summary,
        }
    }

    /// Input/output usage.
    pub(crate) fn io(&self) -> &str {
        match self {
            Self::Internal(def) => def.io,
            Self::Module(cmd) => &cmd.new_cmd.io,
        }
    }

    /// Long help.
    pub(crate) fn details(&self) -> &str {
        match self {
            Self::Internal(def) => def.details,
            Self::Module(cmd) => &cmd.new_cmd.details,
        }
    }

    /// How it runs.
    pub(crate) fn exec(&self) -> Exec {
        match self {
            Self::Internal(def) => def.exec.clone(),
            Self::Module(cmd) => Exec::Module(Arc::clone(cmd)),
        }
    }

    /// The same command (one definition, or one module's command announced alike: a module
    /// that lists a command with other texts for another user gets it announced again).
    pub(crate) fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Internal(a), Self::Internal(b)) => std::ptr::eq(*a, *b),
            (Self::Module(a), Self::Module(b)) => a.module == b.module && a.new_cmd == b.new_cmd,
            _ => false,
        }
    }
}

/// Builds the NEW_CMD payload announcing `cmd` under `id` and its unique `name`
/// (PROTOCOL.md §3.3.16).
pub(crate) fn announcement(cmd: &CmdRef, id: CmdId, name: &str) -> Bytes {
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
