//! The module author's side: read the options, connect the pipe, answer the list modes and
//! run commands, with a blocking API that needs no async runtime.
//!
//! A module is a few lines (see `examples/hello_module.rs` for a complete one):
//!
//! ```no_run
//! use mrci_modrun::module::{self, Flow, ModuleArgs};
//!
//! fn main() -> mrci_modrun::Result<()> {
//!     let args = ModuleArgs::from_env()?;
//!     module::serve(
//!         &args,
//!         |_list| vec![module::command("hello", "say hello")],
//!         |_name, _frame, pipe| {
//!             pipe.send_text("hello\n")?;
//!             Ok(Flow::Idle)
//!         },
//!     )
//! }
//! ```
//!
//! Reading session data: attach the `-mem_ses` key with `mrci_shm::SessionShm::attach`
//! (`args.mem_ses`); this crate does not depend on the shared-memory crate. Modules in other
//! languages map the segment read-only and use its sequence counter (see [`crate::guide`]).
//!
//! File transfers (GEN_FILE, PROTOCOL.md §3.4) in either direction: [`send_file`] and
//! [`receive_file`].
//!
//! Invariant: [`serve`] sends IDLE exactly once per task the handler finishes, and before
//! exiting on KILL_CMD while a task is open (PROTOCOL.md §2.5).

use std::{
    io::{ErrorKind, Read, Write},
    os::unix::net::UnixStream,
    path::Path,
};

use bytes::{Bytes, BytesMut};
use mrci_proto::{CmdId, frame::MAX_PAYLOAD, payload::AsyncRequest};
pub use mrci_proto::{
    IpcFrame, TypeId,
    header::Version,
    payload::{GenFileArgs, NewCmd},
};

pub use self::file::{CHUNK, PROGRESS_EVERY, Transferred, receive_file, send_file};
pub use crate::args::{ListMode, Mode, ModuleArgs};
use crate::error::{Error, Result};

mod file;

/// Bytes one read from the socket takes at most.
const READ_SIZE: usize = 64 * 1024;

/// A module's connection to its session.
#[derive(Debug)]
pub struct Pipe {
    stream: UnixStream,
    buf: BytesMut,
}

impl Pipe {
    /// Connects to the socket the host passed with `-pipe`.
    ///
    /// # Errors
    /// If the socket cannot be reached.
    pub fn connect(path: &Path) -> Result<Self> {
        Ok(Self {
            stream: UnixStream::connect(path)?,
            buf: BytesMut::new(),
        })
    }

