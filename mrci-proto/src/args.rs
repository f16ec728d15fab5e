//! The command-line language inside TEXT payloads (PROTOCOL.md §8, COMMANDS.md §0.2):
//! a tokeniser with quotes and escapes, case-insensitive `-key value` lookup, and a builder
//! that quotes values so they parse back unchanged.
//!
//! Invariant: `Args::parse(&b.build())` returns every value `b` was given, including values
//! that start with `-` or contain quotes, spaces and backslashes (the tokeniser remembers which
//! tokens were quoted, and a quoted token is never taken for a key).

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// One token and whether any part of it was quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The token's text with quotes and escapes removed.
    pub text: String,
    /// True if the token contained a quoted part.
    pub quoted: bool,
}

impl Token {
    /// True if the token can be a key: unquoted and starting with `-`.
    pub fn is_key(&self) -> bool {
        !self.quoted && self.text.starts_with('-')
    }
}

/// Splits `s` into tokens (PROTOCOL.md §8.1): whitespace separates, `'…'` and `"…"` group and
/// are dropped, a backslash escapes only a following quote, an unterminated quoted token is
/// discarded.
pub fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let (mut in_single, mut in_double, mut escaped, mut quoted) = (false, false, false, false);
    let mut arg = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' && !in_double && !escaped {
            in_single = !in_single;
            quoted = true;
        } else if c == '"' && !in_single && !escaped {
            in_double = !in_double;
            quoted = true;
        } else {
            escaped = false;
            if c.is_whitespace() && !in_single && !in_double {
                if !arg.is_empty() {
                    out.push(Token {
                        text: std::mem::take(&mut arg),
                        quoted,
                    });
                }
                quoted = false;
            } else if c == '\\' && matches!(chars.peek(), Some('\'' | '"')) {
                escaped = true;
            } else {
                arg.push(c);
            }
        }
    }
    if !arg.is_empty() && !in_single && !in_double {
        out.push(Token { text: arg, quoted });
    }
    out
}

/// Parsed arguments with case-insensitive key lookup (PROTOCOL.md §8).
///
/// ```
/// use mrci_proto::args::Args;
///
/// let args = Args::parse(r#"-ch_name "my channel" -LEVEL 2 -force"#);
/// assert_eq!(args.value("-ch_name"), Some("my channel"));
/// assert_eq!(args.u8("-level")?, 2);
/// assert!(args.has("-force") && !args.has("-missing"));
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    tokens: Vec<Token>,
}

impl Args {
    /// Tokenises `s`. Never fails: malformed quoting only loses the unterminated token.
    pub fn parse(s: &str) -> Self {
        Self {
            tokens: tokenize(s),
        }
    }

