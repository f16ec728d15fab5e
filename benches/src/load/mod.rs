//! The load generator: one process that starts a real `mrci host run` on loopback, opens many
//! TLS sessions to it and measures connects, command round trips, cast fan-out and the host's
//! memory per idle session, each next to a minimal TLS echo/relay built on the same stack
//! ([`baseline`]) so that every figure can be read against what the machine can do.
//!
//! Layout: [`client`] speaks the wire protocol; [`host`] owns the host process and its
//! temporary data directory; one module per scenario ([`connect`], [`roundtrip`], [`fanout`],
//! [`idle`], [`modules`]); [`stats`] turns samples into figures; [`report`] prints the table
//! and writes the JSON and SVG files.
//!
//! Invariant: a scenario that cannot run (the host lacks the commands it needs) reports
//! itself as skipped; no figure is ever made up.

pub mod baseline;
pub mod client;
pub mod connect;
pub mod fanout;
pub mod host;
pub mod idle;
pub mod modules;
pub mod report;
pub mod roundtrip;
pub mod stats;

use std::time::Duration;

/// How much work each scenario does.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Short smoke run: fewer iterations, at most 1,000 idle sessions.
    pub quick: bool,
    /// Sequential connects for the latency figures.
    pub connects: usize,
    /// Connects made by the parallel workers.
    pub parallel_connects: usize,
    /// Parallel connect workers.
    pub connect_workers: usize,
    /// Sequential command round trips.
    pub round_trips: usize,
    /// Sessions running commands in parallel.
    pub rtt_sessions: usize,
    /// How long the parallel round-trip run lasts.
    pub rtt_parallel_for: Duration,
    /// Receiver counts for the fan-out scenario.
    pub receivers: Vec<usize>,
    /// Casts sent with one in flight.
    pub casts_serial: usize,
    /// Casts sent with [`Plan::cast_window`] in flight.
    pub casts_pipelined: usize,
    /// Casts in flight in the pipelined run.
    pub cast_window: usize,
    /// Idle session counts at which the host's memory is read.
    pub idle_levels: Vec<usize>,
}

impl Plan {
    /// The full plan, or the quick one that finishes in well under a minute.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                connects: 100,
                parallel_connects: 200,
                connect_workers: 32,
                round_trips: 1_000,
                rtt_sessions: 64,
                rtt_parallel_for: Duration::from_secs(2),
                receivers: vec![10, 100],
                casts_serial: 200,
                casts_pipelined: 1_000,
                cast_window: 64,
                idle_levels: vec![1, 1_000],
            }
        } else {
            Self {
                quick,
                connects: 500,
                parallel_connects: 1_000,
                connect_workers: 32,
                round_trips: 10_000,
                rtt_sessions: 64,
                rtt_parallel_for: Duration::from_secs(10),
                receivers: vec![10, 100],
                casts_serial: 2_000,
                casts_pipelined: 20_000,
                cast_window: 64,
                idle_levels: vec![1, 1_000, 10_000],
            }
        }
    }
}
