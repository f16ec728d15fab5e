//! The terminal client: `mrci connect` (interactive) and `mrci run` (scripted), a user
//! interface over the [`mrci_cli::client`] library.
//!
//! Layout:
//! - [`connect`]: the command-line connection settings, the known-hosts file with its
//!   first-contact question, and the changed-certificate warning.
//! - [`render`]: frames and command help as text.
//! - [`script`]: `mrci run`.
//! - [`transfer`]: the `upload` and `download` lines of both, with the progress bar.
//! - [`repl`] with [`editor`]: the interactive client; the line editor runs on a blocking
//!   thread and talks to the network task over channels.

pub(crate) mod connect;
pub(crate) mod editor;
pub(crate) mod render;
pub(crate) mod repl;
pub(crate) mod script;
pub(crate) mod transfer;
