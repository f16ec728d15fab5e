//! The terminal client: `mrci connect` (interactive) and `mrci run` (scripted).
//!
//! Layout:
//! - [`conn`]: TCP, the fixed headers, HOST_CERT and the TLS upgrade; [`verify`] and
//!   [`known_hosts`] implement trust on first use.
//! - [`link`]: a ready session (after ASYNC_RDY) and its [`commands`] table.
//! - [`render`]: frames as text.
//! - [`script`]: `mrci run`.
//! - [`repl`] with [`editor`]: the interactive client; the line editor runs on a blocking
//!   thread and talks to the network task over channels.

pub(crate) mod commands;
pub(crate) mod conn;
pub(crate) mod editor;
pub(crate) mod known_hosts;
pub(crate) mod link;
pub(crate) mod render;
pub(crate) mod repl;
pub(crate) mod script;
pub(crate) mod verify;
