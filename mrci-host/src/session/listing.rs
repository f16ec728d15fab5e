//! Listing modules for one session, as seed 001 says: every module registered with the
//! default `session` listing is called with `-public_cmds` when the session is created and
//! at logout, and with `-exempt_cmds` and `-user_cmds` at login, each time with the
//! session's own `-mem_ses` key (its segment filled in first) and the host's `-mem_host`, so
//! that a module can tailor its list to who is logged in.
//!
//! The modules are listed concurrently under one deadline (`[modules] listing_timeout_ms`):
//! a module that has not finished by then is stopped and left out of that listing, with a
//! log line, so a hung module delays a login by at most the deadline and never blocks it.
//! A module that fails to list (crash, bad framing) is likewise left out. Modules registered
//! with `listing = "once"` are not called here: the registry's host-wide list serves them.
//!
//! Invariant: [`ModuleLists::cmds`] holds the lists made for [`ModuleLists::listed_for`];
//! the session relists when who it is changes (logged out, or logged in as a given account)
//! or when the registered modules change.

use std::{collections::HashSet, sync::Arc, time::Duration};

use mrci_modrun::{Context, ListMode, list_commands};
use mrci_proto::{SessionId, UserId};

use super::{Session, SessionView};
use crate::modules::{Listing, ModCmd, Module, commands_of};

/// Who a listing was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// Logged out: public lists.
    LoggedOut,
    /// Logged in as this account: exempt and user lists.
    User(UserId),
}

impl Who {
    fn of(view: &SessionView) -> Self {
        view.user
            .as_ref()
            .map_or(Self::LoggedOut, |u| Self::User(u.user_id))
    }

    /// The list modes seed 001 calls for this state.
    fn modes(self) -> &'static [ListMode] {
        match self {
            Self::LoggedOut => &[ListMode::Public],
            Self::User(_) => &[ListMode::Exempt, ListMode::User],
        }
    }
}

/// The session's own module lists.
#[derive(Debug, Default)]
pub(super) struct ModuleLists {
    /// Who the lists were made for; `None` before the first listing and after the registry
    /// changed.
    listed_for: Option<Who>,
    /// The commands the session-listed modules announced for it.
    cmds: Vec<Arc<ModCmd>>,
}

impl ModuleLists {
    /// Forgets the lists, so that the next reload lists every module again (the registered
    /// modules changed).
    pub(super) fn invalidate(&mut self) {
        self.listed_for = None;
    }

    /// The commands of the session-listed modules.
    pub(super) fn cmds(&self) -> &[Arc<ModCmd>] {
        &self.cmds
    }
}

impl Session {
    /// Lists the session-listed modules again if who the session is has changed since the
    /// last listing (or the modules changed). The session's segment is brought up to date
    /// first, since modules read it.
    pub(super) async fn relist_modules(&mut self, modules: &[Arc<Module>]) {
        let who = Who::of(&self.view);
        if self.lists.listed_for == Some(who) {
            return;
        }
        let listed: Vec<&Arc<Module>> = modules
            .iter()
            .filter(|m| m.listing == Listing::Session)
            .collect();
        self.lists.cmds.clear();
        if !listed.is_empty() {
            self.publish();
            let ctx = Context {
                mem_ses: self.published.shm_key(),
                mem_host: self.host.host_shm_key().unwrap_or_default(),
                cwd: None,
                tag: format!("{}l", hex::encode(&self.view.sid.0[..8])),
            };
            let deadline = Duration::from_millis(self.host.settings().modules.listing_timeout_ms);
            let cfg = self.host.modules.config();
            let sid = self.view.sid;
            let jobs = listed
                .iter()
                .map(|m| list_one(Arc::clone(&cfg), &ctx, m, who, deadline, sid));
            for cmds in futures::future::join_all(jobs).await {
                self.lists.cmds.extend(cmds);
            }
        }
        self.lists.listed_for = Some(who);
    }
}

/// One module's lists for `who`, or nothing if it fails or misses the deadline.
async fn list_one(
    cfg: Arc<mrci_modrun::Config>,
    ctx: &Context,
    module: &Module,
    who: Who,
    deadline: Duration,
    sid: SessionId,
) -> Vec<Arc<ModCmd>> {
    let path = &module.path;
    let lists = async {
        let mut cmds = Vec::new();
        for &mode in who.modes() {
            let listing = list_commands(Arc::clone(&cfg), ctx, path, mode, &HashSet::new()).await?;
            cmds.extend(commands_of(path, mode, listing));
        }
        Ok::<_, mrci_modrun::Error>(cmds)
    };
    match tokio::time::timeout(deadline, lists).await {
        Ok(Ok(cmds)) => cmds,
        Ok(Err(e)) => {
            tracing::warn!(session = %sid, module = %path.display(), error = %e, "module could not be listed; its commands are left out for this session");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(session = %sid, module = %path.display(), deadline_ms = deadline.as_millis() as u64, "module missed its listing deadline; its commands are left out for this session");
            Vec::new()
        }
    }
}
