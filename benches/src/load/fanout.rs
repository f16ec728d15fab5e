//! Scenario 3: cast fan-out. One sender casts BYTES frames to the `cast` command
//! (COMMANDS.md §3.5) on a sub-channel that N receivers have open; each receiver gets
//! `[BYTES][cmd 5][branch 0][data]` (PROTOCOL.md §4.3 id 5). Every cast carries its sequence
//! number, its send time and a checksummed pattern, so the receivers count losses,
//! duplicates and corruption, and the receiver that completes a cast records the
//! send-to-last-receiver latency. Runs with one cast in flight and with a window of casts
//! in flight. The baseline relays the same frames.
//!
//! When the host does not announce `add_ch`, `add_sub_ch`, `open_sub_ch` and `cast` the
//! scenario reports itself skipped.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use mrci_cli::client::{Client, ReadHalf, WriteHalf};
use mrci_proto::{BranchId, CmdId, Frame, TypeId, async_id::AsyncId};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{
    Plan,
    baseline::{self, Baseline},
    client,
    host::HostProcess,
    report::Report,
    roundtrip::open_many,
    stats::{Samples, per_second},
};

const SCENARIO: &str = "cast fan-out";
/// Commands the scenario needs from the host.
pub const NEEDED: [&str; 4] = ["add_ch", "add_sub_ch", "open_sub_ch", "cast"];
/// How long without a delivery ends a run.
const STALL: Duration = Duration::from_secs(2);
const CHANNEL_ARGS: &str = "-ch_name load_ch -sub_name load_sub";
/// Bytes in a cast's data.
const CAST_LEN: usize = 64;

/// The outcome of one fan-out run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Casts sent.
    pub sent: usize,
    /// Casts that reached every receiver.
    pub complete: usize,
    /// Casts per second that reached every receiver.
    pub rate: f64,
    /// Deliveries that never arrived.
    pub lost: u64,
    /// Deliveries that arrived twice or more.
    pub duplicates: u64,
    /// Deliveries whose data was damaged.
    pub corrupt: u64,
    /// ERR frames the sender received.
    pub errors: u64,
    /// Send-to-last-receiver latency of each complete cast.
    pub latency: Samples,
}

