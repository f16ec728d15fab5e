//! The thin tokio task that runs one module process: it feeds socket, process, host and
//! timer events into a [`Supervisor`] and carries out its actions.
//!
//! Invariant: all lifecycle and timer decisions are the supervisor's; the driver reads the
//! (tokio, so pausable) clock, does the IO and reports. When it returns, the process is
//! reaped, its process group killed, its socket file removed and one [`Ended`] reported.

use std::{collections::VecDeque, io, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use mrci_proto::{IpcFrame, TypeId};
use tokio::{
    io::AsyncWriteExt,
    net::{UnixListener, UnixStream, unix::OwnedWriteHalf},
    sync::mpsc::{self, error::TrySendError},
    task::JoinHandle,
    time::{Instant, sleep_until},
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    budget::{Budget, Held},
    config::Config,
    ended::Ended,
    filter::{Classified, classify_list, classify_run},
    output::OUTPUT_DRAIN,
    process::{Process, SocketFile},
    reader::{FrameReader, ReadError},
    supervisor::{Action, ExitCause, State, Supervisor},
};

/// How long to keep reading frames a module wrote just before it exited.
const DRAIN: Duration = Duration::from_secs(2);

/// Dropped frames logged at `warn` per process; later ones go to `debug`.
const LOUD_DROPS: u32 = 8;

/// A frame for the module with its share of the session-to-module budget (none for frames
/// the host makes itself: HOST_VER, KILL_CMD).
pub(crate) type Input = (IpcFrame, Option<Held>);

/// What a driver reports, tagged with its instance serial.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) serial: u64,
    pub(crate) event: DriverEvent,
    /// The item's share of the module-to-session budget.
    pub(crate) held: Option<Held>,
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
    pub(crate) inputs: mpsc::Receiver<Input>,
    pub(crate) stop: CancellationToken,
    pub(crate) out: mpsc::Sender<Report>,
    /// The module-to-session budget frames are read within.
    pub(crate) budget: Budget,
}

struct Conn {
    reader: FrameReader,
    writer: mpsc::Sender<Input>,
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
                held: None,
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
                // Waits for the budget before reading a payload: a full budget pauses the
                // socket, and a module held there long enough meets the idle timer.
                read = next_frame(conn.as_mut()), if reading && conn.is_some() => {
                    reading = self.received(read, &mut sup, &mut drops).await;
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
        while let Ok((frame, _)) = self.inputs.try_recv() {
            task_open |= opens_task(frame.type_id);
        }
        let ended = Ended {
            cause: status.map_or(ExitCause::Crashed, |s| sup.exit_cause(s)),
            status,
            connected,
            task_open,
            pid: self.process.pid,
            confined: self.process.confined,
            output: self.process.output_stats(OUTPUT_DRAIN).await,
        };
        self.log_end(&ended);
        ended
    }

    fn connected(
        &mut self,
        stream: UnixStream,
        sup: &mut Supervisor,
        queue: &mut VecDeque<Input>,
    ) -> Conn {
        // Only one connection is accepted; the file is unlinked at once (PROTOCOL.md §5.2).
        self.listener = None;
        self.socket = None;
        let (read, write) = stream.into_split();
        let (writer, rx) = mpsc::channel(self.cfg.queue_len.max(1));
        let conn = Conn {
            reader: FrameReader::new(read, self.cfg.max_payload, self.budget.clone()),
            writer,
            task: tokio::spawn(write_frames(write, rx)),
        };
        sup.handle_connected(Instant::now().into_std());
        debug!("module connected");
        if self.list_mode {
            let mut payload = BytesMut::new();
            self.cfg.host_version.write(&mut payload);
            let host_ver = IpcFrame::new(TypeId::HOST_VER, payload.freeze());
            send(&conn, sup, (host_ver, None));
        }
        for input in queue.drain(..) {
            send(&conn, sup, input);
        }
        conn
    }

