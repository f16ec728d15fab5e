//! A bounds-checked cursor for parsing payloads. Every read returns [`Error::Truncated`]
//! instead of panicking when the input is short.

use crate::error::{Error, Result};
use crate::text;

/// Cursor over a payload.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; `what` names the payload in errors.
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::Truncated { what: self.what });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A boolean byte: 0 is false, anything else true.
    pub(crate) fn flag(&mut self) -> Result<bool> {
        Ok(self.u8()? != 0)
    }

    /// FTEXT(n).
    pub(crate) fn fixed_text(&mut self, n: usize) -> Result<String> {
        Ok(text::read_fixed(self.take(n)?))
    }

    /// NTEXT.
    pub(crate) fn terminated_text(&mut self) -> Result<String> {
        let (s, rest) =
            text::read_terminated(self.rest).map_err(|_| Error::Truncated { what: self.what })?;
        self.rest = rest;
        Ok(s)
    }

    /// NTEXT, or the empty string when the payload has ended.
    pub(crate) fn optional_terminated_text(&mut self) -> Result<String> {
        if self.rest.is_empty() {
            Ok(String::new())
        } else {
            self.terminated_text()
        }
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                what: self.what,
                why: format!("{} unexpected trailing bytes", self.rest.len()),
            })
        }
    }
}
