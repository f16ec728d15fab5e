//! Confining module processes (issue 16): resource limits, `no_new_privs` and, when the host
//! runs as root, an unprivileged user and group.
//!
//! `unsafe` is allowed only in mrci-shm, so `CommandExt::pre_exec` is out. The host instead
//! starts a launcher: `<launcher> <launcher args> <plan options> -- <module> <module args>`.
//! The launcher calls [`exec`], which applies the [`Plan`] to its own process with safe `nix`
//! calls and `execvp`s the module; the module keeps the launcher's pid, process group,
//! working directory, environment and pipes. The production launcher is the `mrci` binary's
//! hidden [`SUBCOMMAND`] ([`Launcher::mrci`]); tests may use any program that calls [`exec`].
//! Without a launcher ([`Confine::launcher`] is `None`) modules run unconfined.
//!
//! In the launcher, in this order: the resource limits (soft and hard limit both lowered,
//! never raised above the current hard limit, so the module cannot raise them again), core
//! dumps off (a module's memory holds session data), `PR_SET_NO_NEW_PRIVS` (no set-uid or
//! file-capability gain across `execve`), then `setgroups([gid])`, `setgid`, `setuid` and a
//! check that the switch took, then `execvp`. Any failure ends the launcher before the module
//! runs (exit status 127, the reason on stderr, which the host logs).
//!
//! What each limit does, and what the host can tell afterwards:
//! - address space (`RLIMIT_AS`): an allocation beyond it fails; a Rust or C++ module then
//!   aborts (SIGABRT), a C module often crashes (SIGSEGV), a Python one exits with an error.
//!   The host cannot tell these from other crashes; [`crate::Ended`]'s `Display` names the
//!   signal and says what it usually means.
//! - CPU time (`RLIMIT_CPU`): counts the process's whole life, every task a reused run-mode
//!   process serves. At the limit the kernel sends SIGXCPU ([`crate::ExitCause::CpuLimit`]);
//!   a module that catches it gets SIGKILL one CPU second later.
//! - open files (`RLIMIT_NOFILE`): `open` and `socket` fail with EMFILE.
//! - processes (`RLIMIT_NPROC`): counts every process and thread of the *user*, host-wide, so
//!   it is applied only when modules run as their own user (see [`Limits::processes`]).
//!
//! Access for the module user (done by the host when it starts a process): the runtime directory
//! becomes `root:<gid>` mode 0710 (enterable, not listable), each socket file is given to the
//! module user (mode 0600), and the session and host shared-memory objects named by
//! `-mem_ses` and `-mem_host` are given to the module user, because a module must open them
//! read-write to take their lock. Every module process of the host shares that user, so a
//! dedicated account is better than `nobody`.

use std::{
    convert::Infallible,
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use nix::{
    sys::resource::{Resource, getrlimit, setrlimit},
    unistd::{Gid, Group, Uid, User, execvp, getgid, getuid, setgid, setgroups, setuid},
};

use crate::error::{Error, Result};

/// The hidden subcommand of the `mrci` binary that runs [`exec`].
pub const SUBCOMMAND: &str = "confine-module";

/// Resource limits for every module process; `None` leaves a limit as the host has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Address space in bytes (`RLIMIT_AS`). Default 1 GiB. It counts reservations, not use:
    /// runtimes that reserve large heaps up front (the JVM, some Go versions) need more.
    pub address_space: Option<u64>,
    /// CPU seconds per process (`RLIMIT_CPU`), over its whole life. Default 60.
    pub cpu_secs: Option<u64>,
    /// Open file descriptors per process (`RLIMIT_NOFILE`). Default 256.
    pub open_files: Option<u64>,
    /// Processes and threads of the module user (`RLIMIT_NPROC`). Default 512. The kernel
    /// counts per user, not per module, so this caps all module processes of the host
    /// together; it is applied only when the modules run as their own user (a host running
    /// as root with [`Confine::run_as`]), because for modules running as the host's user
    /// the count would include the host's own threads and every other process of that user.
    pub processes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            address_space: Some(1 << 30),
            cpu_secs: Some(60),
            open_files: Some(256),
            processes: Some(512),
        }
    }
}

impl Limits {
    /// No limits at all.
    pub const NONE: Self = Self {
        address_space: None,
        cpu_secs: None,
        open_files: None,
        processes: None,
    };
}

