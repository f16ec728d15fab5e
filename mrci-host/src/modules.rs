//! Module registry (COMMANDS.md §3.6, PROTOCOL.md §5.4): the module executables the host
//! knows, each with the commands it listed in the three list modes.
//!
//! How a module is listed is part of its registration ([`Listing`]). By default a module is
//! listed by every session, as seed 001 says: in public mode when the session is created and
//! at logout, in exempt and user modes at login, each time with the session's real shared
//! memory keys so that it can tailor its list to who is logged in (`session/listing.rs`).
//! A module registered with `listing = "once"` declares that its list never depends on the
//! session: the registry lists it once, host-wide, with empty memory keys, and sessions use
//! that list without starting a process. Session-listed modules are listed once here too,
//! in public mode, only to check that they are modules at all (and to count their commands
//! for `ls_mods`); sessions never use that probe. Run-mode processes are always per session
//! (`mrci_modrun::Runner`).
//!
//! Invariant: a path is in the registry at most once, and only after it listed
//! successfully.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use mrci_modrun::{Context, ListMode, list_commands};
use mrci_proto::payload::NewCmd;

pub(crate) use crate::config::Listing;
use crate::{Error, Result};

/// How a module command is loaded (COMMANDS.md §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Before login only.
    Public,
    /// Logged in, whatever the rank.
    Exempt,
    /// Logged in with a rank at least as powerful as the command's.
    Ranked,
}

/// One command a module listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModCmd {
    /// The module executable.
    pub module: PathBuf,
    /// Which list it came from.
    pub class: Class,
    /// What the module announced (its real name, texts and gen-file flag).
    pub new_cmd: NewCmd,
}

/// One registered module.
#[derive(Debug)]
pub(crate) struct Module {
    /// The executable.
    pub path: PathBuf,
    /// When it is listed.
    pub listing: Listing,
    /// Its commands: for a `once` module the list every session uses; for a `session` module
    /// the public list of the probe made when it was added (counted by `ls_mods`, never run).
    pub cmds: Vec<Arc<ModCmd>>,
}

impl Module {
    /// The commands every session takes from the registry: those of a `once` module.
    pub(crate) fn host_wide(&self) -> &[Arc<ModCmd>] {
        match self.listing {
            Listing::Once => &self.cmds,
            Listing::Session => &[],
        }
    }
}

/// The registered modules.
#[derive(Debug)]
pub(crate) struct Registry {
    cfg: Arc<mrci_modrun::Config>,
    modules: RwLock<Vec<Arc<Module>>>,
}

impl Registry {
    /// An empty registry whose modules are supervised with `cfg`.
    pub(crate) fn new(cfg: Arc<mrci_modrun::Config>) -> Self {
        Self {
            cfg,
            modules: RwLock::new(Vec::new()),
        }
    }

    /// The supervisor settings (for the sessions' runners).
    pub(crate) fn config(&self) -> Arc<mrci_modrun::Config> {
        Arc::clone(&self.cfg)
    }

    /// Every registered module.
    pub(crate) fn all(&self) -> Vec<Arc<Module>> {
        self.modules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True if `path` is registered.
    pub(crate) fn contains(&self, path: &Path) -> bool {
        self.all().iter().any(|m| m.path == path)
    }

    /// Lists `path` (in the three modes for a `once` module, in public mode as a probe for a
    /// `session` one) and registers it, replacing an earlier registration.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the file is not an executable or the module could not be
    /// listed (it never connected, exited early or broke the framing).
    pub(crate) async fn add(&self, path: &Path, listing: Listing) -> Result<Arc<Module>> {
        check_executable(path)?;
        let ctx = Context {
            tag: "list".into(),
            ..Context::default()
        };
        let modes: &[ListMode] = match listing {
            Listing::Once => &[ListMode::Public, ListMode::Exempt, ListMode::User],
            Listing::Session => &[ListMode::Public],
        };
        let mut cmds = Vec::new();
        for &mode in modes {
            let listed = list_commands(self.config(), &ctx, path, mode, &HashSet::new())
                .await
                .map_err(|e| {
                    Error::Invalid(format!("{} could not be listed: {e}", path.display()))
                })?;
            cmds.extend(commands_of(path, mode, listed));
        }
        let module = Arc::new(Module {
            path: path.to_owned(),
            listing,
            cmds,
        });
        let mut modules = self.modules.write().unwrap_or_else(|p| p.into_inner());
        modules.retain(|m| m.path != path);
        modules.push(Arc::clone(&module));
        Ok(module)
    }

    /// Unregisters `path`; false if it was not registered.
    pub(crate) fn remove(&self, path: &Path) -> bool {
        let mut modules = self.modules.write().unwrap_or_else(|p| p.into_inner());
        let before = modules.len();
        modules.retain(|m| m.path != path);
        modules.len() != before
    }
}

/// The class of commands a list mode gives.
pub(crate) fn class_of(mode: ListMode) -> Class {
    match mode {
        ListMode::Public => Class::Public,
        ListMode::Exempt => Class::Exempt,
        ListMode::User => Class::Ranked,
    }
}

/// The commands of one listing, its errors logged.
pub(crate) fn commands_of(
    path: &Path,
    mode: ListMode,
    listing: mrci_modrun::Listing,
) -> impl Iterator<Item = Arc<ModCmd>> + '_ {
    for err in &listing.errors {
        tracing::warn!(module = %path.display(), error = %err, "module reported an error while listing");
    }
    let class = class_of(mode);
    listing.commands.into_iter().map(move |listed| {
        Arc::new(ModCmd {
            module: path.to_owned(),
            class,
            new_cmd: listed.cmd,
        })
    })
}

/// A module path must be a regular, executable file (PROTOCOL.md §9 item 40 for the text
/// rule, checked by the caller).
fn check_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(Error::Invalid(format!(
            "{} is not an executable file",
            path.display()
        )));
    }
    Ok(())
}
