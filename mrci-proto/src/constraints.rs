//! The data-constraints table of seed 000 §6.4 as validators (PROTOCOL.md §7).
//!
//! Sizes count UTF-16 code units, as the fixed wire fields do. "Control characters" are
//! Unicode category Cc (newline, carriage return, tab, …); "spaces" is U+0020. Integers are
//! plain ASCII decimal: no sign, no surrounding whitespace, within the type and range.
//!
//! Invariant: every validator returns [`Error::Invalid`] with a message a user can act on.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::text::units;

/// A character-class test and the requirement it stands for.
type CharRule = (fn(&char) -> bool, &'static str);

fn invalid(what: &'static str, why: impl Into<String>) -> Error {
    Error::Invalid {
        what,
        why: why.into(),
    }
}

/// Checks the size range and the forbidden character classes of a string field.
fn string(what: &'static str, s: &str, min: usize, max: usize, no_spaces: bool) -> Result<()> {
    let n = units(s);
    if n < min || n > max {
        return Err(invalid(
            what,
            format!("must be {min} to {max} characters long, got {n}"),
        ));
    }
    if no_spaces && s.contains(' ') {
        return Err(invalid(what, "must not contain spaces"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(
            what,
            "must not contain control characters such as newlines or tabs",
        ));
    }
    Ok(())
}

/// User name: 2–24 characters, no spaces or control characters.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn user_name(s: &str) -> Result<()> {
    string("user name", s, 2, 24, true)
}

/// Email address: 4–64 characters, no spaces or control characters, exactly one `@`, and a
/// `.` after it.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn email(s: &str) -> Result<()> {
    string("email address", s, 4, 64, true)?;
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("email address", "must contain exactly one @"));
    };
    if local.is_empty() || !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.')
    {
        return Err(invalid("email address", "must look like name@domain.tld"));
    }
    Ok(())
}

/// Password: 8–200 characters with a lower-case letter, an upper-case letter, a digit and a
/// symbol or punctuation character.
///
/// # Errors
/// [`Error::Invalid`] naming the first missing requirement.
pub fn password(s: &str) -> Result<()> {
    let n = units(s);
    if !(8..=200).contains(&n) {
        return Err(invalid(
            "password",
            format!("must be 8 to 200 characters long, got {n}"),
        ));
    }
    let checks: [CharRule; 4] = [
        (|c| c.is_lowercase(), "a lower-case letter"),
        (|c| c.is_uppercase(), "an upper-case letter"),
        (|c| c.is_numeric(), "a digit"),
        (
            |c| !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control(),
            "a symbol or punctuation character",
        ),
    ];
    for (check, name) in checks {
        if !s.chars().any(|c| check(&c)) {
            return Err(invalid("password", format!("must contain {name}")));
        }
    }
    Ok(())
}

/// A search filter of a listing command: any text up to 64 characters without control
/// characters (a NUL would otherwise cut the pattern short in the database).
///
/// # Errors
/// [`Error::Invalid`] for a control character or an over-long filter.
pub fn filter(s: &str) -> Result<()> {
    string("filter", s, 0, 64, false)
}

/// Command name: 1–64 characters, no spaces or control characters.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn command_name(s: &str) -> Result<()> {
    string("command name", s, 1, 64, true)
}

/// TLS common name: 1–136 characters, no spaces or control characters.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn common_name(s: &str) -> Result<()> {
    string("common name", s, 1, 136, true)
}

/// Display name: 0–32 characters, spaces allowed, no control characters.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn display_name(s: &str) -> Result<()> {
    string("display name", s, 0, 32, false)
}

/// Group name: 1–12 characters, no spaces or control characters (COMMANDS.md §0.2; groups
/// are not in the seed table).
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn group_name(s: &str) -> Result<()> {
    string("group name", s, 1, 12, true)
}

/// Channel name: 4–32 characters, no spaces or control characters.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn channel_name(s: &str) -> Result<()> {
    string("channel name", s, 4, 32, true)
}

/// Sub-channel name: 4–32 characters, no spaces or control characters.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn sub_channel_name(s: &str) -> Result<()> {
    string("sub-channel name", s, 4, 32, true)
}

/// Client app name: 0–67 characters.
///
/// # Errors
/// [`Error::Invalid`] if longer.
pub fn client_app(s: &str) -> Result<()> {
    let n = units(s);
    if n > 67 {
        return Err(invalid(
            "client app name",
            format!("must be at most 67 characters long, got {n}"),
        ));
    }
    Ok(())
}

/// Command library name: 0–64 characters.
///
/// # Errors
/// [`Error::Invalid`] if longer.
pub fn library_name(s: &str) -> Result<()> {
    let n = units(s);
    if n > 64 {
        return Err(invalid(
            "command library name",
            format!("must be at most 64 characters long, got {n}"),
        ));
    }
    Ok(())
}