/// The unprivileged account module processes run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id; also the only supplementary group.
    pub gid: u32,
}

impl RunAs {
    /// Looks up `user`, and `group` if given (else the user's primary group).
    ///
    /// # Errors
    /// [`Error::UnknownAccount`] if either does not exist; [`Error::Confine`] if the account
    /// database cannot be read.
    pub fn lookup(user: &str, group: Option<&str>) -> Result<Self> {
        let unknown = |kind, name: &str| Error::UnknownAccount {
            kind,
            name: name.to_owned(),
        };
        let found = User::from_name(user).map_err(|e| os("getpwnam", e))?;
        let found = found.ok_or_else(|| unknown("user", user))?;
        let gid = match group {
            None => found.gid,
            Some(name) => {
                let group = Group::from_name(name).map_err(|e| os("getgrnam", e))?;
                group.ok_or_else(|| unknown("group", name))?.gid
            }
        };
        Ok(Self {
            uid: found.uid.as_raw(),
            gid: gid.as_raw(),
        })
    }
}

/// The program the host starts instead of a module, with its leading arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launcher {
    /// The launcher executable.
    pub program: PathBuf,
    /// Arguments before the plan options, such as the subcommand.
    pub args: Vec<OsString>,
}

impl Launcher {
    /// The `mrci` binary at `program`, through its hidden [`SUBCOMMAND`].
    pub fn mrci(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: vec![SUBCOMMAND.into()],
        }
    }
}

/// How module processes are confined; part of [`crate::Config`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confine {
    /// The launcher; `None` runs modules directly and unconfined.
    pub launcher: Option<Launcher>,
    /// The resource limits.
    pub limits: Limits,
    /// The account modules run as when the host runs as root; ignored otherwise.
    pub run_as: Option<RunAs>,
}

impl Confine {
    /// The confinement for a host: `user` (and `group`) are looked up only when there is a
    /// launcher and this process runs as root; otherwise modules keep the host's user and
    /// both are ignored. An empty `user` keeps modules of a root host running as root (not
    /// recommended).
    ///
    /// # Errors
    /// As [`RunAs::lookup`].
    pub fn for_host(
        launcher: Option<Launcher>,
        limits: Limits,
        user: &str,
        group: Option<&str>,
    ) -> Result<Self> {
        let run_as = if launcher.is_some() && Uid::effective().is_root() && !user.is_empty() {
            Some(RunAs::lookup(user, group)?)
        } else {
            None
        };
        Ok(Self {
            launcher,
            limits,
            run_as,
        })
    }

    /// The account modules really run as: [`Self::run_as`] when there is a launcher, this
    /// process is root and the account is not root itself.
    pub fn effective_run_as(&self) -> Option<RunAs> {
        self.run_as
            .filter(|r| self.launcher.is_some() && r.uid != 0 && Uid::effective().is_root())
    }

    /// The program and arguments that start `exe args` under this confinement.
    pub(crate) fn command(&self, exe: &Path, args: Vec<OsString>) -> (PathBuf, Vec<OsString>) {
        let Some(launcher) = &self.launcher else {
            return (exe.to_path_buf(), args);
        };
        let run_as = self.effective_run_as();
        let mut limits = self.limits;
        if run_as.is_none() {
            limits.processes = None;
        }
        // A relative path with a directory part means the host's directory, not the
        // session's (the launcher starts in the session's); a bare name is searched in PATH.
        let exe = match exe.components().count() > 1 && exe.is_relative() {
            true => std::path::absolute(exe).unwrap_or_else(|_| exe.to_path_buf()),
            false => exe.to_path_buf(),
        };
        let plan = Plan {
            limits,
            run_as,
            exe: exe.into_os_string(),
            args,
        };
        let mut out = launcher.args.clone();
        out.extend(plan.to_args());
        (launcher.program.clone(), out)
    }
}

/// What the launcher does: the limits and account to apply, then the module to become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Limits to apply.
    pub limits: Limits,
    /// Account to switch to.
    pub run_as: Option<RunAs>,
    /// The module executable (searched in PATH if it has no `/`).
    pub exe: OsString,
    /// The module's arguments.
    pub args: Vec<OsString>,
}

