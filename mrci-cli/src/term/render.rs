//! Turning frames into text for people: TEXT as sent, BIG_TEXT word-wrapped, ERR marked, and
//! the binary info payloads (MY_INFO, PEER_INFO, PEER_STAT, CH_MEMBER_INFO, ...) as labelled
//! lines; and the local help built from the announced commands' NEW_CMD texts.
//!
//! Invariant: rendering never fails; a payload that does not parse is shown as its size.

use std::fmt::Write as _;

use mrci_proto::{
    Frame, TypeId,
    client::CommandTable,
    payload::{ChMemberInfo, FileInfo, MyInfo, PeerInfo, PeerStat},
};

/// One frame's text and whether it reports an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// What to show, ending with a newline unless empty.
    pub(crate) text: String,
    /// True for ERR frames.
    pub(crate) is_err: bool,
}

/// Renders `frame`; `None` for frames with nothing to show (IDLE, command announcements,
/// control types). `width` wraps BIG_TEXT (and long TEXT lines) when given.
pub(crate) fn render(frame: &Frame, width: Option<usize>) -> Option<Rendered> {
    let plain = |text: String| {
        Some(Rendered {
            text: with_newline(text),
            is_err: false,
        })
    };
    let bytes = &frame.payload[..];
    match frame.type_id {
        TypeId::TEXT | TypeId::BIG_TEXT | TypeId::PRIV_TEXT => {
            let text = frame.text_payload();
            match width {
                Some(w) => plain(wrap(&text, w)),
                None => plain(text),
            }
        }
        TypeId::ERR => Some(Rendered {
            text: with_newline(frame.text_payload()),
            is_err: true,
        }),
        TypeId::IDLE
        | TypeId::NEW_CMD
        | TypeId::TERM_CMD
        | TypeId::KILL_CMD
        | TypeId::HALT_CMD
        | TypeId::RESUME_CMD => None,
        TypeId::MY_INFO => plain(MyInfo::parse(bytes).map_or_else(|_| opaque(frame), my_info)),
        TypeId::PEER_INFO | TypeId::P2P_REQUEST => {
            plain(PeerInfo::parse(bytes).map_or_else(|_| opaque(frame), |p| peer_info("Peer", &p)))
        }
        TypeId::PEER_STAT => {
            plain(PeerStat::parse(bytes).map_or_else(|_| opaque(frame), peer_stat))
        }
        TypeId::CH_MEMBER_INFO => {
            plain(ChMemberInfo::parse(bytes).map_or_else(|_| opaque(frame), member))
        }
        TypeId::CH_ID => plain(
            mrci_proto::payload::parse_ch_id(bytes)
                .map_or_else(|_| opaque(frame), |id| format!("Channel id: {id}")),
        ),
        TypeId::CMD_ID => plain(
            mrci_proto::payload::parse_cmd_id(bytes)
                .map_or_else(|_| opaque(frame), |id| format!("Command id: {id}")),
        ),
        TypeId::FILE_INFO => {
            plain(FileInfo::parse(bytes).map_or_else(|_| opaque(frame), file_info))
        }
        TypeId::SESSION_ID | TypeId::P2P_OPEN | TypeId::P2P_CLOSE => plain(format!(
            "{}: {}",
            frame.type_id,
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )),
        _ => plain(opaque(frame)),
    }
}

fn with_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn opaque(frame: &Frame) -> String {
    format!("[{} frame, {} bytes]", frame.type_id, frame.payload.len())
}

fn my_info(info: MyInfo) -> String {
    let mut out = peer_info("My info", &info.peer);
    if !info.peer.user_id.is_zero() {
        let verified = if info.email_verified {
            "verified"
        } else {
            "not verified"
        };
        let _ = write!(out, "\n  Email:        {} ({verified})", info.email);
        let _ = write!(out, "\n  Host rank:    {}", info.host_rank);
    }
    out
}

fn peer_info(title: &str, peer: &PeerInfo) -> String {
    let mut out = format!("{title}:");
    if peer.user_id.is_zero() {
        out.push_str("\n  (not logged in)");
    } else {
        let _ = write!(out, "\n  User name:    {}", peer.user_name);
        let _ = write!(out, "\n  Display name: {}", peer.display_name);
        let _ = write!(out, "\n  User id:      {}", peer.user_id.to_hex());
    }
    let _ = write!(out, "\n  App:          {}", peer.app_name);
    let _ = write!(out, "\n  Session id:   {}", peer.session_id.to_hex());
    out
}

