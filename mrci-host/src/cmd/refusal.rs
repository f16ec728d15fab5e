//! Why a command did not do what it was asked: a [`Refusal`] the client sees as an ERR frame,
//! or an internal failure the client sees only as a generic ERR while the log gets the cause.
//!
//! Invariant: the `err: ` prefix of the wire text (PROTOCOL.md §2.3, COMMANDS.md §0.2) is
//! written in exactly one place, [`Refusal::wire_text`]; a refusal holds only the sentence.

use std::{borrow::Cow, fmt};

/// A request the host turned down, for a reason the client may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal(Cow<'static, str>);

impl Refusal {
    /// A refusal with this sentence (without the `err: ` prefix).
    pub(crate) fn new(text: impl Into<Cow<'static, str>>) -> Self {
        Self(text.into())
    }

    /// The ERR payload text a client receives.
    pub(crate) fn wire_text(&self) -> String {
        format!("err: {}", self.0)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refusal from a format string: `refuse!("No group named {name}.")`.
macro_rules! refuse {
    ($($arg:tt)*) => {
        $crate::cmd::Refusal::new(format!($($arg)*))
    };
}
pub(crate) use refuse;

/// Why a command body stopped early.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Refused: the client gets the refusal as ERR.
    Refused(Refusal),
    /// Failed inside the host: logged; the client gets [`INTERNAL_ERROR`] as ERR.
    Internal(crate::Error),
}

/// The ERR sentence a client sees for an internal failure.
pub(crate) const INTERNAL_ERROR: &str =
    "The command failed because of an internal error; details were logged for the host admin.";

/// The ERR sentence a client sees when the database is unreachable (a cluster's PostgreSQL
/// down or cut off).
pub(crate) const DB_UNREACHABLE: &str =
    "The host's database is unreachable right now; nothing was changed. Try again shortly.";

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl Fail {
    /// Turns the store's "name taken"-style errors ([`crate::Error::Invalid`]) into refusals
    /// that end in a period, and keeps every other error internal.
    pub(crate) fn from_store(e: crate::Error) -> Self {
        match e {
            crate::Error::Invalid(why) => Self::Refused(Refusal::new(format!("{why}."))),
            other => Self::Internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_prefix_is_added_once() {
        let r = refuse!("No such command id: {}.", 999);
        assert_eq!(r.wire_text(), "err: No such command id: 999.");
        assert_eq!(r.to_string(), "No such command id: 999.");
        match Fail::from_store(crate::Error::Invalid("That name is taken".into())) {
            Fail::Refused(r) => assert_eq!(r.wire_text(), "err: That name is taken."),
            Fail::Internal(e) => panic!("not a refusal: {e}"),
        }
    }
}
