//! The MRCI client library: connect to an MRCI host from Rust, then send frames, run commands
//! by name and log in. The `mrci` program's terminal client, the end-to-end tests and the
//! load generator all use it.
//!
//! ```no_run
//! use mrci_cli::client::{Client, ConnectOptions, KnownHosts, Trust};
//! use std::sync::Arc;
//!
//! # async fn example() -> Result<(), mrci_cli::client::Error> {
//! // Trust on first use, with the pins in the terminal client's known-hosts file.
//! let known_hosts = KnownHosts::new("known_hosts").accepting_new(true);
//! let opts = ConnectOptions::new(Trust::FirstUse(Arc::new(known_hosts))).app_name("my-script");
//! let mut client = Client::connect(&"mrci.example.org:35516".parse()?, &opts).await?;
//! client.login("alice", "correct horse battery staple").await?;
//! let out = client.run("my_info", "").await?;
//! print!("{}", out.text());
//! # Ok(()) }
//! ```
//!
//! The pieces, in [`client`]:
//! - [`client::ConnectOptions`] with a [`client::Trust`] policy: a pinned
//!   [`client::Fingerprint`], trust on first use with a [`client::PinStore`]
//!   ([`client::KnownHosts`] file or [`client::MemoryPins`]), CA roots, or plaintext on
//!   loopback.
//! - [`client::Client`]: the session after ASYNC_RDY, its [`mrci_proto::client::CommandTable`]
//!   kept current, [`client::Client::run`] and [`client::Client::login`], and
//!   [`client::Client::split`] for a reading and a writing task.
//! - [`client::ConnectInfo`]: the host header, the certificate and per-stage connect timings.
//!
//! The protocol itself (headers, frames, payloads, the handshake as a state machine) is
//! [`mrci_proto`]'s. With the default `cli` feature the crate also builds the `mrci` program;
//! `default-features = false` gives the library alone, without the host or the terminal UI.
//!
//! A runnable example, `examples/script.rs`, logs in with the user and password from the
//! environment and prints `my_info`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
