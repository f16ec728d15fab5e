//! The MRCI host: accepts clients over TCP, upgrades them to TLS, runs their sessions and
//! commands, and keeps persistent data in SQLite.
//!
//! Layout:
//! - [`config`], [`error`]: settings (TOML, all defaulted) and the error type.
//! - [`store`]: the SQLite store and its migrations.
//! - [`password`], [`tls`]: Argon2id hashing; certificates and rustls configuration.
//! - [`host`]: the context every session shares; [`listener`]: accept loop and shutdown.
//! - `handshake`, `session`, `cmd`, `bus`: one connection's life, the internal commands, and
//!   the in-process delivery of async events between sessions.
//! - `modules`: the registered module executables and the commands they listed.
//! - `mail`: the mail transports for recovery tokens and verification codes.
//! - `metrics`: the optional Prometheus endpoint.
//! - [`admin`]: operator actions behind `mrci host …`.
//! - [`runtime`]: the settings that change while the host runs; [`debug_log`]: recent
//!   warnings and errors for `ls_dbg`.
#![forbid(unsafe_code)]

pub mod admin;
mod admission;
pub mod bus;
mod cmd;
pub mod config;
pub mod debug_log;
pub mod error;
mod files;
mod handshake;
pub mod host;
mod limit;
pub mod listener;
mod mail;
mod metrics;
mod modules;
pub mod password;
pub mod runtime;
mod session;
pub mod store;
mod stream;
pub mod tls;

pub use bus::BusStats;
pub use config::Config;
pub use error::{Error, Result};
pub use host::HostCtx;
pub use listener::Host;
pub use store::Store;