    /// Blocks for the next frame from the host; `None` when the host closed the pipe.
    ///
    /// # Errors
    /// On a socket error or a malformed frame.
    pub fn recv(&mut self) -> Result<Option<IpcFrame>> {
        loop {
            if let Some(frame) = IpcFrame::decode(&mut self.buf, MAX_PAYLOAD)? {
                return Ok(Some(frame));
            }
            if self.read_some()? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next frame if a whole one has arrived, without blocking; `None` otherwise.
    ///
    /// # Errors
    /// As [`Pipe::recv`], and [`Error::Io`] (`UnexpectedEof`) when the host closed the pipe.
    pub fn try_recv(&mut self) -> Result<Option<IpcFrame>> {
        loop {
            if let Some(frame) = IpcFrame::decode(&mut self.buf, MAX_PAYLOAD)? {
                return Ok(Some(frame));
            }
            self.stream.set_nonblocking(true)?;
            let res = self.read_some();
            self.stream.set_nonblocking(false)?;
            match res {
                Ok(0) => return Err(std::io::Error::from(ErrorKind::UnexpectedEof).into()),
                Ok(_) => {}
                Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// One read from the socket into the buffer; 0 at the end of the stream.
    fn read_some(&mut self) -> Result<usize> {
        let mut chunk = [0u8; READ_SIZE];
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                res => break res?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// On a socket error or a payload over the protocol limit.
    pub fn send(&mut self, frame: &IpcFrame) -> Result<()> {
        let mut out = BytesMut::new();
        frame.encode(&mut out)?;
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// Sends TEXT for the client.
    ///
    /// # Errors
    /// As [`Pipe::send`].
    pub fn send_text(&mut self, s: &str) -> Result<()> {
        self.send(&IpcFrame::with_text(TypeId::TEXT, s))
    }

    /// Sends ERR: to the client in run mode, to the host log in list mode.
    ///
    /// # Errors
    /// As [`Pipe::send`].
    pub fn send_err(&mut self, s: &str) -> Result<()> {
        self.send(&IpcFrame::with_text(TypeId::ERR, s))
    }

    /// Sends IDLE: the current task is finished.
    ///
    /// # Errors
    /// As [`Pipe::send`].
    pub fn send_idle(&mut self) -> Result<()> {
        self.send(&IpcFrame::new(TypeId::IDLE, Bytes::new()))
    }

    /// Announces a command (list mode).
    ///
    /// # Errors
    /// As [`Pipe::send`].
    pub fn send_new_cmd(&mut self, cmd: &NewCmd) -> Result<()> {
        let mut out = BytesMut::new();
        cmd.write(&mut out);
        self.send(&IpcFrame::new(TypeId::NEW_CMD, out.freeze()))
    }

    /// Sends an async request `[u16 async_id][data]` as PRIV_IPC, PUB_IPC or
    /// PUB_IPC_WITH_FEEDBACK (the host routes by id, PROTOCOL.md §4.5).
    ///
    /// # Errors
    /// As [`Pipe::send`].
    pub fn send_request(&mut self, via: TypeId, async_id: u16, data: &[u8]) -> Result<()> {
        let mut out = BytesMut::new();
        AsyncRequest {
            async_id: CmdId(async_id),
            data: Bytes::copy_from_slice(data),
        }
        .write(&mut out);
        self.send(&IpcFrame::new(via, out.freeze()))
    }

    /// Resets the host's idle timer without doing anything (ext id 48, PROTOCOL.md §4.4).
    ///
    /// # Errors
    /// As [`Pipe::send`].
    pub fn keep_alive(&mut self) -> Result<()> {
        self.send_request(TypeId::PRIV_IPC, 48, &[])
    }
}

/// What the handler wants after handling a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// The task is done: send IDLE and wait for the next task.
    Idle,
    /// The task waits for more input from the client; no IDLE yet.
    More,
    /// Exit the process now (after IDLE if a task is open).
    Exit,
}

/// A command announcement with the given name and summary and empty other texts.
pub fn command(name: &str, summary: &str) -> NewCmd {
    NewCmd {
        name: name.into(),
        summary: summary.into(),
        ..NewCmd::default()
    }
}

/// Answers a list-mode run: reads the host's HOST_VER, then sends one NEW_CMD per command.
/// Returns the host version if the host sent one.
///
/// # Errors
/// On a socket error.
pub fn serve_list(pipe: &mut Pipe, commands: &[NewCmd]) -> Result<Option<Version>> {
    let version = match pipe.recv()? {
        Some(frame) if frame.type_id == TypeId::HOST_VER => Version::parse(&frame.payload).ok(),
        _ => None,
    };
    for cmd in commands {
        pipe.send_new_cmd(cmd)?;
    }
    Ok(version)
}

/// The whole life of a module: connects, and either lists `list(mode)` or runs the command
/// named by `-run_cmd`, calling `handler(name, frame, pipe)` for each client frame.
///
/// Control frames are handled here: TERM_CMD ends the open task with IDLE, KILL_CMD does the
/// same and returns; HALT_CMD and RESUME_CMD are passed to the handler (reply
/// [`Flow::More`] to ignore them). Returns when the host closes the pipe.
///
/// # Errors
/// On a socket error, or whatever the handler returns.
pub fn serve<L, H>(args: &ModuleArgs, list: L, mut handler: H) -> Result<()>
where
    L: FnOnce(ListMode) -> Vec<NewCmd>,
    H: FnMut(&str, IpcFrame, &mut Pipe) -> Result<Flow>,
{
    let mut pipe = Pipe::connect(&args.pipe)?;
    let name = match &args.mode {
        Mode::List(mode) => {
            serve_list(&mut pipe, &list(*mode))?;
            return Ok(());
        }
        Mode::Run(name) => name.as_str(),
    };
    let mut task_open = false;
    while let Some(frame) = pipe.recv()? {
        let flow = match frame.type_id {
            TypeId::KILL_CMD => Flow::Exit,
            TypeId::TERM_CMD => Flow::Idle,
            TypeId::HALT_CMD | TypeId::RESUME_CMD => handler(name, frame, &mut pipe)?,
            _ => {
                task_open = true;
                handler(name, frame, &mut pipe)?
            }
        };
        match flow {
            Flow::More => {}
            Flow::Idle | Flow::Exit if task_open => {
                pipe.send_idle()?;
                task_open = false;
            }
            Flow::Idle | Flow::Exit => {}
        }
        if flow == Flow::Exit {
            return Ok(());
        }
    }
    Ok(())
}

/// Fails with a usage error; for modules that get a `-run_cmd` name they do not know.
pub fn unknown_command(name: &str) -> Error {
    Error::Usage(format!("unknown command {name}"))
}
