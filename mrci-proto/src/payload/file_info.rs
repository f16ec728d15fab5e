//! FILE_INFO (PROTOCOL.md §3.3.7): flags, three 64-bit fields and two NTEXT strings.
//! The symlink target is terminated with two zero bytes (not the original's four).

use bytes::{BufMut, BytesMut};

use super::reader::Reader;
use crate::error::Result;
use crate::text;

/// Facts about one file, as the file commands report them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// Bit flags; see the `FileInfo::IS_*` constants.
    pub flags: u8,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Last modification time, milliseconds since the Unix epoch.
    pub modified_ms: i64,
    /// Size in bytes.
    pub size: u64,
    /// The file name.
    pub name: String,
    /// The symlink target; empty when the file is not a link.
    pub symlink_target: String,
}

impl FileInfo {
    /// Bit 0: a regular file.
    pub const IS_FILE: u8 = 1 << 0;
    /// Bit 1: a directory.
    pub const IS_DIR: u8 = 1 << 1;
    /// Bit 2: a symbolic link.
    pub const IS_SYMLINK: u8 = 1 << 2;
    /// Bit 3: readable by the host's OS user.
    pub const READABLE: u8 = 1 << 3;
    /// Bit 4: writable by the host's OS user.
    pub const WRITABLE: u8 = 1 << 4;
    /// Bit 5: executable by the host's OS user.
    pub const EXECUTABLE: u8 = 1 << 5;
    /// Bit 6: exists (for a symlink: its target exists).
    pub const EXISTS: u8 = 1 << 6;

    /// Parses a FILE_INFO payload.
    ///
    /// # Errors
    /// [`crate::Error::Truncated`] if a field or terminator is missing.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "FILE_INFO");
        let info = Self {
            flags: r.u8()?,
            created_ms: r.u64()? as i64,
            modified_ms: r.u64()? as i64,
            size: r.u64()?,
            name: r.terminated_text()?,
            symlink_target: r.terminated_text()?,
        };
        r.finish()?;
        Ok(info)
    }

    /// Appends the payload.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(self.flags);
        dst.put_i64_le(self.created_ms);
        dst.put_i64_le(self.modified_ms);
        dst.put_u64_le(self.size);
        text::write_terminated(&self.name, dst);
        text::write_terminated(&self.symlink_target, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_info_layout() {
        let info = FileInfo {
            flags: FileInfo::IS_FILE | FileInfo::READABLE | FileInfo::EXISTS,
            created_ms: -1,
            modified_ms: 2,
            size: 3,
            name: "a".into(),
            symlink_target: String::new(),
        };
        let mut out = BytesMut::new();
        info.write(&mut out);
        assert_eq!(out[0], 0b0100_1001);
        assert_eq!(&out[1..9], &[0xFF; 8]);
        assert_eq!(&out[9..17], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[17..25], &[3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[25..], &[b'a', 0, 0, 0, 0, 0]);
        assert_eq!(FileInfo::parse(&out).unwrap(), info);
        assert!(FileInfo::parse(&out[..27]).is_err());
    }
}
