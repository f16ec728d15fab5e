//! The MRCI host: accepts clients over TCP, upgrades them to TLS, runs their sessions and
//! commands, and keeps persistent data in SQLite.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod password;
pub mod store;
pub mod tls;
