//! The client's side of the protocol as data: the handshake a client drives (PROTOCOL.md
//! §1.3–1.5) and the command table it keeps from the host's announcements (§4, ids 3 and 4).
//!
//! Nothing here reads a socket or a clock: [`Handshake`] says how many bytes to read next and
//! turns them into an [`Outcome`]; [`CommandTable`] is fed frames. An async client (the
//! `mrci_cli::client` library) is a thin loop around both.
//!
//! Invariant: neither type panics on peer bytes, and the handshake never asks for more bytes
//! than the host header plus one HOST_CERT frame of at most [`Handshake::MAX_HOST_CERT`]
//! bytes, so a client that reads exactly what it is told never consumes a TLS byte.

mod command_table;
mod handshake;

pub use command_table::{Announcement, Change, CommandTable};
pub use handshake::{Handshake, Outcome};