    /// All tokens in order.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    fn key_idx(&self, key: &str) -> Option<usize> {
        self.tokens
            .iter()
            .position(|t| t.is_key() && t.text.eq_ignore_ascii_case(key))
    }

    /// The value after the first `key` (case-insensitive). `None` if the key is absent;
    /// `Some("")` if it is present but followed by nothing or by another key.
    pub fn value(&self, key: &str) -> Option<&str> {
        let idx = self.key_idx(key)?;
        Some(match self.tokens.get(idx + 1) {
            Some(t) if !t.is_key() => &t.text,
            _ => "",
        })
    }

    /// True if `key` is present (as a bare flag or with a value).
    pub fn has(&self, key: &str) -> bool {
        self.key_idx(key).is_some()
    }

    /// The value of `key`, which must be present and non-empty.
    ///
    /// # Errors
    /// [`Error::Invalid`] saying the argument is missing.
    pub fn required(&self, key: &str) -> Result<&str> {
        match self.value(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(missing(key)),
        }
    }

    /// The value of `key` as a plain decimal `u64`; `None` when the key is absent.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the key is present but its value is not a plain decimal.
    pub fn u64_opt(&self, key: &str) -> Result<Option<u64>> {
        let Some(v) = self.value(key) else {
            return Ok(None);
        };
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Invalid {
                what: "argument",
                why: format!("{key} must be a whole number, got {v:?}"),
            });
        }
        v.parse().map(Some).map_err(|_| Error::Invalid {
            what: "argument",
            why: format!("{key} is too large"),
        })
    }

    /// The value of `key` as a required plain decimal `u64`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when missing or not a plain decimal.
    pub fn u64(&self, key: &str) -> Result<u64> {
        self.u64_opt(key)?.ok_or_else(|| missing(key))
    }

    /// Reads `key` as a plain decimal that must fit `T`.
    fn narrow_opt<T: TryFrom<u64>>(&self, key: &str, max: u64) -> Result<Option<T>> {
        let Some(n) = self.u64_opt(key)? else {
            return Ok(None);
        };
        T::try_from(n).map(Some).map_err(|_| Error::Invalid {
            what: "argument",
            why: format!("{key} must be at most {max}, got {n}"),
        })
    }

    /// The value of `key` as a plain decimal `u32`; `None` when the key is absent.
    ///
    /// # Errors
    /// [`Error::Invalid`] when present but not a plain decimal or above `u32::MAX`.
    pub fn u32_opt(&self, key: &str) -> Result<Option<u32>> {
        self.narrow_opt(key, u64::from(u32::MAX))
    }

    /// The value of `key` as a required plain decimal `u32`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when missing, not a plain decimal or above `u32::MAX`.
    pub fn u32(&self, key: &str) -> Result<u32> {
        self.u32_opt(key)?.ok_or_else(|| missing(key))
    }

    /// The value of `key` as a plain decimal `u8`; `None` when the key is absent.
    ///
    /// # Errors
    /// [`Error::Invalid`] when present but not a plain decimal or above 255.
    pub fn u8_opt(&self, key: &str) -> Result<Option<u8>> {
        self.narrow_opt(key, u64::from(u8::MAX))
    }

    /// The value of `key` as a required plain decimal `u8`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when missing, not a plain decimal or above 255.
    pub fn u8(&self, key: &str) -> Result<u8> {
        self.u8_opt(key)?.ok_or_else(|| missing(key))
    }
}

fn missing(key: &str) -> Error {
    Error::Invalid {
        what: "argument",
        why: format!("{key} is required"),
    }
}

/// A value the builder can write: numbers bare, strings quoted (PROTOCOL.md §8.3).
pub trait ArgValue {
    /// Appends the value as one token.
    fn write_arg(&self, out: &mut String);
}

