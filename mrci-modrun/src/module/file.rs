//! GEN_FILE transfers for module commands (PROTOCOL.md §3.4), the same flow the host's own
//! `fs_upload` and `fs_download` follow: [`send_file`] answers `-from_host -len N` and streams
//! a source from `-offset` once the client is ready (a download), [`receive_file`] answers
//! `-to_host -len N`, sends the empty "ready" and writes what the client sends (an upload).
//! Both honour `-single_step`, send progress TEXT (`done/len`, at most [`PROGRESS_EVERY`]
//! apart, the last always) and stop on TERM_CMD or KILL_CMD; HALT_CMD pauses a download
//! until RESUME_CMD.
//!
//! A command that transfers files is announced with `gen_file: true` in its [`NewCmd`], so
//! that clients open it with a GEN_FILE frame; the handler parses that frame with
//! [`GenFileArgs::parse`] and calls one of the two functions:
//!
//! ```no_run
//! use mrci_modrun::module::{self, Flow, GenFileArgs, IpcFrame, Pipe, TypeId};
//!
//! fn handle(frame: IpcFrame, pipe: &mut Pipe) -> mrci_modrun::Result<Flow> {
//!     if frame.type_id != TypeId::GEN_FILE {
//!         pipe.send_err("Open this command with a GEN_FILE frame.")?;
//!         return Ok(Flow::Idle);
//!     }
//!     let Ok(args) = GenFileArgs::parse(&frame.payload) else {
//!         pipe.send_err("Unreadable -len or -offset.")?;
//!         return Ok(Flow::Idle);
//!     };
//!     let file = std::fs::File::open("report.csv")?;
//!     Ok(module::send_file(pipe, &args, file)?.flow())
//! }
//! ```
//!
//! [`NewCmd`]: super::NewCmd

use std::{
    io::{self, Read, Seek, SeekFrom, Write},
    time::Instant,
};

use bytes::Bytes;
use mrci_proto::{IpcFrame, TypeId, payload::GenFileArgs};

use super::{Flow, Pipe};
use crate::error::Result;

/// Bytes per GEN_FILE frame a module sends (the host's chunk).
pub use mrci_proto::payload::GEN_FILE_CHUNK as CHUNK;
use mrci_proto::payload::GenFileProgress as Progress;
/// Least time between two progress texts.
pub use mrci_proto::payload::PROGRESS_EVERY;

/// How a transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transferred {
    /// Every byte went across (the count).
    Complete(u64),
    /// The client stopped it with TERM_CMD or a frame that is not file data, after this
    /// many bytes.
    Stopped(u64),
    /// Refused before any data moved; the ERR text was sent.
    Refused,
    /// KILL_CMD arrived, or the host closed the pipe: the process should end.
    Killed,
}

impl Transferred {
    /// What the handler returns after the transfer: [`Flow::Exit`] after a kill, else
    /// [`Flow::Idle`].
    pub fn flow(self) -> Flow {
        match self {
            Self::Killed => Flow::Exit,
            _ => Flow::Idle,
        }
    }
}

/// What the client sent while the module waited for it.
enum Heard {
    /// An empty GEN_FILE: "ready", or a single-step acknowledgement.
    Ack,
    /// File data.
    Data(Bytes),
    /// The transfer ends here.
    End(Transferred),
}

/// Blocks for the next frame that matters to a transfer at `done` bytes: HALT_CMD and
/// RESUME_CMD are skipped, TERM_CMD and any other frame stop it, KILL_CMD or a closed pipe
/// end it.
fn hear(pipe: &mut Pipe, done: u64) -> Result<Heard> {
    loop {
        let Some(frame) = pipe.recv()? else {
            return Ok(Heard::End(Transferred::Killed));
        };
        return Ok(match frame.type_id {
            TypeId::HALT_CMD | TypeId::RESUME_CMD => continue,
            TypeId::GEN_FILE if frame.payload.is_empty() => Heard::Ack,
            TypeId::GEN_FILE => Heard::Data(frame.payload),
            TypeId::KILL_CMD => Heard::End(Transferred::Killed),
            _ => Heard::End(Transferred::Stopped(done)),
        });
    }
}

/// Between two chunks a sender looks, without blocking, at what arrived: TERM_CMD stops,
/// KILL_CMD ends, HALT_CMD waits for RESUME_CMD (or TERM_CMD, KILL_CMD); anything else is
/// ignored, as the host's sender does.
fn between_chunks(pipe: &mut Pipe, done: u64) -> Result<Option<Transferred>> {
    let mut halted = false;
    loop {
        let frame = if halted {
            pipe.recv()?
        } else {
            match pipe.try_recv()? {
                Some(frame) => Some(frame),
                None => return Ok(None),
            }
        };
        let Some(frame) = frame else {
            return Ok(Some(Transferred::Killed));
        };
        match frame.type_id {
            TypeId::TERM_CMD => return Ok(Some(Transferred::Stopped(done))),
            TypeId::KILL_CMD => return Ok(Some(Transferred::Killed)),
            TypeId::HALT_CMD => halted = true,
            TypeId::RESUME_CMD if halted => return Ok(None),
            _ => {}
        }
    }
}