impl Plan {
    /// The launcher options: `[--as N] [--cpu N] [--nofile N] [--nproc N] [--user UID:GID]
    /// -- EXE ARGS…`.
    pub fn to_args(&self) -> Vec<OsString> {
        let l = &self.limits;
        let mut out: Vec<OsString> = Vec::new();
        for (key, value) in [
            ("--as", l.address_space),
            ("--cpu", l.cpu_secs),
            ("--nofile", l.open_files),
            ("--nproc", l.processes),
        ] {
            if let Some(v) = value {
                out.extend([key.into(), v.to_string().into()]);
            }
        }
        if let Some(r) = self.run_as {
            out.extend(["--user".into(), format!("{}:{}", r.uid, r.gid).into()]);
        }
        out.extend(["--".into(), self.exe.clone()]);
        out.extend(self.args.iter().cloned());
        out
    }

    /// Reads what [`Self::to_args`] wrote.
    ///
    /// # Errors
    /// [`Error::Usage`] for an unknown option, a bad number or a missing module.
    pub fn parse<I, S>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut args = args.into_iter().map(Into::into);
        let (mut limits, mut run_as) = (Limits::NONE, None);
        loop {
            let key = args.next().ok_or_else(|| usage("no module to start"))?;
            if key == "--" {
                break;
            }
            let value = args
                .next()
                .ok_or_else(|| usage("an option lacks its value"))?;
            let value = value
                .to_str()
                .ok_or_else(|| usage("non-UTF-8 option value"))?;
            let number = |v: &str| v.parse::<u64>().map_err(|_| usage("bad number"));
            match key.to_str() {
                Some("--as") => limits.address_space = Some(number(value)?),
                Some("--cpu") => limits.cpu_secs = Some(number(value)?),
                Some("--nofile") => limits.open_files = Some(number(value)?),
                Some("--nproc") => limits.processes = Some(number(value)?),
                Some("--user") => {
                    let (uid, gid) = value.split_once(':').ok_or_else(|| usage("bad --user"))?;
                    let id = |v: &str| v.parse::<u32>().map_err(|_| usage("bad --user"));
                    run_as = Some(RunAs {
                        uid: id(uid)?,
                        gid: id(gid)?,
                    });
                }
                _ => return Err(usage(&format!("unknown option {}", key.to_string_lossy()))),
            }
        }
        let exe = args.next().ok_or_else(|| usage("no module to start"))?;
        Ok(Self {
            limits,
            run_as,
            exe,
            args: args.collect(),
        })
    }

    /// Applies the limits, `no_new_privs` and the account switch to this process.
    ///
    /// # Errors
    /// [`Error::Confine`] naming the step the operating system refused.
    pub fn apply(&self) -> Result<()> {
        let l = &self.limits;
        set_limit(Resource::RLIMIT_CORE, Some(0), 0)?;
        set_limit(Resource::RLIMIT_AS, l.address_space, 0)?;
        // One CPU second between SIGXCPU (the soft limit) and SIGKILL (the hard one): with
        // equal limits the kernel sends only SIGKILL and the cause could not be told.
        set_limit(Resource::RLIMIT_CPU, l.cpu_secs, 1)?;
        set_limit(Resource::RLIMIT_NOFILE, l.open_files, 0)?;
        set_limit(Resource::RLIMIT_NPROC, l.processes, 0)?;
        nix::sys::prctl::set_no_new_privs().map_err(|e| os("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
        if let Some(r) = self.run_as {
            let (uid, gid) = (Uid::from_raw(r.uid), Gid::from_raw(r.gid));
            setgroups(&[gid]).map_err(|e| os("setgroups", e))?;
            setgid(gid).map_err(|e| os("setgid", e))?;
            setuid(uid).map_err(|e| os("setuid", e))?;
            if getuid() != uid || Uid::effective() != uid || getgid() != gid {
                return Err(os("setuid", nix::errno::Errno::EPERM));
            }
        }
        Ok(())
    }
}

/// The launcher: parses a [`Plan`] from `args` (the arguments after the launcher's own),
/// applies it and becomes the module. Returns only on failure; the caller should print the
/// error and exit with status 127. Call it before starting any thread.
///
/// # Errors
/// [`Error::Usage`] for bad arguments, [`Error::Confine`] if a step is refused,
/// [`Error::Spawn`] if the module cannot be executed.
pub fn exec<I, S>(args: I) -> Result<Infallible>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let plan = Plan::parse(args)?;
    plan.apply()?;
    let c = |s: &OsString| CString::new(s.as_bytes()).map_err(|_| usage("NUL in an argument"));
    let file = c(&plan.exe)?;
    let argv = std::iter::once(&plan.exe)
        .chain(&plan.args)
        .map(c)
        .collect::<Result<Vec<_>>>()?;
    execvp(&file, &argv).map_err(|e| Error::Spawn {
        exe: PathBuf::from(&plan.exe),
        source: e.into(),
    })
}

