//! The commands a session has announced to its client: ids, unique names and what runs them,
//! updated by diffing against the set the session may now run (PROTOCOL.md §5.4.3, §9 items
//! 15–16).
//!
//! Invariant: the loaded set is exactly the set announced to the client; an id stays the same
//! for as long as its command stays loaded, and a freed id is reused lowest-first.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
};

use mrci_proto::CmdId;

use crate::{
    cmd::{CmdRef, CommandDef, Feature, Features, LoggedInClass, internal_commands},
    modules::{Class, ModCmd},
};

/// One loaded command.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    /// The id announced to the client.
    pub id: CmdId,
    /// The unique name announced to the client.
    pub name: String,
    /// What runs it.
    pub cmd: CmdRef,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    /// Ids no longer loaded (announce with ASYNC_RM_CMD, stop their instances).
    pub removed: Vec<CmdId>,
    /// Ids newly loaded (announce with ASYNC_ADD_CMD).
    pub added: Vec<CmdId>,
}

/// The session's command table.
#[derive(Debug, Default)]
pub(crate) struct LoadedCommands {
    by_id: BTreeMap<CmdId, Loaded>,
}

impl LoadedCommands {
    /// The command with this id, if loaded.
    pub(crate) fn get(&self, id: CmdId) -> Option<&Loaded> {
        self.by_id.get(&id)
    }

    /// Every loaded command in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Loaded> {
        self.by_id.values()
    }

    /// Makes the loaded set equal `target`, keeping the ids of commands that stay.
    pub(crate) fn apply(&mut self, target: &[CmdRef]) -> Diff {
        let removed: Vec<CmdId> = self
            .by_id
            .values()
            .filter(|l| !target.iter().any(|t| t.same(&l.cmd)))
            .map(|l| l.id)
            .collect();
        for id in &removed {
            self.by_id.remove(id);
        }
        let mut added = Vec::new();
        for def in target {
            if self.by_id.values().any(|l| l.cmd.same(def)) {
                continue;
            }
            let Some(id) = self.free_id() else {
                tracing::error!(command = def.name(), "no free command id left");
                break;
            };
            let name = self.unique_name(def.name());
            self.by_id.insert(
                id,
                Loaded {
                    id,
                    name,
                    cmd: def.clone(),
                },
            );
            added.push(id);
        }
        Diff { removed, added }
    }

    fn free_id(&self) -> Option<CmdId> {
        (CmdId::FIRST_COMMAND.0..=u16::MAX)
            .map(CmdId)
            .find(|id| !self.by_id.contains_key(id))
    }

    fn unique_name(&self, name: &str) -> String {
        let taken = |n: &str| self.by_id.values().any(|l| l.name.eq_ignore_ascii_case(n));
        if !taken(name) {
            return name.to_owned();
        }
        (1..)
            .map(|i| format!("{name}_{i}"))
            .find(|n| !taken(n))
            .expect("an unbounded range has a free name")
    }
}

/// The internal commands a session may run: the public set when logged out; when logged in
/// with `rank`, the exempt set plus every ranked command whose rank (default 1) is `>= rank`
/// (COMMANDS.md §1.3). Features that are off remove their commands from the public set, and
/// email verification from every set.
pub(crate) fn allowed_internal(
    rank: Option<u32>,
    ranks: &HashMap<String, u32>,
    features: Features,
) -> Vec<&'static CommandDef> {
    internal_commands()
        .iter()
        .filter(|def| match rank {
            None => def.public && def.feature.is_none_or(|f| features.on(f)),
            Some(rank) => {
                let gated = matches!(def.feature, Some(f @ (Feature::EmailVerify | Feature::Files)) if !features.on(f));
                !gated
                    && match def.logged_in {
                        LoggedInClass::Never => false,
                        LoggedInClass::Exempt => true,
                        LoggedInClass::Ranked => rank <= ranks.get(def.name).copied().unwrap_or(1),
                    }
            }
        })
        .collect()
}

/// Which of the `listed` module commands a session may run, by the same rule as internal
/// ones; `ranks` holds each module's command ranks.
pub(crate) fn allowed_modules<'a>(
    rank: Option<u32>,
    listed: impl Iterator<Item = &'a Arc<ModCmd>>,
    ranks: &HashMap<PathBuf, HashMap<String, u32>>,
) -> Vec<Arc<ModCmd>> {
    let allowed = |cmd: &ModCmd| match (rank, cmd.class) {
        (None, Class::Public) => true,
        (Some(_), Class::Exempt) => true,
        (Some(rank), Class::Ranked) => {
            let name = cmd.new_cmd.name.to_lowercase();
            rank <= ranks
                .get(&cmd.module)
                .and_then(|r| r.get(&name))
                .copied()
                .unwrap_or(1)
        }
        _ => false,
    };
    listed.filter(|c| allowed(c)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(name: &str) -> CmdRef {
        CmdRef::Internal(
            internal_commands()
                .iter()
                .find(|d| d.name == name)
                .expect("known command"),
        )
    }

    #[test]
    fn apply_keeps_ids_and_reuses_the_lowest_free_one() {
        let mut cmds = LoadedCommands::default();
        let diff = cmds.apply(&[by_name("auth"), by_name("my_info")]);
        assert_eq!(diff.added, [CmdId(256), CmdId(257)]);
        let diff = cmds.apply(&[by_name("my_info"), by_name("logout")]);
        assert_eq!(diff.removed, [CmdId(256)]);
        assert_eq!(diff.added, [CmdId(256)]);
        assert_eq!(cmds.get(CmdId(257)).map(|l| l.cmd.name()), Some("my_info"));
        assert_eq!(
            cmds.apply(&[by_name("my_info"), by_name("logout")]),
            Diff::default()
        );
    }

    #[test]
    fn ranked_commands_follow_the_rank_table() {
        let none = HashMap::new();
        let public: Vec<_> = allowed_internal(None, &none, Features::default())
            .iter()
            .map(|d| d.name)
            .collect();
        assert!(public.contains(&"auth") && !public.contains(&"host_info"));
        let user: Vec<_> = allowed_internal(Some(2), &none, Features::default())
            .iter()
            .map(|d| d.name)
            .collect();
        assert!(
            user.contains(&"logout") && !user.contains(&"host_info"),
            "unranked means rank 1"
        );
        let ranks = HashMap::from([("host_info".to_owned(), 2)]);
        let user: Vec<_> = allowed_internal(Some(2), &ranks, Features::default())
            .iter()
            .map(|d| d.name)
            .collect();
        assert!(user.contains(&"host_info"));
        let admin: Vec<_> = allowed_internal(Some(1), &none, Features::default())
            .iter()
            .map(|d| d.name)
            .collect();
        assert!(admin.contains(&"host_info"));
    }

    #[test]
    fn features_gate_public_and_verification_commands() {
        let none = HashMap::new();
        let names = |rank, features| -> Vec<&str> {
            allowed_internal(rank, &none, features)
                .iter()
                .map(|d| d.name)
                .collect()
        };
        let off = names(None, Features::default());
        assert!(!off.contains(&"add_acct") && !off.contains(&"recover_acct"));
        let on = names(None, Features::ALL);
        assert!(on.contains(&"add_acct") && on.contains(&"request_pw_reset"));
        assert!(!on.contains(&"verify_email"), "needs a login");
        assert!(!names(Some(1), Features::default()).contains(&"verify_email"));
        let admin = names(Some(1), Features::ALL);
        assert!(admin.contains(&"verify_email") && admin.contains(&"recover_acct"));
        assert!(
            names(Some(1), Features::default()).contains(&"add_acct"),
            "registration gates only the public set"
        );
    }
}