/// Module executable path: 1–512 characters, none of `| * : " ? < >`, no control characters.
///
/// # Errors
/// [`Error::Invalid`] naming the broken rule.
pub fn module_path(s: &str) -> Result<()> {
    string("module path", s, 1, 512, false)?;
    if let Some(c) = s.chars().find(|c| "|*:\"?<>".contains(*c)) {
        return Err(invalid("module path", format!("must not contain {c:?}")));
    }
    Ok(())
}

/// IP address text: 3–39 characters that parse as an IPv4 or IPv6 address. Returns the
/// address.
///
/// # Errors
/// [`Error::Invalid`] if the text is not an address.
pub fn ip_address(s: &str) -> Result<IpAddr> {
    string("IP address", s, 3, 39, true)?;
    s.parse().map_err(|_| {
        invalid(
            "IP address",
            format!("{s:?} is not an IPv4 or IPv6 address"),
        )
    })
}

/// Parses a plain decimal integer in `min..=max` that fits `T`.
fn integer<T: TryFrom<u64>>(what: &'static str, s: &str, min: u64, max: u64) -> Result<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            what,
            format!("{s:?} is not a plain decimal number"),
        ));
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| invalid(what, format!("must be between {min} and {max}")))
}

/// Host rank: 1–4,000,000,000.
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn host_rank(s: &str) -> Result<u32> {
    integer("host rank", s, 1, 4_000_000_000)
}

/// Max sessions setting: 1–4,000,000,000.
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn max_sessions(s: &str) -> Result<u32> {
    integer("max sessions", s, 1, 4_000_000_000)
}

/// Channel id: 1–18,000,000,000,000,000,000 (the seed's bound, within u64).
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn channel_id(s: &str) -> Result<u64> {
    integer("channel id", s, 1, 18_000_000_000_000_000_000)
}

/// Command id: 256–65535.
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn command_id(s: &str) -> Result<u16> {
    integer("command id", s, 256, 65535)
}

/// Async command id: 1–255.
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn async_id(s: &str) -> Result<u8> {
    integer("async command id", s, 1, 255)
}

/// Sub-channel id: 0–255.
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn sub_channel_id(s: &str) -> Result<u8> {
    integer("sub-channel id", s, 0, 255)
}

/// Channel level: 1–5 (1 owner … 5 public); with `include_public` false, 1–4 (member levels).
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn level(s: &str, include_public: bool) -> Result<u8> {
    let max = if include_public { 5 } else { 4 };
    integer("channel level", s, 1, max)
}

/// Member level: 1–4 (owner, admin, officer, regular); 5 (public) is not a membership.
///
/// # Errors
/// [`Error::Invalid`] for non-digits or out of range.
pub fn member_level(s: &str) -> Result<u8> {
    level(s, false)
}

/// User id: exactly 32 bytes.
///
/// # Errors
/// [`Error::BadLength`] otherwise.
pub fn user_id(bytes: &[u8]) -> Result<()> {
    crate::ids::UserId::parse(bytes).map(|_| ())
}

