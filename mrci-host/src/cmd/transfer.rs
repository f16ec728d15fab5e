//! The GEN_FILE mini-protocol (PROTOCOL.md §3.4) from the host's side, in both directions,
//! for any command: [`send_file`] (the host sends: downloads) and [`receive_file`] (the host
//! receives: uploads), with `-single_step`, progress TEXT (`done/len`, at most
//! [`PROGRESS_EVERY`](mrci_proto::payload::PROGRESS_EVERY) apart) and HALT/RESUME between chunks. TERM and KILL abort the body
//! (the instance drops its future); the file work runs on the blocking pool, so it never
//! blocks the session, and a transfer holds one chunk in memory: a download reads the next
//! chunk into the last one's memory once the connection has written it, and the session
//! reads an upload's next chunk only once the last is on disk, into its memory (the
//! decoder's `Recycler`).
//!
//! Invariant: a transfer moves exactly the announced number of bytes or reports that it did
//! not; the receiving side's [`Sink`] decides what an incomplete file becomes.

use std::{
    io::{self, Write},
    os::unix::fs::FileExt as _,
};

use bytes::{Bytes, BytesMut};
use mrci_proto::{Frame, TypeId, payload::GenFileArgs, recycle::Recycler, text};
use tokio::{
    sync::{OwnedSemaphorePermit, mpsc},
    time::Instant,
};

use super::{CmdCtx, Fail, Refusal, util::refused};

/// Bytes per GEN_FILE frame the host sends.
pub(crate) use mrci_proto::payload::GEN_FILE_CHUNK as CHUNK;
use mrci_proto::payload::GenFileProgress as Progress;

/// How a transfer ended, when it was not refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every byte went across.
    Complete,
    /// The client stopped it (a frame that is not a GEN_FILE, or the session closed).
    Stopped,
}

/// Sends the host's reply that opens a transfer: `-to_host` or `-from_host`, and the length.
pub(crate) async fn open(ctx: &CmdCtx, to_host: bool, len: u64, single_step: bool) {
    let reply = GenFileArgs::reply(to_host, len, single_step);
    ctx.send(TypeId::GEN_FILE, reply.to_bytes()).await;
}

/// Waits for an empty GEN_FILE (the receiver's "ready", or a single-step acknowledgement).
/// False when the client sent anything else or left.
async fn wait_ack(ctx: &mut CmdCtx) -> bool {
    matches!(ctx.next_input().await, Some(f) if f.type_id == TypeId::GEN_FILE && f.payload.is_empty())
}

/// Streams `len` bytes of `file` from `offset` to the client (after [`open`] with
/// `to_host = false`): waits for the client's ready, then sends chunks. Each chunk is read
/// (on a blocking-pool thread of the transfer's own) only once the one before it has been
/// written to the connection, so a download holds one chunk in memory; the socket's buffer
/// keeps the client busy while the next is read.
///
/// # Errors
/// A refusal if the file cannot be read or ends early.
pub(crate) async fn send_file(
    ctx: &mut CmdCtx,
    file: std::fs::File,
    offset: u64,
    len: u64,
    single_step: bool,
) -> Result<Ended, Fail> {
    if !wait_ack(ctx).await {
        return Ok(Ended::Stopped);
    }
    // One reader thread for the whole transfer, reading a chunk when asked into the memory
    // of the last one, which the connection has written by then (so a download allocates
    // one chunk, not one per chunk). It ends when the asking side is dropped (the body
    // finished or aborted).
    let (ask, mut asked) = mpsc::unbounded_channel::<(u64, usize)>();
    let (give, mut chunks) = mpsc::channel::<io::Result<Bytes>>(1);
    tokio::task::spawn_blocking(move || {
        let mut recycler = Recycler::new(1, 0);
        while let Some((at, n)) = asked.blocking_recv() {
            let buf = recycler
                .take(n)
                .unwrap_or_else(|| BytesMut::with_capacity(n));
            let chunk = read_at(&file, at, n, buf);
            if let Ok(chunk) = &chunk {
                recycler.remember(chunk);
            }
            if give.blocking_send(chunk).is_err() {
                return;
            }
        }
    });
    let mut progress = Progress::new(len);
    let mut done = 0u64;
    while done < len {
        ctx.wait_resumed().await;
        let n = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        let _ = ask.send((offset + done, n));
        let chunk = match chunks.recv().await {
            Some(Ok(chunk)) if !chunk.is_empty() => chunk,
            Some(Ok(_)) | None => return refused("The file became shorter during the download."),
            Some(Err(e)) => return refused(format!("Cannot read the file: {e}.")),
        };
        done += chunk.len() as u64;
        ctx.send(TypeId::GEN_FILE, chunk).await;
        if let Some(t) = progress.tick(done, Instant::now().into_std()) {
            ctx.text(&t).await;
        }
        if single_step && done < len && !wait_ack(ctx).await {
            return Ok(Ended::Stopped);
        }
        ctx.written().await;
    }
    Ok(Ended::Complete)
}

