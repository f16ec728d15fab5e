//! The command table a session builds from the host's announcements: ASYNC_ADD_CMD carries a
//! NEW_CMD, ASYNC_RM_CMD a CMD_ID (PROTOCOL.md §2.2, §4). Command ids are per session, so the
//! table starts empty on every connection.

use std::{collections::BTreeMap, fmt::Write as _};

use mrci_proto::{CmdId, Frame, TypeId, async_id::AsyncId, payload::NewCmd};

/// The commands announced so far, by name.
#[derive(Default)]
pub(crate) struct Commands {
    by_name: BTreeMap<String, NewCmd>,
}

impl Commands {
    /// Applies an ADD_CMD or RM_CMD frame; returns false for any other frame.
    pub(crate) fn handle(&mut self, frame: &Frame) -> bool {
        if frame.cmd_id == AsyncId::ADD_CMD.cmd_id() && frame.type_id == TypeId::NEW_CMD {
            if let Ok(cmd) = NewCmd::parse(&frame.payload) {
                self.by_name.retain(|_, c| c.cmd_id != cmd.cmd_id);
                self.by_name.insert(cmd.name.clone(), cmd);
            }
            true
        } else if frame.cmd_id == AsyncId::RM_CMD.cmd_id() && frame.type_id == TypeId::CMD_ID {
            if let Ok(id) = mrci_proto::payload::parse_cmd_id(&frame.payload) {
                self.by_name.retain(|_, c| c.cmd_id != id);
            }
            true
        } else {
            false
        }
    }

    /// The id of `name`.
    pub(crate) fn id(&self, name: &str) -> Option<CmdId> {
        self.by_name.get(name).map(|c| c.cmd_id)
    }

    /// The name of the command with `id`.
    pub(crate) fn name_of(&self, id: CmdId) -> Option<&str> {
        self.by_name
            .values()
            .find(|c| c.cmd_id == id)
            .map(|c| c.name.as_str())
    }

    /// All names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// The local help of one command from its NEW_CMD texts.
    pub(crate) fn help(&self, name: &str) -> Option<String> {
        let cmd = self.by_name.get(name)?;
        let mut out = String::new();
        let _ = writeln!(out, "{} - {}", cmd.name, cmd.summary);
        let _ = writeln!(out, "usage: {} {}", cmd.name, cmd.io);
        if !cmd.details.is_empty() {
            let _ = writeln!(out, "\n{}", cmd.details);
        }
        if !cmd.lib.is_empty() {
            let _ = writeln!(out, "\n(from {})", cmd.lib);
        }
        Some(out)
    }

    /// One line per command: name and summary.
    pub(crate) fn list(&self) -> String {
        let width = self.by_name.keys().map(String::len).max().unwrap_or(0);
        let mut out = String::new();
        for cmd in self.by_name.values() {
            let _ = writeln!(out, "  {:<width$}  {}", cmd.name, cmd.summary);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use mrci_proto::BranchId;

    use super::*;

    fn add(id: u16, name: &str) -> Frame {
        let mut payload = BytesMut::new();
        NewCmd {
            cmd_id: CmdId(id),
            gen_file: false,
            name: name.into(),
            lib: String::new(),
            summary: format!("{name} things"),
            io: "[none]/[text]".into(),
            details: "Details.".into(),
        }
        .write(&mut payload);
        Frame::new(
            TypeId::NEW_CMD,
            AsyncId::ADD_CMD.cmd_id(),
            BranchId(0),
            payload.freeze(),
        )
    }

    #[test]
    fn add_replace_remove() {
        let mut cmds = Commands::default();
        assert!(cmds.handle(&add(300, "a")));
        assert!(cmds.handle(&add(301, "b")));
        assert!(cmds.handle(&add(300, "c")));
        assert_eq!(cmds.names(), ["b", "c"]);
        let mut payload = BytesMut::new();
        mrci_proto::payload::write_cmd_id(CmdId(301), &mut payload);
        let rm = Frame::new(
            TypeId::CMD_ID,
            AsyncId::RM_CMD.cmd_id(),
            BranchId(0),
            payload.freeze(),
        );
        assert!(cmds.handle(&rm));
        assert_eq!(cmds.names(), ["c"]);
        assert_eq!(cmds.name_of(CmdId(300)), Some("c"));
        assert!(cmds.help("c").unwrap().contains("usage: c [none]/[text]"));
        assert!(!cmds.handle(&Frame::text(CmdId(300), BranchId(0), "x")));
    }
}
