//! Scenario: file transfer. One file of [`Plan::file_bytes`] uploaded with `fs_upload` and
//! downloaded with `fs_download` through the client library (1 MiB chunks, the file read from
//! and written to disk on the client's side), against the baseline's bulk streams of the
//! same size in the same chunks over the same stack (TLS, the MRCI codec). The host's
//! resident memory is sampled during each transfer; its growth over the resident size just
//! before the transfer (the download's taken after the host settled) is reported in chunks.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use mrci_cli::client::{Client, NoEvents, TransferOptions};
use mrci_proto::{BranchId, Frame, TypeId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{
    Plan,
    baseline::{BULK_CHUNK, Baseline, SINK, SOURCE},
    host::{HostProcess, Setup},
    procfs,
    report::Report,
};

const SCENARIO: &str = "file transfer";
const MIB: f64 = (1 << 20) as f64;

/// How long the host is left alone between the upload and the download, so that each is
/// measured from a settled resident size.
const SETTLE: Duration = Duration::from_millis(2500);

/// Samples `pid`'s resident memory until stopped; the highest reading.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssPeak {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(procfs::rss(pid).unwrap_or(0)));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(rss) = procfs::rss(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, peak, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Uploads `path` to the baseline's sink in [`BULK_CHUNK`] frames; the seconds it took.
async fn base_upload(client: &mut Client, path: &Path) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let mut file = tokio::fs::File::open(path).await?;
    let mut left = file.metadata().await?.len();
    while left > 0 {
        let n = usize::try_from(left)?.min(BULK_CHUNK);
        let mut buf = vec![0; n];
        file.read_exact(&mut buf).await?;
        client
            .send(Frame::new(
                TypeId::GEN_FILE,
                SINK,
                BranchId(0),
                Bytes::from(buf),
            ))
            .await?;
        left -= n as u64;
    }
    client
        .send(Frame::new(
            TypeId::GEN_FILE,
            SINK,
            BranchId(0),
            Bytes::new(),
        ))
        .await?;
    client.collect(SINK, BranchId(0)).await?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Downloads `bytes` from the baseline's source into `path`; the seconds it took.
async fn base_download(client: &mut Client, bytes: u64, path: &Path) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let mut file = tokio::fs::File::create(path).await?;
    client
        .send_text(SOURCE, BranchId(0), &bytes.to_string())
        .await?;
    loop {
        let frame = client
            .recv()
            .await?
            .ok_or_else(|| anyhow::anyhow!("closed"))?;
        if frame.cmd_id != SOURCE {
            continue;
        }
        if frame.type_id == TypeId::IDLE {
            break;
        }
        file.write_all(&frame.payload).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Runs the scenario.
///
/// # Errors
/// Host start, connection or file failures.
pub async fn run(
    mrci: &Path,
    out: &Path,
    base: &Baseline,
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let setup = Setup {
        files_root: Some(root.clone()),
        ..Setup::load(64)
    };
    let host = HostProcess::start_with(mrci, &setup, &out.join("host-files.log")).await?;
    let bytes = plan.file_bytes;
    let src = dir.path().join("src.bin");
    {
        // Not compressible, not all zero: a simple generator is enough for a transfer.
        let mut f = tokio::fs::File::create(&src).await?;
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut buf = vec![0u8; BULK_CHUNK];
        let mut left = bytes;
        while left > 0 {
            for b in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
            }
            let n = usize::try_from(left)?.min(BULK_CHUNK);
            f.write_all(&buf[..n]).await?;
            left -= n as u64;
        }
        f.sync_all().await?;
    }
    let mut session = host.session().await?;
    session
        .wait_for_command("fs_upload", Duration::from_secs(5))
        .await?;
    let opts = TransferOptions::default();
    let up_idle = host.rss()?;
    let sampler = RssPeak::start(host.pid);
    let t0 = Instant::now();
    session
        .upload(&src, "bench.bin", &opts, &mut NoEvents)
        .await?;
    let host_up = t0.elapsed().as_secs_f64();
    let up_peak = sampler.finish();

    let back = dir.path().join("back.bin");
    // What the upload left (the session's recycled chunk, let go after a second without
    // frames) is neither the download's growth nor part of its starting point.
    tokio::time::sleep(SETTLE).await;
    let down_idle = host.rss()?;
    let sampler = RssPeak::start(host.pid);
    let t0 = Instant::now();
    session
        .download("bench.bin", &back, &opts, &mut NoEvents)
        .await?;
    let host_down = t0.elapsed().as_secs_f64();
    let down_peak = sampler.finish();
    drop(session);
    host.stop()?;

    let mut base_session = base.session().await?;
    let base_up = base_upload(&mut base_session, &src).await?;
    let base_down = base_download(&mut base_session, bytes, &back).await?;

    let size = format!("{} MiB", bytes >> 20);
    let rate = |secs: f64| bytes as f64 / MIB / secs;
    report.row(
        SCENARIO,
        &format!("upload {size}"),
        rate(host_up),
        "MiB/s",
        Some(rate(base_up)),
        Some(">= 0.8x base"),
    );
    report.row(
        SCENARIO,
        &format!("download {size}"),
        rate(host_down),
        "MiB/s",
        Some(rate(base_down)),
        Some(">= 0.8x base"),
    );
    let chunks = |peak: u64, idle: u64| peak.saturating_sub(idle) as f64 / BULK_CHUNK as f64;
    report.figure(
        SCENARIO,
        "host RSS growth during upload (1 MiB chunks)",
        chunks(up_peak, up_idle),
        "chunks",
    );
    report.figure(
        SCENARIO,
        "host RSS growth during download (1 MiB chunks)",
        chunks(down_peak, down_idle),
        "chunks",
    );
    Ok(())
}
