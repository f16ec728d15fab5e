//! The thin tokio task that runs one module process: it feeds socket, process, host and
//! timer events into a [`Supervisor`] and carries out its actions.
//!
//! Invariant: all lifecycle and timer decisions are the supervisor's; the driver reads the
//! (tokio, so pausable) clock, does the IO and reports. When it returns, the process is
//! reaped, its process group killed, its socket file removed and one [`Ended`] reported.

use std::{collections::VecDeque, io, process::ExitStatus, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use mrci_proto::{IpcFrame, TypeId, codec::IpcCodec};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        UnixListener, UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::mpsc::{self, error::TrySendError},
    task::JoinHandle,
    time::{Instant, sleep_until},
};
use tokio_util::{
    codec::{Decoder, Encoder},
    sync::CancellationToken,
};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    config::Config,
    filter::{Classified, classify_list, classify_run},
    process::{Process, SocketFile},
    supervisor::{Action, ExitCause, State, Supervisor},
};

/// How long to keep reading frames a module wrote just before it exited.
const DRAIN: Duration = Duration::from_secs(2);

/// Dropped frames logged at `warn` per process; later ones go to `debug`.
const LOUD_DROPS: u32 = 8;

/// How a module process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Why, as far as the supervisor knows.
    pub cause: ExitCause,
    /// The exit status, if it could be read.
    pub status: Option<ExitStatus>,
    /// Whether the module ever connected to its socket.
    pub connected: bool,
    /// Whether a task was left without IDLE (frames were sent or queued after the last IDLE).
    pub task_open: bool,
    /// The process id it had.
    pub pid: u32,
}

impl Ended {
    /// The ERR text the host sends before an IDLE on the pair when a task was left open
    /// (PROTOCOL.md §2.5), or `None` when the client is not waiting for anything.
    pub fn client_error(&self) -> Option<&'static str> {
        if !self.task_open {
            None
        } else if self.connected {
            Some(
                "err: The command has stopped unexpectedly or it has failed to send an IDLE \
                 frame before exiting.\n",
            )
        } else {
            Some("err: The command failed to start. error details were logged for admin review.\n")
        }
    }
}

/// What a driver reports, tagged with its instance serial.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) serial: u64,
    pub(crate) event: DriverEvent,
}

#[derive(Debug)]
pub(crate) enum DriverEvent {
    /// A frame that passed the mode's filter (never `Drop` or `Swallow`).
    Item(Classified),
    Ended(Ended),
}

/// One module process and its channels.
pub(crate) struct Driver {
    pub(crate) serial: u64,
    pub(crate) process: Process,
    pub(crate) listener: Option<UnixListener>,
    pub(crate) socket: Option<SocketFile>,
    pub(crate) list_mode: bool,
    pub(crate) cfg: Arc<Config>,
    pub(crate) inputs: mpsc::Receiver<IpcFrame>,
    pub(crate) stop: CancellationToken,
    pub(crate) out: mpsc::Sender<Report>,
}

