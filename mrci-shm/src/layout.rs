//! The seed 000 §6.2–6.3 layouts: offsets and sizes of every field, which are byte offsets
//! into the mapping (offset N of the seed is byte N of the segment), and the place of this
//! crate's extension area after them.
//!
//! Invariant: the seed fields fill `0..SESSION_LEN` (or `0..HOST_LEN`) exactly; the
//! extension starts at the first 64-byte boundary after them and nothing of ours lies below
//! it, so a reader that knows only the seed tables reads the right bytes.

/// Session id: 28-byte hash.
pub const SESSION_ID: usize = 0;
/// Size of the session id field.
pub const SESSION_ID_LEN: usize = 28;
/// User id: 32-byte hash, all zero when logged out.
pub const USER_ID: usize = 28;
/// Size of the user id field.
pub const USER_ID_LEN: usize = 32;
/// Client IP: UTF-16LE text, zero padded.
pub const CLIENT_IP: usize = 60;
/// Size of the client IP field.
pub const CLIENT_IP_LEN: usize = 78;
/// Client app: UTF-16LE text, zero padded.
pub const CLIENT_APP: usize = 138;
/// Size of the client app field.
pub const CLIENT_APP_LEN: usize = 134;
/// User name: UTF-16LE text, zero padded.
pub const USER_NAME: usize = 272;
/// Size of the user name field.
pub const USER_NAME_LEN: usize = 48;
/// Display name: UTF-16LE text, zero padded.
pub const DISP_NAME: usize = 320;
/// Size of the display name field.
pub const DISP_NAME_LEN: usize = 64;
/// Host rank: u32.
pub const HOST_RANK: usize = 384;
/// Active-update flag: u8 0/1.
pub const ACTIVE_UPDATE: usize = 388;
/// Owner-override flag: u8 0/1.
pub const OWNER_OVERRIDE: usize = 389;
/// Channel list: 200 × u64.
pub const CHANNEL_LIST: usize = 390;
/// Slots in the channel list.
pub const MAX_CHANNELS: usize = 200;
/// Open sub-channels: 54-byte list of six `[u64 ch][u8 sub]` slots.
pub const OPEN_SUBS: usize = 1990;
/// Writable sub-channels: same format.
pub const WRITABLE_SUBS: usize = 2044;
/// Size of a sub-channel list.
pub const SUB_LIST_LEN: usize = 54;
/// Slots in a sub-channel list.
pub const MAX_OPEN_SUBS: usize = 6;
/// Pending P2P requests: 100 × 28-byte session id.
pub const PENDING_P2P: usize = 2098;
/// Accepted P2P links: 100 × 28-byte session id.
pub const ACCEPTED_P2P: usize = 4898;
/// Slots in each P2P list.
pub const MAX_P2P: usize = 100;
/// Size of the session segment's data region.
pub const SESSION_LEN: usize = 7698;

/// Host segment: number of sessions, u32.
pub const NUM_SESSIONS: usize = 0;
/// Size of the host segment's data region.
pub const HOST_LEN: usize = 4;

/// Start of the extension area of a segment whose seed layout is `data_len` bytes: the first
/// 64-byte boundary at or after it.
pub const fn ext_offset(data_len: usize) -> usize {
    data_len.next_multiple_of(64)
}

/// Size of the extension area (magic, version, layout size, owner pid, sequence, mutex).
pub const EXT_LEN: usize = 128;
/// Extension offset of the magic `MRCISHM\0`.
pub const EXT_MAGIC: usize = 0;
/// Extension offset of the extension version (u32, native endian).
pub const EXT_VERSION: usize = 8;
/// Extension offset of the seed layout's size (u32, native endian).
pub const EXT_DATA_LEN: usize = 12;
/// Extension offset of the creating process's pid (u32, native endian).
pub const EXT_OWNER_PID: usize = 16;
/// Extension offset of the sequence counter (u32, native endian, 4-aligned): even while
/// the seed fields are stable, odd while the host writes them.
pub const EXT_SEQ: usize = 24;
/// Extension offset of the process-shared robust pthread mutex.
pub const EXT_MUTEX: usize = 64;