macro_rules! bare_numbers {
    ($($t:ty),*) => {$(
        impl ArgValue for $t {
            fn write_arg(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
bare_numbers!(u8, u16, u32, u64, usize, i32, i64);

impl ArgValue for str {
    fn write_arg(&self, out: &mut String) {
        out.push_str(&quote(self));
    }
}

impl ArgValue for String {
    fn write_arg(&self, out: &mut String) {
        self.as_str().write_arg(out);
    }
}

impl<T: ArgValue + ?Sized> ArgValue for &T {
    fn write_arg(&self, out: &mut String) {
        (**self).write_arg(out);
    }
}

/// Quotes a string value: `"…"` with `"` and `'` escaped; trailing backslashes go after the
/// closing quote so they cannot escape it.
pub fn quote(value: &str) -> String {
    let trimmed = value.trim_end_matches('\\');
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in trimmed.chars() {
        if c == '"' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out.push_str(&value[trimmed.len()..]);
    out
}

/// Builds an argument line such as `-ch_name "x" -sub_name "y" -ch_id 987 -sub_id 5`.
///
/// ```
/// use mrci_proto::args::{Args, ArgsBuilder};
///
/// let line = ArgsBuilder::new().arg("-ch_name", "a \"b\"").arg("-ch_id", 987u64).build();
/// let args = Args::parse(&line);
/// assert_eq!(args.value("-ch_name"), Some("a \"b\""));
/// assert_eq!(args.u64("-ch_id")?, 987);
/// # Ok::<(), mrci_proto::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ArgsBuilder {
    out: String,
}

impl ArgsBuilder {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    fn sep(&mut self) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
    }

    /// Appends `key value`.
    pub fn arg(mut self, key: &str, value: impl ArgValue) -> Self {
        self.sep();
        self.out.push_str(key);
        self.out.push(' ');
        value.write_arg(&mut self.out);
        self
    }

    /// Appends a bare flag such as `-force`.
    pub fn flag(mut self, key: &str) -> Self {
        self.sep();
        self.out.push_str(key);
        self
    }

    /// The finished line.
    pub fn build(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn spec_examples() {
        // PROTOCOL.md §8.3 table.
        assert_eq!(
            texts(r#"-ch_name "my lobby" -sub_id 5"#),
            ["-ch_name", "my lobby", "-sub_id", "5"]
        );
        assert_eq!(
            texts(r"-name 'O\'Brien' -user bob"),
            ["-name", "O'Brien", "-user", "bob"]
        );
        assert_eq!(texts(r"-path C:\dir\file"), ["-path", r"C:\dir\file"]);
        assert_eq!(texts(r#"-x "unterminated"#), ["-x"]);
        // §8.1 consequences.
        assert_eq!(texts(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(texts(r#"-x """#), ["-x"]);
        assert_eq!(texts(r"a\\b"), [r"a\\b"]);
        assert_eq!(texts(r"end\"), [r"end\"]);
    }

    #[test]
    fn lookup_is_case_insensitive_and_keys_are_not_values() {
        let args = Args::parse(r#"-CH_NAME lobby -flag -sub_name "-dash" -n 12"#);
        assert_eq!(args.value("-ch_name"), Some("lobby"));
        assert_eq!(args.value("-flag"), Some(""));
        assert!(args.has("-FLAG"));
        assert_eq!(args.value("-sub_name"), Some("-dash"));
        assert_eq!(args.value("-missing"), None);
        assert_eq!(args.u64_opt("-n").unwrap(), Some(12));
        assert!(args.u64_opt("-ch_name").is_err());
        assert!(args.u64("-missing").is_err());
        assert!(matches!(args.u64_opt("-flag"), Err(Error::Invalid { .. })));
        assert!(args.required("-flag").is_err());
        // A quoted "-key" is a value, never a key.
        assert!(!Args::parse(r#""-ch_name" x"#).has("-ch_name"));
    }

    #[test]
    fn typed_getters_check_range_and_form() {
        let args = Args::parse("-a 255 -b 256 -c 4294967295 -d 4294967296 -e +1 -f ' 1' -g 1x");
        assert_eq!(args.u8("-a").unwrap(), 255);
        assert_eq!(args.u8_opt("-none").unwrap(), None);
        assert!(args.u8("-none").is_err());
        let Err(Error::Invalid { why, .. }) = args.u8("-b") else {
            panic!("256 accepted as u8")
        };
        assert_eq!(why, "-b must be at most 255, got 256");
        assert_eq!(args.u32("-c").unwrap(), u32::MAX);
        assert!(args.u32_opt("-d").is_err());
        assert_eq!(args.u64("-d").unwrap(), 4_294_967_296);
        assert!(Args::parse("-n 18446744073709551616").u64("-n").is_err());
        for key in ["-e", "-f", "-g"] {
            assert!(args.u64_opt(key).is_err(), "{key}");
            assert!(args.u32_opt(key).is_err(), "{key}");
        }
    }

    #[test]
    fn builder_matches_the_spec_style() {
        let line = ArgsBuilder::new()
            .arg("-ch_name", "x")
            .arg("-sub_name", "y")
            .arg("-ch_id", 987u64)
            .arg("-sub_id", 5u8)
            .arg("-level", 2u8)
            .build();
        assert_eq!(
            line,
            r#"-ch_name "x" -sub_name "y" -ch_id 987 -sub_id 5 -level 2"#
        );
        assert_eq!(quote(r"ab\"), r#""ab"\"#);
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(a in "\\PC*", b in "[ -~]*", n in any::<u64>()) {
            let line = ArgsBuilder::new().arg("-a", &a).arg("-n", n).arg("-b", b.as_str()).flag("-f").build();
            let args = Args::parse(&line);
            // Surrounding whitespace survives because it is quoted; an empty value reads as "".
            prop_assert_eq!(args.value("-a"), Some(a.as_str()));
            prop_assert_eq!(args.value("-b"), Some(b.as_str()));
            prop_assert_eq!(args.u64_opt("-n").unwrap(), Some(n));
            prop_assert!(args.has("-f"));
        }

        #[test]
        fn tokenizing_never_panics(s in "\\PC*") {
            let _ = Args::parse(&s).value("-x");
        }
    }
}