/// Session id: exactly 28 bytes.
///
/// # Errors
/// [`Error::BadLength`] otherwise.
pub fn session_id(bytes: &[u8]) -> Result<()> {
    crate::ids::SessionId::parse(bytes).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_boundaries() {
        type Case = (fn(&str) -> Result<()>, usize, usize, bool);
        let cases: [Case; 7] = [
            (group_name, 1, 12, true),
            (user_name, 2, 24, true),
            (command_name, 1, 64, true),
            (common_name, 1, 136, true),
            (display_name, 0, 32, false),
            (channel_name, 4, 32, true),
            (sub_channel_name, 4, 32, true),
        ];
        for (check, min, max, no_spaces) in cases {
            assert!(check(&"a".repeat(max)).is_ok());
            assert!(check(&"a".repeat(max + 1)).is_err());
            assert!(check(&"a".repeat(min)).is_ok());
            if min > 0 {
                assert!(check(&"a".repeat(min - 1)).is_err());
            }
            assert_eq!(check("ab cd").is_err(), no_spaces);
            assert!(check("ab\ncd").is_err());
        }
        // Sizes count UTF-16 units: an emoji is two.
        assert!(user_name(&"😀".repeat(12)).is_ok());
        assert!(user_name(&"😀".repeat(13)).is_err());
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let why = |r: Result<()>| match r {
            Err(Error::Invalid { what, why }) => format!("{what}: {why}"),
            other => format!("{other:?}"),
        };
        assert_eq!(
            why(user_name("a")),
            "user name: must be 2 to 24 characters long, got 1"
        );
        assert_eq!(
            why(channel_name("my lobby")),
            "channel name: must not contain spaces"
        );
        assert_eq!(
            why(module_path("C:mod")),
            "module path: must not contain ':'"
        );
        assert_eq!(
            why(email("abc")),
            "email address: must be 4 to 64 characters long, got 3"
        );
    }

    #[test]
    fn emails() {
        for ok in ["a@b.c", "first.last@example.org"] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in ["a@b", "ab.c", "a@@b.c", "a b@c.d", "@b.c", "a@.c", "x@y."] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@b.cd", "a".repeat(59))).is_ok());
        assert!(email(&format!("{}@b.cd", "a".repeat(60))).is_err());
    }

    #[test]
    fn passwords() {
        assert!(password("Passw0rd!").is_ok());
        assert!(password("Pa0!").is_err());
        assert!(password("Passw0!").is_err());
        assert!(password("Passw0r!").is_ok());
        assert!(password(&format!("Aa1!{}", "x".repeat(196))).is_ok());
        assert!(password(&format!("Aa1!{}", "x".repeat(197))).is_err());
        let Err(Error::Invalid { why, .. }) = password("password1!") else {
            panic!("accepted")
        };
        assert!(why.contains("upper-case"), "{why}");
        assert!(password("PASSWORD1!").is_err());
        assert!(password("Password!!").is_err());
        assert!(password("Password11").is_err());
    }

    #[test]
    fn paths_apps_and_addresses() {
        assert!(module_path("/usr/lib/mrci/mod").is_ok());
        assert!(module_path("a").is_ok());
        assert!(module_path("").is_err());
        for c in ['|', '*', ':', '"', '?', '<', '>', '\n'] {
            assert!(module_path(&format!("/opt/a{c}b")).is_err(), "{c:?}");
        }
        assert!(module_path("/opt/my mod").is_ok());
        assert!(module_path(&"a".repeat(512)).is_ok());
        assert!(module_path(&"a".repeat(513)).is_err());
        assert!(client_app("").is_ok());
        assert!(client_app(&"a".repeat(67)).is_ok());
        assert!(client_app(&"a".repeat(68)).is_err());
        assert!(library_name("").is_ok());
        assert!(library_name(&"a".repeat(64)).is_ok());
        assert!(library_name(&"a".repeat(65)).is_err());
        assert!(ip_address("10.0.0.1").is_ok());
        // Size 3 and 39 are the table's bounds.
        assert!(ip_address("::1").is_ok());
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        assert_eq!(full.len(), 39);
        assert!(ip_address(full).is_ok());
        assert!(ip_address(&format!("{full} ")).is_err());
        assert!(ip_address("10.0.0.1 ").is_err());
        assert!(ip_address("g::1").is_err());
        assert!(ip_address("::1").is_ok());
        assert!(ip_address("1::").is_ok());
        assert!(ip_address("1.2.3.x").is_err());
        assert!(ip_address("::").is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(host_rank("1").unwrap(), 1);
        assert_eq!(host_rank("4000000000").unwrap(), 4_000_000_000);
        assert!(host_rank("4000000001").is_err());
        assert!(host_rank("0").is_err());
        assert!(host_rank("+1").is_err());
        assert!(host_rank(" 1").is_err());
        assert!(max_sessions("").is_err());
        assert_eq!(max_sessions("1").unwrap(), 1);
        assert_eq!(max_sessions("4000000000").unwrap(), 4_000_000_000);
        assert!(max_sessions("0").is_err());
        assert!(max_sessions("4000000001").is_err());
        assert!(max_sessions("1e3").is_err());
        assert_eq!(
            channel_id("18000000000000000000").unwrap(),
            18_000_000_000_000_000_000
        );
        assert!(channel_id("18000000000000000001").is_err());
        assert!(channel_id("0").is_err());
        assert_eq!(channel_id("1").unwrap(), 1);
        assert!(channel_id("-1").is_err());
        assert!(command_id("255").is_err());
        assert_eq!(command_id("256").unwrap(), 256);
        assert_eq!(command_id("65535").unwrap(), 65535);
        assert!(command_id("65536").is_err());
        assert!(async_id("0").is_err());
        assert_eq!(async_id("1").unwrap(), 1);
        assert_eq!(async_id("255").unwrap(), 255);
        assert!(async_id("256").is_err());
        assert_eq!(sub_channel_id("0").unwrap(), 0);
        assert_eq!(sub_channel_id("255").unwrap(), 255);
        assert!(sub_channel_id("256").is_err());
        assert!(sub_channel_id("x").is_err());
        assert_eq!(level("1", true).unwrap(), 1);
        assert_eq!(level("5", true).unwrap(), 5);
        assert!(level("6", true).is_err());
        assert!(level("5", false).is_err());
        assert!(level("0", true).is_err());
        assert_eq!(member_level("1").unwrap(), 1);
        assert_eq!(member_level("4").unwrap(), 4);
        assert!(member_level("5").is_err());
        assert!(member_level("0").is_err());
        assert!(user_id(&[0; 32]).is_ok() && user_id(&[0; 31]).is_err());
        assert!(session_id(&[0; 28]).is_ok() && session_id(&[0; 29]).is_err());
    }
}