/// The reply that opens a transfer: `-to_host` or `-from_host`, the length and
/// `-single_step` if the client asked for it.
fn open(pipe: &mut Pipe, to_host: bool, len: u64, single_step: bool) -> Result<()> {
    let reply = GenFileArgs::reply(to_host, len, single_step);
    pipe.send(&IpcFrame::new(TypeId::GEN_FILE, reply.to_bytes()))
}

/// Sends `source` to the client (a download), as the client's `args` ask: from `-offset`,
/// `-len` bytes (0 or absent: to the end; more than there is: what there is), acknowledged
/// chunk by chunk with `-single_step`.
///
/// # Errors
/// On a socket error. A source that cannot be read, or an offset past its end, is reported
/// to the client as ERR and returns [`Transferred::Refused`] (before the reply) or ends the
/// transfer early (after it, when the source shrinks or fails).
pub fn send_file(
    pipe: &mut Pipe,
    args: &GenFileArgs,
    mut source: impl Read + Seek,
) -> Result<Transferred> {
    let size = match source.seek(SeekFrom::End(0)) {
        Ok(size) => size,
        Err(e) => {
            pipe.send_err(&format!("Cannot read the file: {e}."))?;
            return Ok(Transferred::Refused);
        }
    };
    let offset = args.offset;
    if offset > size {
        pipe.send_err(&format!(
            "-offset {offset} is past the end of the file ({size} bytes)."
        ))?;
        return Ok(Transferred::Refused);
    }
    if let Err(e) = source.seek(SeekFrom::Start(offset)) {
        pipe.send_err(&format!("Cannot read the file: {e}."))?;
        return Ok(Transferred::Refused);
    }
    let len = match args.len {
        None | Some(0) => size - offset,
        Some(n) => n.min(size - offset),
    };
    open(pipe, false, len, args.single_step)?;
    match hear(pipe, 0)? {
        Heard::Ack => {}
        Heard::Data(_) => return Ok(Transferred::Stopped(0)),
        Heard::End(end) => return Ok(end),
    }
    let mut progress = Progress::new(len);
    let mut done = 0u64;
    let mut buf = vec![0u8; CHUNK];
    while done < len {
        if let Some(end) = between_chunks(pipe, done)? {
            return Ok(end);
        }
        let want = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        let got = match read_full(&mut source, &mut buf[..want]) {
            Ok(0) => {
                pipe.send_err("The file became shorter during the download.")?;
                return Ok(Transferred::Stopped(done));
            }
            Ok(got) => got,
            Err(e) => {
                pipe.send_err(&format!("Cannot read the file: {e}."))?;
                return Ok(Transferred::Stopped(done));
            }
        };
        pipe.send(&IpcFrame::new(
            TypeId::GEN_FILE,
            Bytes::copy_from_slice(&buf[..got]),
        ))?;
        done += got as u64;
        if let Some(t) = progress.tick(done, Instant::now()) {
            pipe.send_text(&t)?;
        }
        if args.single_step && done < len {
            match hear(pipe, done)? {
                Heard::Ack => {}
                Heard::Data(_) => return Ok(Transferred::Stopped(done)),
                Heard::End(end) => return Ok(end),
            }
        }
    }
    Ok(Transferred::Complete(len))
}

/// Receives a file from the client into `sink` (an upload) as the client's `args` announce
/// it: `-len` bytes, acknowledged chunk by chunk with `-single_step`. The sink gets the bytes
/// from `-offset` on: position it there (a resume) before the call. It is flushed at the
/// end; syncing it to disk and making it visible are the caller's (after
/// [`Transferred::Complete`]).
///
/// # Errors
/// On a socket error. A missing `-len` is reported to the client as ERR and returns
/// [`Transferred::Refused`]; more data than announced or a failing sink is reported as ERR
/// and ends the transfer ([`Transferred::Stopped`]).
pub fn receive_file(
    pipe: &mut Pipe,
    args: &GenFileArgs,
    mut sink: impl Write,
) -> Result<Transferred> {
    let Some(len) = args.len else {
        pipe.send_err("-len is required.")?;
        return Ok(Transferred::Refused);
    };
    open(pipe, true, len, args.single_step)?;
    pipe.send(&IpcFrame::new(TypeId::GEN_FILE, Bytes::new()))?;
    let mut progress = Progress::new(len);
    let mut done = 0u64;
    while done < len {
        let chunk = match hear(pipe, done)? {
            Heard::Ack => continue,
            Heard::Data(chunk) => chunk,
            Heard::End(end) => return Ok(end),
        };
        if done + chunk.len() as u64 > len {
            pipe.send_err("The upload is longer than its -len.")?;
            return Ok(Transferred::Stopped(done));
        }
        if let Err(e) = sink.write_all(&chunk) {
            pipe.send_err(&format!("Cannot write the file: {e}."))?;
            return Ok(Transferred::Stopped(done));
        }
        done += chunk.len() as u64;
        if let Some(t) = progress.tick(done, Instant::now()) {
            pipe.send_text(&t)?;
        }
        if args.single_step && done < len {
            pipe.send(&IpcFrame::new(TypeId::GEN_FILE, Bytes::new()))?;
        }
    }
    if let Err(e) = sink.flush() {
        pipe.send_err(&format!("Cannot write the file: {e}."))?;
        return Ok(Transferred::Stopped(done));
    }
    Ok(Transferred::Complete(len))
}

/// Reads until `buf` is full or the source ends; the bytes read.
fn read_full(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