/// Lowers `resource` to `wanted` (soft) and `wanted + hard_extra` (hard), never above the
/// current hard limit.
fn set_limit(resource: Resource, wanted: Option<u64>, hard_extra: u64) -> Result<()> {
    let Some(wanted) = wanted else {
        return Ok(());
    };
    let (_, hard) = getrlimit(resource).map_err(|e| os("getrlimit", e))?;
    let (soft, hard) = limit_pair(wanted, hard_extra, hard);
    setrlimit(resource, soft, hard).map_err(|e| os("setrlimit", e))
}

/// The (soft, hard) pair for a wanted limit under the current hard limit.
fn limit_pair(wanted: u64, hard_extra: u64, current_hard: u64) -> (u64, u64) {
    let hard = wanted.saturating_add(hard_extra).min(current_hard);
    (wanted.min(hard), hard)
}

fn os(step: &'static str, errno: nix::errno::Errno) -> Error {
    Error::Confine {
        step,
        source: errno.into(),
    }
}

fn usage(why: &str) -> Error {
    Error::Usage(format!("launcher: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            limits: Limits::default(),
            run_as: Some(RunAs {
                uid: 65534,
                gid: 65533,
            }),
            exe: "/opt/mod".into(),
            args: vec!["-run_cmd".into(), "--".into(), "x".into()],
        }
    }

    #[test]
    fn plans_round_trip_and_keep_module_arguments_verbatim() {
        let p = plan();
        assert_eq!(Plan::parse(p.to_args()).unwrap(), p);
        let bare = Plan {
            limits: Limits::NONE,
            run_as: None,
            args: vec![],
            ..p
        };
        assert_eq!(bare.to_args(), ["--", "/opt/mod"]);
        assert_eq!(Plan::parse(bare.to_args()).unwrap(), bare);
    }

    #[test]
    fn bad_plans_are_usage_errors() {
        for args in [
            &["--cpu", "x", "--", "m"][..],
            &["--cpu", "1"],
            &["--"],
            &["--bogus", "1", "--", "m"],
            &["--user", "1", "--", "m"],
        ] {
            assert!(
                matches!(Plan::parse(args), Err(Error::Usage(_))),
                "{args:?}"
            );
        }
    }

    #[test]
    fn limits_are_lowered_never_raised() {
        assert_eq!(limit_pair(60, 1, u64::MAX), (60, 61));
        assert_eq!(limit_pair(60, 1, 30), (30, 30));
        assert_eq!(limit_pair(256, 0, 20_000), (256, 256));
        assert_eq!(limit_pair(u64::MAX, 1, u64::MAX), (u64::MAX, u64::MAX));
    }

    #[test]
    fn without_a_launcher_the_module_starts_directly() {
        let confine = Confine::default();
        let (program, args) = confine.command(Path::new("/opt/mod"), vec!["-x".into()]);
        assert_eq!(
            (program.as_path(), &args[..]),
            (Path::new("/opt/mod"), &["-x".into()][..])
        );
    }

    #[test]
    fn the_launcher_gets_the_plan_and_the_process_limit_only_with_a_user_switch() {
        let confine = Confine {
            launcher: Some(Launcher::mrci("/usr/bin/mrci")),
            limits: Limits::default(),
            run_as: None,
        };
        let (program, args) = confine.command(Path::new("/opt/mod"), vec!["-x".into()]);
        assert_eq!(program, Path::new("/usr/bin/mrci"));
        assert_eq!(args[0], SUBCOMMAND);
        let plan = Plan::parse(&args[1..]).unwrap();
        assert_eq!(plan.limits.processes, None);
        assert_eq!(plan.limits.cpu_secs, Some(60));
        assert_eq!(
            (plan.exe.as_os_str(), &plan.args[..]),
            ("/opt/mod".as_ref(), &["-x".into()][..])
        );
    }
}
