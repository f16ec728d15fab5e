//! The command table a client keeps: ASYNC_ADD_CMD frames carry a NEW_CMD payload and add
//! (or replace) a command, ASYNC_RM_CMD frames carry a CMD_ID and remove one (PROTOCOL.md
//! §3.3.16–17, §4.3). Command ids are per session, so a table starts empty on every
//! connection.
//!
//! Invariant: one entry per name and one per id. Names are stored lower-case (as
//! [`NewCmd::parse`] leaves them) and looked up case-insensitively; adding a command whose id
//! or name is already present replaces the older entry. A malformed announcement leaves the
//! table unchanged.

use std::collections::BTreeMap;

use crate::async_id::AsyncId;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::ids::CmdId;
use crate::payload::{NewCmd, parse_cmd_id};
use crate::type_id::TypeId;

/// One decoded command announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// ASYNC_ADD_CMD: the session may now run this command under this id.
    Add(NewCmd),
    /// ASYNC_RM_CMD: the id is no longer valid.
    Remove(CmdId),
}

impl Announcement {
    /// Decodes `frame` if it is on the ADD_CMD or RM_CMD async id; `None` for any other
    /// frame.
    ///
    /// # Errors
    /// (Inside the `Some`) [`Error::Invalid`] for the wrong type id on an announcement id, or
    /// the payload's own decoding error.
    pub fn parse(frame: &Frame) -> Option<Result<Self>> {
        let expected = if frame.cmd_id == AsyncId::ADD_CMD.cmd_id() {
            TypeId::NEW_CMD
        } else if frame.cmd_id == AsyncId::RM_CMD.cmd_id() {
            TypeId::CMD_ID
        } else {
            return None;
        };
        if frame.type_id != expected {
            return Some(Err(Error::Invalid {
                what: "command announcement",
                why: format!("expected {expected:?}, got {:?}", frame.type_id),
            }));
        }
        Some(if expected == TypeId::NEW_CMD {
            NewCmd::parse(&frame.payload).map(Self::Add)
        } else {
            parse_cmd_id(&frame.payload).map(Self::Remove)
        })
    }

    /// True for frames on the ADD_CMD and RM_CMD async ids, well-formed or not.
    pub fn is_announcement(frame: &Frame) -> bool {
        frame.cmd_id == AsyncId::ADD_CMD.cmd_id() || frame.cmd_id == AsyncId::RM_CMD.cmd_id()
    }
}

/// What [`CommandTable::apply`] did with an announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A command was added (or replaced) under this id.
    Added(CmdId),
    /// The command with this id was removed (or was not there).
    Removed(CmdId),
}

/// The commands announced so far.
///
/// ```
/// use bytes::BytesMut;
/// use mrci_proto::{
///     BranchId, CmdId, Frame, TypeId, async_id::AsyncId,
///     client::{Change, CommandTable},
///     payload::NewCmd,
/// };
///
/// let mut payload = BytesMut::new();
/// NewCmd { cmd_id: CmdId(258), name: "my_info".into(), ..NewCmd::default() }.write(&mut payload);
/// let add = Frame::new(TypeId::NEW_CMD, AsyncId::ADD_CMD.cmd_id(), BranchId(0), payload.freeze());
///
/// let mut table = CommandTable::new();
/// assert_eq!(table.apply(&add)?, Some(Change::Added(CmdId(258))));
/// assert_eq!(table.id("MY_INFO"), Some(CmdId(258)));
/// assert_eq!(table.name_of(CmdId(258)), Some("my_info"));
/// // Any other frame is not an announcement and changes nothing.
/// assert_eq!(table.apply(&Frame::text(CmdId(258), BranchId(0), "hi"))?, None);
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct CommandTable {
    by_name: BTreeMap<String, NewCmd>,
    by_id: BTreeMap<CmdId, String>,
}