/// Reads up to `n` bytes at `at` (fewer only at the end of the file) into `buf` (empty).
fn read_at(file: &std::fs::File, at: u64, n: usize, mut buf: BytesMut) -> io::Result<Bytes> {
    buf.resize(n, 0);
    let mut got = 0;
    while got < n {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf.freeze())
}

/// Where received bytes go: a writer on the blocking pool, and what to do at the end.
pub(crate) trait Sink: Send + 'static {
    /// Writes the next chunk.
    ///
    /// # Errors
    /// The file system's error; the transfer stops.
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Every byte arrived: make the result visible.
    ///
    /// # Errors
    /// The file system's error.
    fn complete(self) -> io::Result<()>;
    /// The transfer stopped early: keep what can be resumed, or remove it.
    fn abandon(self);
}

/// A [`Sink`] over a plain file: `complete` syncs it, `abandon` syncs what arrived.
impl Sink for std::fs::File {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.write_all(chunk)
    }
    fn complete(self) -> io::Result<()> {
        self.sync_all()
    }
    fn abandon(self) {
        let _ = self.sync_data();
    }
}

/// Receives `len` bytes from the client into `sink` (after [`open`] with `to_host = true`):
/// sends the empty "ready" GEN_FILE, then takes chunks, acknowledging each in single-step
/// mode. A body aborted by TERM/KILL drops the channel, and the writer abandons the sink.
///
/// # Errors
/// A refusal if the client sends more than `len` or the sink fails.
pub(crate) async fn receive_file(
    ctx: &mut CmdCtx,
    sink: impl Sink,
    len: u64,
    single_step: bool,
) -> Result<Ended, Fail> {
    // Each chunk travels with its hold on the instance's GEN_FILE slot and frees it once
    // written, so the session delivers the next only then (see `instance::FILE_SLOT`).
    let (tx, mut rx) = mpsc::channel::<(Bytes, Option<OwnedSemaphorePermit>)>(1);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<bool> {
        let mut sink = sink;
        let mut written = 0u64;
        while written < len {
            let Some((chunk, slot)) = rx.blocking_recv() else {
                sink.abandon();
                return Ok(false);
            };
            if let Err(e) = sink.write(&chunk) {
                sink.abandon();
                return Err(e);
            }
            written += chunk.len() as u64;
            // The chunk's memory first, then the hold: the session reads the next chunk once
            // the hold is back, into this chunk's memory if nothing else holds it.
            drop(chunk);
            drop(slot);
        }
        sink.complete().map(|()| true)
    });
    ctx.send(TypeId::GEN_FILE, Bytes::new()).await;
    let mut progress = Progress::new(len);
    let mut done = 0u64;
    let mut stopped = false;
    while done < len {
        let Some((frame, slot)) = ctx.next_input_held().await else {
            stopped = true;
            break;
        };
        if frame.type_id != TypeId::GEN_FILE {
            stopped = true;
            break;
        }
        let Frame { payload, .. } = frame;
        if payload.is_empty() {
            continue;
        }
        if done + payload.len() as u64 > len {
            drop(tx);
            let _ = writer.await;
            return refused("The upload is longer than its -len.");
        }
        done += payload.len() as u64;
        if tx.send((payload, slot)).await.is_err() {
            break;
        }
        if let Some(t) = progress.tick(done, Instant::now().into_std()) {
            ctx.text(&t).await;
        }
        if single_step && done < len {
            ctx.wait_resumed().await;
            ctx.send(TypeId::GEN_FILE, Bytes::new()).await;
        }
    }
    drop(tx);
    match writer.await {
        Ok(Ok(true)) => Ok(Ended::Complete),
        Ok(Ok(false)) if stopped => Ok(Ended::Stopped),
        Ok(Ok(false)) => Err(Fail::Refused(Refusal::new("The upload stopped early."))),
        Ok(Err(e)) => refused(format!("Cannot write the file: {e}.")),
        Err(e) => Err(Fail::Internal(crate::Error::Io(io::Error::other(e)))),
    }
}

/// Sends TEXT that the upload was stopped, after a frame that was not file data.
pub(crate) async fn stopped(ctx: &CmdCtx, what: &str) {
    ctx.text(&format!("{what} stopped; nothing more was transferred.\n"))
        .await;
}

/// The client's GEN_FILE arguments.
///
/// # Errors
/// A refusal for a TEXT frame or an unreadable `-len`/`-offset`.
pub(crate) fn args(frame: &Frame) -> Result<GenFileArgs, Fail> {
    if frame.type_id != TypeId::GEN_FILE {
        return refused("Send the arguments in a GEN_FILE frame (this command transfers a file).");
    }
    GenFileArgs::parse(&frame.payload).map_err(|e| Fail::Refused(Refusal::new(format!("{e}."))))
}

/// The decoded payload of a TEXT or GEN_FILE answer to a question.
pub(crate) fn answer(frame: &Frame) -> String {
    match frame.type_id {
        TypeId::TEXT | TypeId::GEN_FILE => text::decode(&frame.payload).trim().to_lowercase(),
        _ => String::new(),
    }
}