/// The data of cast `seq` sent at `sent_ns`: seq, time, a pattern and a checksum.
pub fn encode(seq: u64, sent_ns: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(CAST_LEN);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&sent_ns.to_le_bytes());
    out.extend((0..CAST_LEN - 24).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8)));
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The `(seq, sent_ns)` of intact cast data, `None` if it is damaged.
pub fn decode(data: &[u8]) -> Option<(u64, u64)> {
    if data.len() != CAST_LEN {
        return None;
    }
    let (body, sum) = data.split_at(CAST_LEN - 8);
    if checksum(body).to_le_bytes() != sum {
        return None;
    }
    let seq = u64::from_le_bytes(body[..8].try_into().ok()?);
    let sent = u64::from_le_bytes(body[8..16].try_into().ok()?);
    Some((seq, sent)).filter(|_| encode(seq, sent) == data)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Shared {
    counts: Vec<AtomicU32>,
    receivers: u32,
    window: Semaphore,
    complete: AtomicUsize,
    last_ns: AtomicU64,
    start: Instant,
    stop: CancellationToken,
}

#[derive(Default)]
struct Received {
    unique: u64,
    duplicates: u64,
    corrupt: u64,
    latency: Samples,
}

async fn receive(mut session: Client, shared: Arc<Shared>) -> (Received, Client) {
    let mut seen = vec![false; shared.counts.len()];
    let mut out = Received::default();
    session.set_read_timeout(None);
    loop {
        let frame = tokio::select! {
            () = shared.stop.cancelled() => break,
            f = session.recv() => match f {
                Ok(Some(f)) => f,
                _ => break,
            },
        };
        if frame.cmd_id != AsyncId::CAST.cmd_id() || frame.type_id != TypeId::BYTES {
            continue;
        }
        let now = shared.start.elapsed();
        let Some((seq, sent_ns)) = decode(&frame.payload).filter(|(s, _)| *s < seen.len() as u64)
        else {
            out.corrupt += 1;
            continue;
        };
        let seq = seq as usize;
        if std::mem::replace(&mut seen[seq], true) {
            out.duplicates += 1;
            continue;
        }
        out.unique += 1;
        if shared.counts[seq].fetch_add(1, Ordering::AcqRel) + 1 == shared.receivers {
            out.latency
                .push(now.saturating_sub(Duration::from_nanos(sent_ns)));
            shared.complete.fetch_add(1, Ordering::AcqRel);
            shared.last_ns.fetch_max(
                u64::try_from(now.as_nanos()).unwrap_or(u64::MAX),
                Ordering::AcqRel,
            );
            shared.window.add_permits(1);
        }
    }
    (out, session)
}

/// Sends `total` casts from `sender` to `cast` with at most `window` not yet delivered to
/// every receiver, and collects what the receivers saw.
///
/// # Errors
/// Connection failures of the sender.
pub async fn measure(
    sender: Client,
    cast: CmdId,
    receivers: Vec<Client>,
    total: usize,
    window: usize,
) -> anyhow::Result<Outcome> {
    Ok(measure_held(sender, cast, receivers, total, window)
        .await?
        .0)
}

/// The sessions of a run, still open until dropped (so that closing them is not part of
/// what a caller measures around the run).
pub struct Held {
    _receivers: Vec<Client>,
    _sender: (ReadHalf, WriteHalf),
}

/// [`measure`], handing back the run's sessions still open.
///
/// # Errors
/// Connection failures of the sender.
pub async fn measure_held(
    sender: Client,
    cast: CmdId,
    receivers: Vec<Client>,
    total: usize,
    window: usize,
) -> anyhow::Result<(Outcome, Held)> {
    let n = receivers.len();
    let shared = Arc::new(Shared {
        counts: (0..total).map(|_| AtomicU32::new(0)).collect(),
        receivers: u32::try_from(n)?,
        window: Semaphore::new(window),
        complete: AtomicUsize::new(0),
        last_ns: AtomicU64::new(0),
        start: Instant::now(),
        stop: CancellationToken::new(),
    });
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|r| tokio::spawn(receive(r, Arc::clone(&shared))))
        .collect();
    let (mut answers, mut sink) = sender.split();
    let stop = shared.stop.clone();
    let errors = tokio::spawn(async move {
        let mut errors = 0u64;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                f = answers.recv() => match f {
                    Ok(Some(f)) if f.cmd_id == cast && f.type_id == TypeId::ERR => errors += 1,
                    Ok(Some(_)) => {}
                    _ => break,
                },
            }
        }
        (errors, answers)
    });
    let mut sent = 0;
    for seq in 0..total {
        match tokio::time::timeout(STALL, shared.window.acquire()).await {
            Ok(permit) => permit?.forget(),
            Err(_) => break,
        }
        let sent_ns = u64::try_from(shared.start.elapsed().as_nanos())?;
        let data = encode(seq as u64, sent_ns);
        sink.send(Frame::new(TypeId::BYTES, cast, BranchId(0), data))
            .await?;
        sent += 1;
    }
    let mut last_change = (Instant::now(), 0);
    while shared.complete.load(Ordering::Acquire) < sent {
        let complete = shared.complete.load(Ordering::Acquire);
        if complete != last_change.1 {
            last_change = (Instant::now(), complete);
        } else if last_change.0.elapsed() > STALL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shared.stop.cancel();
    let (errors, answers) = errors.await?;
    let mut out = Outcome {
        sent,
        errors,
        ..Outcome::default()
    };
    let mut unique = 0;
    let mut sessions = Vec::with_capacity(n);
    for task in tasks {
        let (r, session) = task.await?;
        sessions.push(session);
        unique += r.unique;
        out.duplicates += r.duplicates;
        out.corrupt += r.corrupt;
        out.latency.merge(r.latency);
    }
    out.lost = (sent as u64 * n as u64).saturating_sub(unique);
    out.complete = shared.complete.load(Ordering::Acquire);
    let last = Duration::from_nanos(shared.last_ns.load(Ordering::Acquire));
    out.rate = per_second(out.complete, last);
    let held = Held {
        _receivers: sessions,
        _sender: (answers, sink),
    };
    Ok((out, held))
}

