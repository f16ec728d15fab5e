//! NEW_CMD (PROTOCOL.md §3.3.16, validation §5.4.2), CMD_ID (§3.3.17) and HOST_VER (§3.3.20).
//!
//! Invariant: a parsed [`NewCmd`] has a valid, trimmed, lower-cased command name; a frame
//! shorter than 259 bytes or with an invalid name is an error (the host ignores it).

use bytes::{BufMut, BytesMut};

use super::reader::Reader;
use crate::constraints;
use crate::error::{Error, Result};
use crate::ids::CmdId;
use crate::text;

/// A command announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewCmd {
    /// From a module: a placeholder. To a client: the id the host assigned.
    pub cmd_id: CmdId,
    /// Whether the command handles GEN_FILE transfers.
    pub gen_file: bool,
    /// Command name, FTEXT(128), at most 64 units.
    pub name: String,
    /// Library or module description, FTEXT(128).
    pub lib: String,
    /// Short help text.
    pub summary: String,
    /// IO help text (`[input]/[output]` grammar).
    pub io: String,
    /// Long help text.
    pub details: String,
}

impl NewCmd {
    /// The smallest valid payload: id, flag and the two fixed fields.
    pub const MIN_LEN: usize = 259;

    /// Parses and validates a NEW_CMD payload. The help texts may be absent.
    ///
    /// # Errors
    /// [`Error::Truncated`] below 259 bytes or for an unterminated help text;
    /// [`Error::Invalid`] if the name is not a valid command name once trimmed and
    /// lower-cased.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < Self::MIN_LEN {
            return Err(Error::Truncated { what: "NEW_CMD" });
        }
        let mut r = Reader::new(bytes, "NEW_CMD");
        let cmd_id = CmdId(r.u16()?);
        let gen_file = r.flag()?;
        let name = r.fixed_text(128)?.to_lowercase();
        constraints::command_name(&name)?;
        Ok(Self {
            cmd_id,
            gen_file,
            name,
            lib: r.fixed_text(128)?,
            summary: r.optional_terminated_text()?,
            io: r.optional_terminated_text()?,
            details: r.optional_terminated_text()?,
        })
    }

    /// Appends the payload.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u16_le(self.cmd_id.0);
        dst.put_u8(u8::from(self.gen_file));
        text::write_fixed(&self.name, 128, dst);
        text::write_fixed(&self.lib, 128, dst);
        text::write_terminated(&self.summary, dst);
        text::write_terminated(&self.io, dst);
        text::write_terminated(&self.details, dst);
    }
}

/// Parses a CMD_ID payload: one little-endian u16.
///
/// # Errors
/// [`Error::BadLength`] unless the payload is two bytes.
pub fn parse_cmd_id(bytes: &[u8]) -> Result<CmdId> {
    let pair = <[u8; 2]>::try_from(bytes).map_err(|_| Error::BadLength {
        what: "CMD_ID",
        expected: 2,
        got: bytes.len(),
    })?;
    Ok(CmdId(u16::from_le_bytes(pair)))
}

/// Appends a CMD_ID payload.
pub fn write_cmd_id(id: CmdId, dst: &mut BytesMut) {
    dst.put_u16_le(id.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_cmd_layout() {
        let cmd = NewCmd {
            cmd_id: CmdId(0x0102),
            gen_file: true,
            name: "ls_cmds".into(),
            lib: "MRCI host".into(),
            summary: "list".into(),
            io: "[text]".into(),
            details: String::new(),
        };
        let mut out = BytesMut::new();
        cmd.write(&mut out);
        assert_eq!(&out[..3], &[0x02, 0x01, 0x01]);
        assert_eq!(&out[3..5], &[b'l', 0]);
        assert_eq!(&out[131..133], &[b'M', 0]);
        assert_eq!(&out[259..269], &[b'l', 0, b'i', 0, b's', 0, b't', 0, 0, 0]);
        assert_eq!(out.len(), 259 + 10 + 14 + 2);
        assert_eq!(NewCmd::parse(&out).unwrap(), cmd);
    }

    #[test]
    fn minimal_new_cmd_has_empty_help_and_a_normalised_name() {
        let mut out = BytesMut::new();
        out.put_u16_le(0);
        out.put_u8(0);
        text::write_fixed("  Hello ", 128, &mut out);
        text::write_fixed("", 128, &mut out);
        let cmd = NewCmd::parse(&out).unwrap();
        assert_eq!(cmd.name, "hello");
        assert!(cmd.summary.is_empty() && cmd.details.is_empty());
        assert!(NewCmd::parse(&out[..258]).is_err());
    }

    #[test]
    fn invalid_names_are_refused() {
        for name in ["", "two words", "tab\there"] {
            let mut out = BytesMut::new();
            out.put_u16_le(0);
            out.put_u8(0);
            text::write_fixed(name, 128, &mut out);
            text::write_fixed("", 128, &mut out);
            assert!(NewCmd::parse(&out).is_err(), "{name:?}");
        }
    }

    #[test]
    fn cmd_id_payload() {
        assert_eq!(parse_cmd_id(&[0x00, 0x01]).unwrap(), CmdId(256));
        assert!(parse_cmd_id(&[1]).is_err());
    }
}