struct Conn {
    read: OwnedReadHalf,
    buf: BytesMut,
    codec: IpcCodec,
    writer: mpsc::Sender<IpcFrame>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Driver {
    /// Runs the process to its end and reports [`DriverEvent::Ended`].
    pub(crate) async fn run(mut self) {
        let span = info_span!("module", exe = %self.process.exe.display(), pid = self.process.pid);
        let ended = self.drive().instrument(span).await;
        let event = DriverEvent::Ended(ended);
        let _ = self
            .out
            .send(Report {
                serial: self.serial,
                event,
            })
            .await;
    }

    async fn drive(&mut self) -> Ended {
        let mut sup = Supervisor::new(Instant::now().into_std(), self.cfg.timers);
        let mut conn: Option<Conn> = None;
        let mut queue = VecDeque::new();
        let (mut reading, mut inputs_open, mut stop_seen, mut drops) = (true, true, false, 0u32);
        let status = loop {
            while let Some(action) = sup.poll_action() {
                self.apply(action, conn.as_ref());
            }
            let deadline = sup.poll_timeout().map(Instant::from_std);
            tokio::select! {
                status = self.process.child.wait() => break status.ok(),
                stream = accept(self.listener.as_ref()), if self.listener.is_some() => {
                    match stream {
                        Ok(stream) => {
                            conn = Some(self.connected(stream, &mut sup, &mut queue));
                        }
                        Err(e) => warn!("accepting the module's connection failed: {e}"),
                    }
                }
                n = read_some(conn.as_mut()), if reading && conn.is_some() => {
                    reading = matches!(n, Ok(n) if n > 0);
                    if let Err(e) = n {
                        warn!("reading from the module failed: {e}");
                    }
                    let c = conn.as_mut().expect("the read arm needs a connection");
                    if !self.decode_all(c, &mut sup, &mut drops).await {
                        reading = false;
                    }
                }
                frame = self.inputs.recv(), if inputs_open => match frame {
                    Some(frame) => self.input(frame, &mut sup, conn.as_ref(), &mut queue),
                    None => {
                        inputs_open = false;
                        sup.request_stop(Instant::now().into_std());
                    }
                },
                () = self.stop.cancelled(), if !stop_seen => {
                    stop_seen = true;
                    sup.request_stop(Instant::now().into_std());
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    sup.handle_timeout(Instant::now().into_std());
                }
            }
        };
        sup.handle_exit(Instant::now().into_std());
        self.process.kill_group();
        // Frames written just before the exit are still in the socket; after a framing error
        // `reading` is false and nothing more is trusted.
        if let (Some(c), true) = (conn.as_mut(), reading) {
            self.drain(c, &mut sup, &mut drops).await;
        }
        let connected = conn.is_some();
        drop(conn);
        self.listener = None;
        self.socket = None;
        let mut task_open = sup.task_open() || !queue.is_empty();
        while let Ok(frame) = self.inputs.try_recv() {
            task_open |= opens_task(frame.type_id);
        }
        let ended = Ended {
            cause: status.map_or(ExitCause::Crashed, |s| sup.exit_cause(s)),
            status,
            connected,
            task_open,
            pid: self.process.pid,
        };
        self.log_end(&ended);
        ended
    }

    fn connected(
        &mut self,
        stream: UnixStream,
        sup: &mut Supervisor,
        queue: &mut VecDeque<IpcFrame>,
    ) -> Conn {
        // Only one connection is accepted; the file is unlinked at once (PROTOCOL.md §5.2).
        self.listener = None;
        self.socket = None;
        let (read, write) = stream.into_split();
        let (writer, rx) = mpsc::channel(self.cfg.queue_len.max(1));
        let conn = Conn {
            read,
            buf: BytesMut::new(),
            codec: IpcCodec::with_max(self.cfg.max_payload),
            writer,
            task: tokio::spawn(write_frames(write, rx)),
        };
        sup.handle_connected(Instant::now().into_std());
        debug!("module connected");
        if self.list_mode {
            let mut payload = BytesMut::new();
            self.cfg.host_version.write(&mut payload);
            send(
                &conn,
                sup,
                IpcFrame::new(TypeId::HOST_VER, payload.freeze()),
            );
        }
        for frame in queue.drain(..) {
            send(&conn, sup, frame);
        }
        conn
    }

    fn input(
        &self,
        frame: IpcFrame,
        sup: &mut Supervisor,
        conn: Option<&Conn>,
        queue: &mut VecDeque<IpcFrame>,
    ) {
        let now = Instant::now().into_std();
        if frame.type_id == TypeId::KILL_CMD {
            // A client KILL_CMD is treated like a host stop: KILL_CMD plus the grace timer
            // (PROTOCOL.md §2.5 (b)).
            sup.request_stop(now);
            return;
        }
        match (sup.state(), conn) {
            (State::Starting, _) if queue.len() < self.cfg.queue_len => queue.push_back(frame),
            (State::Starting, _) => warn!("start queue full; {:?} dropped", frame.type_id),
            (State::Active | State::Stopping, Some(conn)) => send(conn, sup, frame),
            _ => debug!("{:?} for an ending module dropped", frame.type_id),
        }
    }

    fn apply(&self, action: Action, conn: Option<&Conn>) {
        match action {
            Action::SendKill => {
                debug!("sending KILL_CMD");
                if let Some(conn) = conn {
                    let _ = conn
                        .writer
                        .try_send(IpcFrame::new(TypeId::KILL_CMD, Bytes::new()));
                }
            }
            Action::ForceKill => {
                warn!("force-killing the module's process group");
                self.process.kill_group();
            }
        }
    }

    /// Decodes and delivers every complete frame in the buffer; false after a framing error.
    async fn decode_all(&self, conn: &mut Conn, sup: &mut Supervisor, drops: &mut u32) -> bool {
        loop {
            match conn.codec.decode(&mut conn.buf) {
                Ok(Some(frame)) => {
                    sup.handle_received(Instant::now().into_std(), frame.type_id);
                    self.deliver(frame, drops).await;
                }
                Ok(None) => return true,
                Err(e) => {
                    warn!("module broke the IPC framing: {e}");
                    sup.handle_protocol_error(Instant::now().into_std());
                    return false;
                }
            }
        }
    }

    async fn drain(&self, conn: &mut Conn, sup: &mut Supervisor, drops: &mut u32) {
        let until = Instant::now() + DRAIN;
        while let Ok(Ok(n)) = tokio::time::timeout_at(until, read_some(Some(conn))).await {
            if n == 0 || !self.decode_all(conn, sup, drops).await {
                break;
            }
        }
    }

    async fn deliver(&self, frame: IpcFrame, drops: &mut u32) {
        let classified = if self.list_mode {
            classify_list(&frame)
        } else {
            classify_run(frame)
        };
        match classified {
            Classified::Drop(why) => {
                *drops += 1;
                if *drops <= LOUD_DROPS {
                    warn!("module frame dropped: {why}");
                } else {
                    debug!("module frame dropped: {why}");
                }
            }
            Classified::Swallow => {}
            item => {
                if let Classified::ErrText(text) = &item {
                    warn!("module reports an error: {}", text.trim_end());
                }
                let event = DriverEvent::Item(item);
                let _ = self
                    .out
                    .send(Report {
                        serial: self.serial,
                        event,
                    })
                    .await;
            }
        }
    }

    fn log_end(&self, ended: &Ended) {
        let status = ended.status.map(|s| s.to_string()).unwrap_or_default();
        if ended.cause.is_failure() {
            warn!(cause = ?ended.cause, %status, task_open = ended.task_open, "module ended");
        } else {
            info!(cause = ?ended.cause, %status, "module ended");
        }
    }
}

/// True for a host frame that starts a task (not a control frame).
fn opens_task(type_id: TypeId) -> bool {
    !matches!(
        type_id,
        TypeId::KILL_CMD | TypeId::TERM_CMD | TypeId::HALT_CMD | TypeId::RESUME_CMD
    )
}

fn send(conn: &Conn, sup: &mut Supervisor, frame: IpcFrame) {
    let type_id = frame.type_id;
    match conn.writer.try_send(frame) {
        Ok(()) => sup.handle_sent(Instant::now().into_std(), type_id),
        Err(TrySendError::Full(_)) => warn!("module is not reading; {type_id:?} dropped"),
        Err(TrySendError::Closed(_)) => debug!("module pipe closed; {type_id:?} dropped"),
    }
}

async fn accept(listener: Option<&UnixListener>) -> io::Result<UnixStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn read_some(conn: Option<&mut Conn>) -> io::Result<usize> {
    match conn {
        Some(conn) => conn.read.read_buf(&mut conn.buf).await,
        None => std::future::pending().await,
    }
}

async fn write_frames(mut half: OwnedWriteHalf, mut rx: mpsc::Receiver<IpcFrame>) {
    let mut codec = IpcCodec::new();
    let mut buf = BytesMut::new();
    while let Some(frame) = rx.recv().await {
        buf.clear();
        if let Err(e) = codec.encode(frame, &mut buf) {
            warn!("frame for the module not sent: {e}");
            continue;
        }
        if half.write_all(&buf).await.is_err() {
            break;
        }
    }
}