/// Creates the scenario's channel and sub-channel on `host`; false (nothing done) when the
/// host lacks the commands ([`NEEDED`]).
///
/// # Errors
/// Connection failures, or a channel command that answers with ERR.
pub async fn create_channel(host: &HostProcess) -> anyhow::Result<bool> {
    let mut owner = host.session().await?;
    if NEEDED.iter().any(|c| !owner.commands().contains(c)) {
        return Ok(false);
    }
    client::ok(&mut owner, "add_ch", "-ch_name load_ch").await?;
    client::ok(&mut owner, "add_sub_ch", CHANNEL_ARGS).await?;
    Ok(true)
}

/// A new logged-in session on `host` with the scenario's sub-channel open.
///
/// # Errors
/// Connection failures, or an `open_sub_ch` that answers with ERR.
pub async fn host_member(host: &HostProcess) -> anyhow::Result<Client> {
    let mut session = host.session().await?;
    client::ok(&mut session, "open_sub_ch", CHANNEL_ARGS).await?;
    Ok(session)
}

fn record(report: &mut Report, label: &str, host: &mut Outcome, base: &mut Outcome) {
    let target = label
        .starts_with("10 receivers, 64")
        .then_some(">= 20000/s, nothing lost");
    report.row(
        SCENARIO,
        &format!("{label}: casts/s"),
        host.rate,
        "casts/s",
        Some(base.rate),
        target,
    );
    report.row(
        SCENARIO,
        &format!("{label}: p50 latency"),
        host.latency.median_ms().unwrap_or_default(),
        "ms",
        base.latency.median_ms(),
        None,
    );
    report.row(
        SCENARIO,
        &format!("{label}: p99 latency"),
        host.latency.p99_ms().unwrap_or_default(),
        "ms",
        base.latency.p99_ms(),
        None,
    );
    let faults = (host.lost + host.duplicates + host.corrupt) as f64;
    let base_faults = (base.lost + base.duplicates + base.corrupt) as f64;
    report.row(
        SCENARIO,
        &format!("{label}: lost/dup/corrupt"),
        faults,
        "count",
        Some(base_faults),
        None,
    );
    report.notes.push(format!(
        "fan-out {label}: host sent {} complete {} lost {} duplicates {} corrupt {} errors {}; \
         baseline sent {} complete {} lost {} duplicates {} corrupt {}",
        host.sent,
        host.complete,
        host.lost,
        host.duplicates,
        host.corrupt,
        host.errors,
        base.sent,
        base.complete,
        base.lost,
        base.duplicates,
        base.corrupt
    ));
}

/// Runs the scenario against the host and the baseline, or reports it skipped.
///
/// # Errors
/// Connection failures, or a channel command that answers with ERR.
pub async fn run(
    host: &HostProcess,
    base: &Baseline,
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    if !create_channel(host).await? {
        report.skip(SCENARIO, "host lacks channel commands");
        return Ok(());
    }
    for &receivers in &plan.receivers {
        for (window, total) in [
            (1, plan.casts_serial),
            (plan.cast_window, plan.casts_pipelined),
        ] {
            let label = format!("{receivers} receivers, {window} in flight");
            let sender = host_member(host).await?;
            let cast = client::id(&sender, "cast")?;
            let members = open_many(receivers, || host_member(host)).await?;
            let mut on_host = measure(sender, cast, members, total, window)
                .await
                .with_context(|| label.clone())?;
            base.clear_receivers();
            let sender = base.session().await?;
            let members = open_many(receivers, || async {
                let mut s = base.session().await?;
                s.call(baseline::JOIN, "").await?;
                Ok(s)
            })
            .await?;
            let mut on_base = measure(sender, baseline::CAST, members, total, window).await?;
            if window == 1 {
                report.series(
                    &format!("cast to {receivers}: host"),
                    on_host.latency.curve(),
                );
                report.series(
                    &format!("cast to {receivers}: baseline"),
                    on_base.latency.curve(),
                );
            }
            record(report, &label, &mut on_host, &mut on_base);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_data_round_trips_and_damage_is_seen() {
        let data = encode(42, 123_456);
        assert_eq!(data.len(), CAST_LEN);
        assert_eq!(decode(&data), Some((42, 123_456)));
        let mut bad = data.clone();
        bad[30] ^= 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&data[1..]), None);
    }
}
