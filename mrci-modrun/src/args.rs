//! The module command line (seeds 001/004 §2.3, PROTOCOL.md §5.1): one mode option plus
//! `-pipe`/`-pipe_name`, `-mem_ses` and `-mem_host`.
//!
//! Invariant: the host side ([`ModuleArgs::to_args`]) and the module side
//! ([`ModuleArgs::parse`]) are one pair of functions, so what the host passes is exactly
//! what a module built on this crate reads back. Parsing is key lookup, so order does not
//! matter and unknown options are ignored.

use std::{ffi::OsString, path::PathBuf};

use crate::error::{Error, Result};

/// Which list a list-mode process is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListMode {
    /// `-public_cmds`: commands usable without login.
    Public,
    /// `-exempt_cmds`: commands exempt from rank checks.
    Exempt,
    /// `-user_cmds`: rank-controlled commands.
    User,
}

impl ListMode {
    /// The command-line option, such as `-public_cmds`.
    pub fn option(self) -> &'static str {
        match self {
            Self::Public => "-public_cmds",
            Self::Exempt => "-exempt_cmds",
            Self::User => "-user_cmds",
        }
    }
}

/// What a module process was started to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Send one NEW_CMD per command of this list, then exit.
    List(ListMode),
    /// `-run_cmd NAME`: run the command with this (real, not unique) name.
    Run(String),
}

/// A module's options, as the host passes them and as a module reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleArgs {
    /// List or run mode.
    pub mode: Mode,
    /// The Unix socket to connect to (`-pipe`, or `-pipe_name` as e7ea316 spells it).
    pub pipe: PathBuf,
    /// The session shared-memory key (`-mem_ses`); attach with `mrci_shm::SessionShm::attach`.
    pub mem_ses: String,
    /// The host shared-memory key (`-mem_host`).
    pub mem_host: String,
}

impl ModuleArgs {
    /// Reads the options of the running process.
    ///
    /// # Errors
    /// [`Error::Usage`] if no mode or no pipe was given.
    pub fn from_env() -> Result<Self> {
        Self::parse(std::env::args_os().skip(1))
    }

    /// Reads options from an argument list (without the program name).
    ///
    /// # Errors
    /// [`Error::Usage`] if no mode or no pipe was given, or an option lacks its value.
    pub fn parse<I, S>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let value = |key: &str| -> Result<Option<OsString>> {
            match args.iter().position(|a| a == key) {
                None => Ok(None),
                Some(i) => match args.get(i + 1) {
                    Some(v) => Ok(Some(v.clone())),
                    None => Err(Error::Usage(format!("{key} needs a value"))),
                },
            }
        };
        let has = |key: &str| args.iter().any(|a| a == key);
        let mode = if let Some(name) = value("-run_cmd")? {
            Mode::Run(name.to_string_lossy().into_owned())
        } else if has("-public_cmds") {
            Mode::List(ListMode::Public)
        } else if has("-exempt_cmds") {
            Mode::List(ListMode::Exempt)
        } else if has("-user_cmds") {
            Mode::List(ListMode::User)
        } else {
            return Err(Error::Usage("no mode option".into()));
        };
        let pipe = match value("-pipe")? {
            Some(p) => p,
            None => value("-pipe_name")?.ok_or_else(|| Error::Usage("no -pipe option".into()))?,
        };
        let text = |key: &str| -> Result<String> {
            Ok(value(key)?
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        Ok(Self {
            mode,
            pipe: PathBuf::from(pipe),
            mem_ses: text("-mem_ses")?,
            mem_host: text("-mem_host")?,
        })
    }

    /// The argument vector the host passes: both `-pipe` and `-pipe_name` (PROTOCOL.md §9
    /// item 13), the two keys, then the mode option(s).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec![
            "-pipe".into(),
            self.pipe.clone().into(),
            "-pipe_name".into(),
            self.pipe.clone().into(),
            "-mem_ses".into(),
            self.mem_ses.clone().into(),
            "-mem_host".into(),
            self.mem_host.clone().into(),
        ];
        match &self.mode {
            Mode::List(list) => out.push(list.option().into()),
            Mode::Run(name) => out.extend(["-run_cmd".into(), name.into()]),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_mode() {
        for mode in [
            Mode::List(ListMode::Public),
            Mode::List(ListMode::Exempt),
            Mode::List(ListMode::User),
            Mode::Run("echo".into()),
        ] {
            let args = ModuleArgs {
                mode,
                pipe: "/run/x/sock".into(),
                mem_ses: "ses-key".into(),
                mem_host: "host-key".into(),
            };
            assert_eq!(ModuleArgs::parse(args.to_args()).unwrap(), args);
        }
    }

    #[test]
    fn e7ea316_spelling_and_any_order() {
        let args = ModuleArgs::parse(["-user_cmds", "-mem_ses", "k", "-pipe_name", "/p"]).unwrap();
        assert_eq!(args.mode, Mode::List(ListMode::User));
        assert_eq!(args.pipe, PathBuf::from("/p"));
        assert_eq!(args.mem_ses, "k");
        assert_eq!(args.mem_host, "");
    }

    #[test]
    fn missing_parts_are_usage_errors() {
        assert!(ModuleArgs::parse(["-pipe", "/p"]).is_err());
        assert!(ModuleArgs::parse(["-public_cmds"]).is_err());
        assert!(ModuleArgs::parse(["-public_cmds", "-pipe"]).is_err());
        assert!(ModuleArgs::parse(["-pipe", "/p", "-run_cmd"]).is_err());
    }
}