/// Where the session segment's extension starts (7744).
pub const SESSION_EXT: usize = ext_offset(SESSION_LEN);
/// The session segment's sequence counter (byte 7768).
pub const SESSION_SEQ: usize = SESSION_EXT + EXT_SEQ;
/// Size of the whole session segment (7872).
pub const SESSION_SEGMENT_LEN: usize = SESSION_EXT + EXT_LEN;
/// Where the host segment's extension starts (64).
pub const HOST_EXT: usize = ext_offset(HOST_LEN);
/// The host segment's sequence counter (byte 88).
pub const HOST_SEQ: usize = HOST_EXT + EXT_SEQ;
/// Size of the whole host segment (192).
pub const HOST_SEGMENT_LEN: usize = HOST_EXT + EXT_LEN;

const _: () = assert!(SESSION_EXT >= SESSION_LEN && HOST_EXT >= HOST_LEN);
const _: () = assert!(EXT_MAGIC + 8 <= EXT_VERSION && EXT_OWNER_PID + 4 <= EXT_SEQ);
const _: () = assert!(EXT_SEQ + 4 <= EXT_MUTEX && EXT_SEQ.is_multiple_of(4));

/// Appends `s` as UTF-16LE to a zeroed `field`, truncated on a code-point boundary.
pub(crate) fn encode_text(s: &str, field: &mut [u8]) {
    field.fill(0);
    let mut at = 0;
    let mut buf = [0u16; 2];
    for ch in s.chars() {
        let units = ch.encode_utf16(&mut buf);
        if at + units.len() * 2 > field.len() {
            break;
        }
        for unit in units.iter() {
            field[at..at + 2].copy_from_slice(&unit.to_le_bytes());
            at += 2;
        }
    }
}

/// Decodes a zero-padded UTF-16LE field, stopping at the first 0x0000 unit; invalid units
/// become U+FFFD.
pub(crate) fn decode_text(field: &[u8]) -> String {
    let units = field
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0);
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_equal_the_seed_table() {
        // Seed 000 §6.2: (offset, bytes) of every field in order; each starts where the
        // previous ends and the last ends at 7698.
        let table = [
            (SESSION_ID, SESSION_ID_LEN, 0, 28),
            (USER_ID, USER_ID_LEN, 28, 32),
            (CLIENT_IP, CLIENT_IP_LEN, 60, 78),
            (CLIENT_APP, CLIENT_APP_LEN, 138, 134),
            (USER_NAME, USER_NAME_LEN, 272, 48),
            (DISP_NAME, DISP_NAME_LEN, 320, 64),
            (HOST_RANK, 4, 384, 4),
            (ACTIVE_UPDATE, 1, 388, 1),
            (OWNER_OVERRIDE, 1, 389, 1),
            (CHANNEL_LIST, MAX_CHANNELS * 8, 390, 1600),
            (OPEN_SUBS, SUB_LIST_LEN, 1990, 54),
            (WRITABLE_SUBS, SUB_LIST_LEN, 2044, 54),
            (PENDING_P2P, MAX_P2P * 28, 2098, 2800),
            (ACCEPTED_P2P, MAX_P2P * 28, 4898, 2800),
        ];
        let mut end = 0;
        for (offset, len, seed_offset, seed_len) in table {
            assert_eq!((offset, len), (seed_offset, seed_len));
            assert_eq!(offset, end);
            end = offset + len;
        }
        assert_eq!(end, SESSION_LEN);
        assert_eq!(SESSION_LEN, 7698);
        assert_eq!(MAX_OPEN_SUBS * 9, SUB_LIST_LEN);
        assert_eq!((NUM_SESSIONS, HOST_LEN), (0, 4));
    }

    #[test]
    fn the_extension_follows_the_seed_layout() {
        // The numbers MODULES.md and the kits hard-code.
        assert_eq!(
            (SESSION_EXT, SESSION_SEQ, SESSION_SEGMENT_LEN),
            (7744, 7768, 7872)
        );
        assert_eq!((HOST_EXT, HOST_SEQ, HOST_SEGMENT_LEN), (64, 88, 192));
    }

    #[test]
    fn text_truncates_on_code_points_and_pads() {
        let mut field = [0xFFu8; 6];
        encode_text("a😀", &mut field);
        assert_eq!(field, [b'a', 0, 0x3D, 0xD8, 0x00, 0xDE]);
        encode_text("ab😀", &mut field);
        assert_eq!(field, [b'a', 0, b'b', 0, 0, 0]);
        assert_eq!(decode_text(&field), "ab");
    }
}
