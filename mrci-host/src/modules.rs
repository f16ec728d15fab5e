//! Module registry (COMMANDS.md §3.6, PROTOCOL.md §5.4): the module executables the host
//! knows, each with the commands it listed in the three list modes.
//!
//! A module is listed once when it is added (or at start-up), not once per session as in
//! the original: the command set does not depend on the session, and one listing per
//! module keeps logins cheap. Sessions read the registry when they compute their command
//! set; run-mode processes are per session (`mrci_modrun::Runner`).
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
    /// Its commands.
    pub cmds: Vec<Arc<ModCmd>>,
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

    /// Lists `path` in the three modes and registers it (replacing an earlier listing).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the file is not an executable or the module could not be
    /// listed (it never connected, exited early or broke the framing).
    pub(crate) async fn add(&self, path: &Path) -> Result<Arc<Module>> {
        check_executable(path)?;
        let ctx = Context {
            tag: "list".into(),
            ..Context::default()
        };
        let mut cmds = Vec::new();
        for (mode, class) in [
            (ListMode::Public, Class::Public),
            (ListMode::Exempt, Class::Exempt),
            (ListMode::User, Class::Ranked),
        ] {
            let listing = list_commands(self.config(), &ctx, path, mode, &HashSet::new())
                .await
                .map_err(|e| {
                    Error::Invalid(format!("{} could not be listed: {e}", path.display()))
                })?;
            for err in &listing.errors {
                tracing::warn!(module = %path.display(), error = %err, "module reported an error while listing");
            }
            for listed in listing.commands {
                cmds.push(Arc::new(ModCmd {
                    module: path.to_owned(),
                    class,
                    new_cmd: listed.cmd,
                }));
            }
        }
        let module = Arc::new(Module {
            path: path.to_owned(),
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