fn peer_stat(stat: PeerStat) -> String {
    let subs: Vec<String> = stat
        .sub_channels
        .iter()
        .filter(|k| !k.is_empty())
        .map(|k| format!("{}:{}", k.ch_id, k.sub_id))
        .collect();
    let state = if stat.disconnected {
        "disconnected".to_owned()
    } else if subs.is_empty() {
        "in no sub-channel".to_owned()
    } else {
        format!("in sub-channels {}", subs.join(", "))
    };
    format!("Peer {} is {state}", stat.session_id.to_hex())
}

fn member(m: ChMemberInfo) -> String {
    let pending = if m.pending { " (invite pending)" } else { "" };
    format!(
        "Channel {} ({}): {} ({}) level {}{pending}",
        m.ch_name, m.ch_id, m.user_name, m.display_name, m.level
    )
}

fn file_info(f: FileInfo) -> String {
    let kind = if f.flags & FileInfo::IS_DIR != 0 {
        "directory"
    } else if f.flags & FileInfo::IS_SYMLINK != 0 {
        "symlink"
    } else {
        "file"
    };
    let mut out = format!("{kind} {} ({} bytes)", f.name, f.size);
    if !f.symlink_target.is_empty() {
        let _ = write!(out, " -> {}", f.symlink_target);
    }
    out
}

/// The local help of one command from its NEW_CMD texts.
pub(crate) fn command_help(commands: &CommandTable, name: &str) -> Option<String> {
    let cmd = commands.get(name)?;
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
pub(crate) fn command_list(commands: &CommandTable) -> String {
    let width = commands.names().map(str::len).max().unwrap_or(0);
    let mut out = String::new();
    for cmd in commands.iter() {
        let _ = writeln!(out, "  {:<width$}  {}", cmd.name, cmd.summary);
    }
    out
}

/// Word-wraps each line of `text` to `width` columns, keeping the line breaks it has.
pub(crate) fn wrap(text: &str, width: usize) -> String {
    let width = width.max(10);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut col = 0;
        for (j, word) in line.split(' ').enumerate() {
            let n = word.chars().count();
            if j > 0 {
                if col > 0 && col + 1 + n > width {
                    out.push('\n');
                    col = 0;
                } else {
                    out.push(' ');
                    col += 1;
                }
            }
            out.push_str(word);
            col += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use mrci_proto::{BranchId, CmdId, async_id::AsyncId, payload::NewCmd};

    use super::*;

    #[test]
    fn help_from_announcements() {
        let mut payload = BytesMut::new();
        NewCmd {
            cmd_id: CmdId(300),
            name: "c".into(),
            summary: "c things".into(),
            io: "[none]/[text]".into(),
            details: "Details.".into(),
            ..NewCmd::default()
        }
        .write(&mut payload);
        let add = Frame::new(
            TypeId::NEW_CMD,
            AsyncId::ADD_CMD.cmd_id(),
            BranchId(0),
            payload.freeze(),
        );
        let mut table = CommandTable::new();
        table.apply(&add).unwrap();
        let help = command_help(&table, "C").unwrap();
        assert!(help.contains("usage: c [none]/[text]"), "{help}");
        assert!(help.contains("Details."), "{help}");
        assert_eq!(command_list(&table), "  c  c things\n");
        assert!(command_help(&table, "d").is_none());
    }

    #[test]
    fn wraps_long_lines_only() {
        assert_eq!(wrap("aaa bbb ccc", 10), "aaa bbb\nccc");
        assert_eq!(wrap("short\n\nlines", 10), "short\n\nlines");
        assert_eq!(wrap("a  b", 10), "a  b");
        assert_eq!(wrap("  x", 10), "  x");
    }

    #[test]
    fn err_is_marked() {
        let r = render(&Frame::err(CmdId(300), BranchId(0), "err: no"), None).unwrap();
        assert_eq!(
            r,
            Rendered {
                text: "err: no\n".into(),
                is_err: true
            }
        );
        assert!(render(&Frame::idle(CmdId(300), BranchId(0)), None).is_none());
    }
}
