//! End-to-end tests: one binary, a module per area, every test against a real host over
//! loopback sockets with a real SQLite file.
#![forbid(unsafe_code)]

mod accounts;
mod channels;
mod client;
mod commands;
mod coverage_accounts;
mod coverage_channels;
mod events;
mod files;
mod front_door;
mod groups;
mod handshake;
mod kits;
mod load;
mod modules;
mod recovery;
mod shutdown;
