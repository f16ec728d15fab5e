//! End-to-end tests: one binary, a module per area, every test against a real host over
//! loopback sockets with a real SQLite file.
#![forbid(unsafe_code)]

mod accounts;
mod channels;
mod client;
mod cluster;
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
mod operate;
mod operate_certs;
mod operate_metrics;
mod recovery;
mod shutdown;