    fn input(
        &self,
        input: Input,
        sup: &mut Supervisor,
        conn: Option<&Conn>,
        queue: &mut VecDeque<Input>,
    ) {
        let now = Instant::now().into_std();
        let frame = &input.0;
        if frame.type_id == TypeId::KILL_CMD {
            // A client KILL_CMD is treated like a host stop: KILL_CMD plus the grace timer
            // (PROTOCOL.md §2.5 (b)).
            sup.request_stop(now);
            return;
        }
        match (sup.state(), conn) {
            (State::Starting, _) if queue.len() < self.cfg.queue_len => queue.push_back(input),
            (State::Starting, _) => warn!("start queue full; {:?} dropped", frame.type_id),
            (State::Active | State::Stopping, Some(conn)) => send(conn, sup, input),
            _ => debug!("{:?} for an ending module dropped", frame.type_id),
        }
    }

    fn apply(&self, action: Action, conn: Option<&Conn>) {
        match action {
            Action::SendKill => {
                debug!("sending KILL_CMD");
                if let Some(conn) = conn {
                    let kill = IpcFrame::new(TypeId::KILL_CMD, Bytes::new());
                    let _ = conn.writer.try_send((kill, None));
                }
            }
            Action::ForceKill => {
                warn!("force-killing the module's process group");
                self.process.kill_group();
            }
        }
    }

    /// Handles what the reader returned; false when reading must stop (end of stream, an
    /// error, or a framing error, which also ends the process).
    async fn received(
        &self,
        read: Result<Option<(IpcFrame, Held)>, ReadError>,
        sup: &mut Supervisor,
        drops: &mut u32,
    ) -> bool {
        match read {
            Ok(Some((frame, held))) => {
                sup.handle_received(Instant::now().into_std(), frame.type_id);
                self.deliver(frame, held, drops).await;
                true
            }
            Ok(None) => false,
            Err(ReadError::Io(e)) => {
                warn!("reading from the module failed: {e}");
                false
            }
            Err(ReadError::TooLarge { len, max }) => {
                warn!(
                    "module broke the IPC framing: a {len}-byte frame, over the {max}-byte limit"
                );
                sup.handle_protocol_error(Instant::now().into_std());
                false
            }
        }
    }

    async fn drain(&self, conn: &mut Conn, sup: &mut Supervisor, drops: &mut u32) {
        let until = Instant::now() + DRAIN;
        while let Ok(read) = tokio::time::timeout_at(until, next_frame(Some(conn))).await {
            if !self.received(read, sup, drops).await {
                break;
            }
        }
    }

    async fn deliver(&self, frame: IpcFrame, held: Held, drops: &mut u32) {
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
                        held: Some(held),
                    })
                    .await;
            }
        }
    }

    fn log_end(&self, ended: &Ended) {
        if ended.cause.is_failure() {
            warn!(cause = ?ended.cause, task_open = ended.task_open, "module {ended}");
        } else {
            info!(cause = ?ended.cause, "module {ended}");
        }
        let out = &ended.output;
        if out.dropped > 0 || out.truncated > 0 {
            info!(
                logged = out.logged,
                dropped = out.dropped,
                truncated = out.truncated,
                truncated_bytes = out.truncated_bytes,
                "module output was limited"
            );
        }
    }
}

/// True for a host frame that starts a task (not a control frame).
fn opens_task(type_id: TypeId) -> bool {
    !type_id.is_control()
}

fn send(conn: &Conn, sup: &mut Supervisor, input: Input) {
    let type_id = input.0.type_id;
    match conn.writer.try_send(input) {
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

async fn next_frame(conn: Option<&mut Conn>) -> Result<Option<(IpcFrame, Held)>, ReadError> {
    match conn {
        Some(conn) => conn.reader.next().await,
        None => std::future::pending().await,
    }
}

/// Writes frames to the module; each frame's share of the budget is given back once written.
async fn write_frames(mut half: OwnedWriteHalf, mut rx: mpsc::Receiver<Input>) {
    let mut buf = BytesMut::new();
    while let Some((frame, held)) = rx.recv().await {
        buf.clear();
        if let Err(e) = frame.encode(&mut buf) {
            warn!("frame for the module not sent: {e}");
            continue;
        }
        drop(frame);
        if half.write_all(&buf).await.is_err() {
            break;
        }
        drop(held);
    }
}
