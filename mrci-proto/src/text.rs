//! TEXT: UTF-16LE without BOM or terminator (spec/README.md "Wire", PROTOCOL.md §3.2), plus the
//! fixed-width FTEXT(n) and zero-terminated NTEXT forms used inside binary payloads.
//!
//! Invariant: decoding works per 16-bit unit, never panics, and replaces unpaired surrogates
//! and a trailing odd byte with U+FFFD; fixed fields stop at the first `0x0000` unit.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};

/// Appends `s` as UTF-16LE.
pub fn write(s: &str, dst: &mut BytesMut) {
    dst.reserve(s.len() * 2);
    for unit in s.encode_utf16() {
        dst.put_u16_le(unit);
    }
}

/// `s` as UTF-16LE bytes.
pub fn encode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// Decodes UTF-16LE lossily: unpaired surrogates and a trailing odd byte become U+FFFD.
pub fn decode(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut out: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if bytes.len() % 2 == 1 {
        out.push(char::REPLACEMENT_CHARACTER);
    }
    out
}

/// Number of UTF-16 code units in `s`: the "size" the data constraints count (PROTOCOL.md §7).
pub fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Appends FTEXT(n): `s` as UTF-16LE, truncated on a code-point boundary to at most `n` bytes,
/// then padded with `0x00` to exactly `n` bytes.
pub fn write_fixed(s: &str, n: usize, dst: &mut BytesMut) {
    let start = dst.len();
    let mut buf = [0u16; 2];
    for ch in s.chars() {
        let encoded = ch.encode_utf16(&mut buf);
        if dst.len() - start + encoded.len() * 2 > n {
            break;
        }
        for unit in encoded.iter() {
            dst.put_u16_le(*unit);
        }
    }
    let written = dst.len() - start;
    dst.put_bytes(0, n - written);
}

/// FTEXT(n) as a byte vector; see [`write_fixed`].
pub fn encode_fixed(s: &str, n: usize) -> Vec<u8> {
    let mut dst = BytesMut::with_capacity(n);
    write_fixed(s, n, &mut dst);
    dst.to_vec()
}

/// Reads a fixed field: decodes units up to the first `0x0000` unit or the field end, then
/// trims surrounding whitespace (PROTOCOL.md §1.3 step 3, §6.4).
pub fn read_fixed(field: &[u8]) -> String {
    let end = field
        .chunks_exact(2)
        .position(|c| c == [0, 0])
        .map_or(field.len() - field.len() % 2, |i| i * 2);
    decode(&field[..end]).trim().to_owned()
}

/// Reads a fixed field like [`read_fixed`] but rejects text that is not valid UTF-16
/// (an unpaired surrogate or an odd trailing byte before the padding).
///
/// # Errors
/// [`Error::Invalid`] naming `what` if the field holds invalid UTF-16.
pub fn read_fixed_strict(field: &[u8], what: &'static str) -> Result<String> {
    let end = field
        .chunks_exact(2)
        .position(|c| c == [0, 0])
        .map_or(field.len(), |i| i * 2);
    let used = &field[..end];
    if used.len() % 2 == 1 {
        return Err(Error::Invalid {
            what,
            why: "odd number of bytes in UTF-16 text".into(),
        });
    }
    let units = used
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    let decoded: std::result::Result<String, _> = char::decode_utf16(units).collect();
    match decoded {
        Ok(s) => Ok(s.trim().to_owned()),
        Err(e) => Err(Error::Invalid {
            what,
            why: format!("unpaired UTF-16 surrogate {:#06x}", e.unpaired_surrogate()),
        }),
    }
}

/// Appends NTEXT: `s` as UTF-16LE followed by one `0x0000` unit. `s` should contain no NUL.
pub fn write_terminated(s: &str, dst: &mut BytesMut) {
    write(s, dst);
    dst.put_u16_le(0);
}

/// Reads NTEXT from the front of `bytes`: returns the string and the bytes after its
/// terminator.
///
/// # Errors
/// [`Error::Truncated`] if no `0x0000` unit ends the string.
pub fn read_terminated(bytes: &[u8]) -> Result<(String, &[u8])> {
    let idx = bytes
        .chunks_exact(2)
        .position(|c| c == [0, 0])
        .ok_or(Error::Truncated {
            what: "terminated text",
        })?;
    Ok((decode(&bytes[..idx * 2]), &bytes[idx * 2 + 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_text_matches_the_spec_bytes() {
        // PROTOCOL.md §1.6: "\nReady!\n\n".
        assert_eq!(
            encode("\nReady!\n\n"),
            [
                0x0A, 0, 0x52, 0, 0x65, 0, 0x61, 0, 0x64, 0, 0x79, 0, 0x21, 0, 0x0A, 0, 0x0A, 0
            ]
        );
    }

    #[test]
    fn decode_is_per_unit_not_per_byte_pair() {
        // 'A' followed by U+0100 is 41 00 00 01: the old host deleted the unaligned 00 00.
        assert_eq!(decode(&[0x41, 0x00, 0x00, 0x01]), "A\u{100}");
    }

    #[test]
    fn decode_is_lossy_on_bad_input() {
        assert_eq!(decode(&[0x00, 0xD8]), "\u{FFFD}");
        assert_eq!(decode(&[0x41, 0x00, 0x42]), "A\u{FFFD}");
    }

    #[test]
    fn fixed_fields_pad_truncate_and_stop_at_nul() {
        let f = encode_fixed("ab", 8);
        assert_eq!(f, [0x61, 0, 0x62, 0, 0, 0, 0, 0]);
        assert_eq!(read_fixed(&f), "ab");
        // Truncation never splits a surrogate pair.
        let f = encode_fixed("a\u{1F600}", 4);
        assert_eq!(f, [0x61, 0, 0, 0]);
        assert_eq!(encode_fixed("abc", 4), [0x61, 0, 0x62, 0]);
        assert_eq!(read_fixed(&encode_fixed(" pad ", 20)), "pad");
        assert_eq!(read_fixed(&[0x61, 0, 0x62]), "a");
    }

    #[test]
    fn terminated_round_trip() {
        let mut b = BytesMut::new();
        write_terminated("one", &mut b);
        write_terminated("", &mut b);
        let (a, rest) = read_terminated(&b).unwrap();
        let (e, rest) = read_terminated(rest).unwrap();
        assert_eq!((a.as_str(), e.as_str(), rest.len()), ("one", "", 0));
        assert!(read_terminated(&[0x61, 0]).is_err());
    }
}
