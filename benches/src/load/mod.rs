//! The load generator: one process that starts a real `mrci host run` on loopback, opens many
//! TLS sessions to it and measures connects (stage by stage), command round trips, cast
//! fan-out, login cost and the host's memory per idle session up to 100,000 sessions, each
//! next to a minimal TLS echo/relay built on the same stack ([`baseline`]) where one
//! applies, so that every figure can be read against what the machine can do; and a soak
//! ([`soak`]) that runs a mixed load for minutes and judges memory, descriptors and delivery.
//!
//! Layout: [`client`] speaks the wire protocol; [`host`] owns the host process and its
//! temporary data directory; [`procfs`] reads a process's memory, descriptors and CPU time;
//! one module per scenario ([`connect`], [`roundtrip`], [`fanout`], [`login`], [`idle`],
//! [`modules`], [`soak`], and [`cluster`], three hosts on PostgreSQL and NATS, run alone); [`stats`] turns samples into figures; [`report`] prints the table
//! and writes the JSON and SVG files ([`plot`] draws the charts).
//!
//! Invariant: a scenario that cannot run (the host lacks the commands it needs) reports
//! itself as skipped; no figure is ever made up.

pub mod baseline;
pub mod client;
pub mod cluster;
pub mod connect;
pub mod fanout;
pub mod files;
pub mod host;
pub mod idle;
pub mod login;
pub mod modules;
pub mod plot;
pub mod procfs;
pub mod report;
pub mod roundtrip;
pub mod soak;
pub mod stats;

use std::time::Duration;

/// How much work each scenario does.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Short smoke run: fewer iterations, 1,000 idle sessions.
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
    /// Sessions logging in at once in the login-cost scenario, one run per entry: as many
    /// as cores, and more (the host then hashes more passwords at once than it has cores).
    pub login_sessions: Vec<usize>,
    /// How long each login-cost run lasts (the hash alone runs as long again).
    pub login_for: Duration,
    /// Idle logged-in sessions the idle scenario opens.
    pub idle_sessions: usize,
    /// Idle sessions connecting and logging in at once.
    pub idle_parallel: usize,
    /// Sessions between two readings of the host's memory and descriptors.
    pub idle_sample_every: usize,
    /// Time given to the host to settle before the last reading.
    pub idle_settle: Duration,
    /// The most the idle scenario spends opening sessions.
    pub idle_time_limit: Duration,
    /// Size of the file the file-transfer scenario uploads and downloads.
    pub file_bytes: u64,
}

impl Plan {
    /// The full plan, or the quick one that finishes in well under a minute.
    pub fn new(quick: bool) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
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
                login_sessions: vec![cpus, 4 * cpus],
                login_for: Duration::from_secs(2),
                idle_sessions: 1_000,
                idle_parallel: 32,
                idle_sample_every: 100,
                idle_settle: Duration::from_secs(1),
                idle_time_limit: Duration::from_secs(120),
                file_bytes: 16 << 20,
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
                login_sessions: vec![cpus, 4 * cpus],
                login_for: Duration::from_secs(10),
                idle_sessions: 100_000,
                idle_parallel: 64,
                idle_sample_every: 1_000,
                idle_settle: Duration::from_secs(3),
                idle_time_limit: Duration::from_secs(30 * 60),
                file_bytes: 256 << 20,
            }
        }
    }
}