impl CommandTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `frame` if it is an announcement: `Ok(None)` for any other frame.
    ///
    /// # Errors
    /// A malformed announcement (see [`Announcement::parse`]); the table is unchanged.
    pub fn apply(&mut self, frame: &Frame) -> Result<Option<Change>> {
        match Announcement::parse(frame) {
            None => Ok(None),
            Some(announcement) => Ok(Some(self.apply_announcement(announcement?))),
        }
    }

    /// Applies a decoded announcement.
    pub fn apply_announcement(&mut self, announcement: Announcement) -> Change {
        match announcement {
            Announcement::Add(cmd) => {
                let id = cmd.cmd_id;
                self.remove_id(id);
                if let Some(old) = self.by_name.remove(&cmd.name) {
                    self.by_id.remove(&old.cmd_id);
                }
                self.by_id.insert(id, cmd.name.clone());
                self.by_name.insert(cmd.name.clone(), cmd);
                Change::Added(id)
            }
            Announcement::Remove(id) => {
                self.remove_id(id);
                Change::Removed(id)
            }
        }
    }

    fn remove_id(&mut self, id: CmdId) {
        if let Some(name) = self.by_id.remove(&id) {
            self.by_name.remove(&name);
        }
    }

    /// The command called `name`, ignoring case.
    pub fn get(&self, name: &str) -> Option<&NewCmd> {
        if name.chars().any(char::is_uppercase) {
            self.by_name.get(&name.to_lowercase())
        } else {
            self.by_name.get(name)
        }
    }

    /// The command with id `id`.
    pub fn by_id(&self, id: CmdId) -> Option<&NewCmd> {
        self.by_name.get(self.by_id.get(&id)?)
    }

    /// The id of the command called `name`, ignoring case.
    pub fn id(&self, name: &str) -> Option<CmdId> {
        self.get(name).map(|cmd| cmd.cmd_id)
    }

    /// The name of the command with id `id`.
    pub fn name_of(&self, id: CmdId) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// True if a command called `name` (ignoring case) is announced.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The commands, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &NewCmd> {
        self.by_name.values()
    }

    /// The command names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// How many commands are announced.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when no command is announced.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Forgets every command (a new connection starts empty).
    pub fn clear(&mut self) {
        self.by_name.clear();
        self.by_id.clear();
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::ids::BranchId;

    fn add(id: u16, name: &str) -> Frame {
        let mut payload = BytesMut::new();
        NewCmd {
            cmd_id: CmdId(id),
            name: name.into(),
            lib: "MRCI host".into(),
            summary: format!("{name} things"),
            ..NewCmd::default()
        }
        .write(&mut payload);
        Frame::new(
            TypeId::NEW_CMD,
            AsyncId::ADD_CMD.cmd_id(),
            BranchId(0),
            payload.freeze(),
        )
    }

    fn rm(id: u16) -> Frame {
        Frame::new(
            TypeId::CMD_ID,
            AsyncId::RM_CMD.cmd_id(),
            BranchId(0),
            id.to_le_bytes().to_vec(),
        )
    }

    #[test]
    fn golden_announcements() {
        // ASYNC_RM_CMD (41) carrying CMD_ID (17) 0x0102.
        let frame = Frame::new(TypeId(17), CmdId(41), BranchId(0), vec![0x02, 0x01]);
        assert_eq!(
            Announcement::parse(&frame).unwrap().unwrap(),
            Announcement::Remove(CmdId(0x0102))
        );
        // ASYNC_ADD_CMD (40) carrying NEW_CMD (16): id 0x0101, no GEN_FILE, name "ls".
        let mut payload = vec![0x01, 0x01, 0x00, b'l', 0, b's', 0];
        payload.resize(259, 0);
        let frame = Frame::new(TypeId(16), CmdId(40), BranchId(0), payload);
        let Some(Ok(Announcement::Add(cmd))) = Announcement::parse(&frame) else {
            panic!("not an ADD_CMD");
        };
        assert_eq!((cmd.cmd_id, cmd.name.as_str()), (CmdId(0x0101), "ls"));
    }

    #[test]
    fn add_replace_remove() {
        let mut table = CommandTable::new();
        assert_eq!(
            table.apply(&add(300, "a")).unwrap(),
            Some(Change::Added(CmdId(300)))
        );
        table.apply(&add(301, "b")).unwrap();
        // Same id, new name: the old name goes.
        table.apply(&add(300, "c")).unwrap();
        assert_eq!(table.names().collect::<Vec<_>>(), ["b", "c"]);
        // Same name, new id: the old id goes.
        table.apply(&add(302, "b")).unwrap();
        assert_eq!(table.name_of(CmdId(301)), None);
        assert_eq!(table.id("b"), Some(CmdId(302)));
        assert_eq!(
            table.apply(&rm(302)).unwrap(),
            Some(Change::Removed(CmdId(302)))
        );
        assert_eq!(table.names().collect::<Vec<_>>(), ["c"]);
        assert_eq!(
            table.by_id(CmdId(300)).map(|c| c.summary.as_str()),
            Some("c things")
        );
        // Removing an unknown id is harmless.
        table.apply(&rm(999)).unwrap();
        assert_eq!(table.len(), 1);
        table.clear();
        assert!(table.is_empty());
    }

    #[test]
    fn lookups_ignore_case() {
        let mut table = CommandTable::new();
        table.apply(&add(256, "My_Info")).unwrap();
        assert_eq!(table.name_of(CmdId(256)), Some("my_info"));
        assert!(table.contains("MY_INFO") && table.contains("my_info"));
        assert_eq!(table.get("My_info").map(|c| c.cmd_id), Some(CmdId(256)));
        assert!(!table.contains("my_inf"));
    }

    #[test]
    fn malformed_announcements_change_nothing() {
        let mut table = CommandTable::new();
        table.apply(&add(256, "a")).unwrap();
        let mut short = add(257, "b");
        short.payload = short.payload.slice(..100);
        assert!(table.apply(&short).is_err());
        let wrong_type = Frame::text(AsyncId::RM_CMD.cmd_id(), BranchId(0), "x");
        assert!(table.apply(&wrong_type).is_err());
        assert!(Announcement::is_announcement(&wrong_type));
        let bad_id = Frame::new(
            TypeId::CMD_ID,
            AsyncId::RM_CMD.cmd_id(),
            BranchId(0),
            vec![1],
        );
        assert!(table.apply(&bad_id).is_err());
        assert_eq!(table.names().collect::<Vec<_>>(), ["a"]);
        let other = Frame::idle(CmdId(256), BranchId(0));
        assert_eq!(table.apply(&other).unwrap(), None);
        assert!(!Announcement::is_announcement(&other));
    }
}
