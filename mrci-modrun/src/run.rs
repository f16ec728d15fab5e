//! Run mode (PROTOCOL.md §5.5): one module process per (command id, branch id) pair, started
//! on first use, reused after IDLE, and never started by a control frame.
//!
//! Invariant: a [`Runner`] holds at most one live process per [`InstanceKey`]; every process
//! it starts reports exactly one [`Event::Ended`] through [`Runner::next_event`]. The frames
//! between the session and its processes hold at most [`Config::queue_bytes`] per direction
//! (`crate::budget`): client frames from [`Runner::route`] until written to the module, and
//! module frames from the moment their header is read until the session asks for the event
//! after theirs.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use mrci_proto::{BranchId, CmdId, IpcFrame, TypeId};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{
    args::{Mode, ModuleArgs},
    budget::{Budget, Held},
    config::{Config, Context},
    driver::{Driver, DriverEvent, Input, Report},
    ended::Ended,
    error::Result,
    filter::{Classified, ModuleRequest},
    process::{self, Process},
};

/// Reports from all instances of one runner, buffered (their bytes are bounded separately,
/// by the budget).
const EVENTS: usize = 256;

/// Which command instance a process serves: the client's (command id, branch id) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// The command id the host assigned.
    pub cmd_id: CmdId,
    /// The client's branch id.
    pub branch_id: BranchId,
}

/// The module command behind a command id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The module executable.
    pub exe: PathBuf,
    /// The command's real name as the module listed it (not the unique name).
    pub name: String,
}

/// Something a run-mode instance did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A frame for the client on the instance's pair (TEXT, ERR, IDLE, …; already filtered).
    Output(IpcFrame),
    /// A validated async request for the session.
    Request(ModuleRequest),
    /// The process is gone; a later frame for the pair starts a new one. If
    /// [`Ended::client_error`] is `Some`, send that ERR and an IDLE on the pair; if
    /// [`crate::ExitCause::is_failure`], consider ASYNC_EXE_CRASH. If the process died
    /// while this event was queued, a frame routed meanwhile has already started a new
    /// process for the pair; this event is still about the old one.
    Ended(Ended),
}

/// A GEN_FILE frame on its way to a module that has no room for it yet; see
/// [`Runner::route_paced`].
pub type Paced = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What [`Runner::route`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Passed to the running (or starting) process of the pair.
    Sent,
    /// A process was started for the pair and the frame queued for it.
    Started,
    /// A control frame (KILL_CMD, TERM_CMD, HALT_CMD, RESUME_CMD) for a pair without a
    /// process: nothing was started. For KILL_CMD and TERM_CMD answer an empty IDLE on the
    /// pair; drop HALT_CMD and RESUME_CMD (PROTOCOL.md §2.5 (a)).
    NoInstance,
    /// The pair's queue or the session's byte budget for module input is full (the module
    /// is not keeping up); the frame was dropped.
    Busy,
    /// The runner already has [`Config::max_instances`] processes; nothing was started.
    /// Answer ERR and IDLE on the pair.
    TooMany,
}

struct Slot {
    serial: u64,
    inputs: mpsc::Sender<Input>,
    stop: CancellationToken,
}

/// The run-mode processes of one session. Must be used inside a tokio runtime (it spawns a
/// driver task per process).
///
/// Use: [`Runner::route`] every client frame for a module command; poll
/// [`Runner::next_event`] in the session's `select!` (it is cancel-safe); call
/// [`Runner::stop`] when a command is unloaded and [`Runner::shutdown`] when the session
/// ends. Dropping a runner asks every process to stop (KILL_CMD, then a forced kill after
/// the grace time) without waiting.
///
/// Backpressure: the bytes of an event returned by [`Runner::next_event`] count against the
/// budget until the next call, so a session that writes each event out before asking for the
/// next one paces its modules by its client: while the budget is full the modules' sockets
/// are not read and a module writing into its socket blocks.
pub struct Runner {
    cfg: Arc<Config>,
    ctx: Context,
    slots: HashMap<InstanceKey, Slot>,
    keys: HashMap<u64, InstanceKey>,
    next_serial: u64,
    tx: mpsc::Sender<Report>,
    rx: mpsc::Receiver<Report>,
    to_modules: Budget,
    from_modules: Budget,
    /// The share of the event last returned by `next_event`.
    held: Option<Held>,
}

impl Runner {
    /// A runner with no processes.
    pub fn new(cfg: Arc<Config>, ctx: Context) -> Self {
        let (tx, rx) = mpsc::channel(EVENTS);
        Self {
            to_modules: Budget::new(cfg.queue_bytes),
            from_modules: Budget::new(cfg.queue_bytes),
            cfg,
            ctx,
            slots: HashMap::new(),
            keys: HashMap::new(),
            next_serial: 0,
            tx,
            rx,
            held: None,
        }
    }

    /// The session facts new processes are started with; change `cwd` on ASYNC_SET_DIR.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }

    /// Sends a client frame (type and payload) to the pair's process, starting one with
    /// `-run_cmd <target.name>` if there is none and the frame is not a control frame.
    ///
    /// # Errors
    /// If the socket cannot be created or the executable cannot be started; answer the
    /// client with [`crate::FAILED_TO_START`] and IDLE.
    pub fn route(&mut self, key: InstanceKey, target: &Target, frame: IpcFrame) -> Result<Routed> {
        if let (TypeId::KILL_CMD, Some(slot)) = (frame.type_id, self.slots.get(&key)) {
            // Never lost to a full queue: the driver turns it into KILL_CMD plus the grace
            // timer either way.
            slot.stop.cancel();
            return Ok(Routed::Sent);
        }
        let frame = match self.slots.get(&key) {
            Some(slot) => {
                let Some(held) = self.to_modules.try_acquire(frame.payload.len()) else {
                    return Ok(Routed::Busy);
                };
                match slot.inputs.try_send((frame, Some(held))) {
                    Ok(()) => return Ok(Routed::Sent),
                    Err(TrySendError::Full(_)) => return Ok(Routed::Busy),
                    Err(TrySendError::Closed((frame, _))) => {
                        self.slots.remove(&key);
                        frame
                    }
                }
            }
            None => frame,
        };
        if frame.type_id.is_control() {
            return Ok(Routed::NoInstance);
        }
        if self.slots.len() >= self.cfg.max_instances {
            return Ok(Routed::TooMany);
        }
        let Some(held) = self.to_modules.try_acquire(frame.payload.len()) else {
            return Ok(Routed::Busy);
        };
        let slot = self.start(key, target)?;
        slot.inputs
            .try_send((frame, Some(held)))
            .expect("a new instance's queue has room for its first frame");
        self.slots.insert(key, slot);
        Ok(Routed::Started)
    }

    /// Passes a GEN_FILE data frame to the pair's running process like [`Runner::route`],
    /// but where `route` would answer [`Routed::Busy`] it returns a future that delivers
    /// the frame once the pair's queue and the budget have room. A session awaits it before
    /// it reads from its client again, so an upload to a module is paced by the module
    /// instead of losing chunks (the frame is dropped only if the process ends meanwhile).
    /// `Ok(None)`: delivered now.
    ///
    /// # Errors
    /// The frame back when the pair has no running process; [`Runner::route`] it.
    pub fn route_paced(
        &mut self,
        key: InstanceKey,
        frame: IpcFrame,
    ) -> std::result::Result<Option<Paced>, IpcFrame> {
        let Some(slot) = self.slots.get(&key).filter(|s| !s.inputs.is_closed()) else {
            return Err(frame);
        };
        let frame = match self.to_modules.try_acquire(frame.payload.len()) {
            Some(held) => match slot.inputs.try_send((frame, Some(held))) {
                Ok(()) => return Ok(None),
                Err(TrySendError::Full((frame, _)) | TrySendError::Closed((frame, _))) => frame,
            },
            None => frame,
        };
        let (budget, inputs) = (self.to_modules.clone(), slot.inputs.clone());
        Ok(Some(Box::pin(async move {
            let held = budget.acquire(frame.payload.len()).await;
            // A closed queue means the process ended; the frame has no one to go to.
            let _ = inputs.send((frame, Some(held))).await;
        })))
    }

    /// Asks the pair's process to stop (KILL_CMD, forced kill after the grace time). Its
    /// [`Event::Ended`] follows.
    pub fn stop(&mut self, key: InstanceKey) {
        if let Some(slot) = self.slots.get(&key) {
            slot.stop.cancel();
        }
    }

    /// Stops every process of a command id (all branches), e.g. when it is unloaded.
    pub fn stop_command(&mut self, cmd_id: CmdId) {
        for (key, slot) in &self.slots {
            if key.cmd_id == cmd_id {
                slot.stop.cancel();
            }
        }
    }

    /// True if the pair has a live (starting, running or stopping) process.
    pub fn is_running(&self, key: InstanceKey) -> bool {
        self.slots.contains_key(&key)
    }

    /// The number of live processes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no process is live.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes of module frames held between the modules and the session: read or being read
    /// from sockets, queued, or the last event returned. At most [`Config::queue_bytes`],
    /// or one frame larger than that.
    pub fn held_bytes(&self) -> usize {
        self.from_modules.held()
    }

    /// Bytes of client frames accepted by [`Runner::route`] and not yet written to a module.
    pub fn queued_input_bytes(&self) -> usize {
        self.to_modules.held()
    }

    /// The next event of any instance. Cancel-safe; pending forever while nothing runs. The
    /// previous event's bytes are given back to the budget when this is called.
    pub async fn next_event(&mut self) -> (InstanceKey, Event) {
        self.held = None;
        loop {
            let report = self.rx.recv().await.expect("the runner holds a sender");
            let Some(&key) = self.keys.get(&report.serial) else {
                continue;
            };
            let event = match report.event {
                DriverEvent::Item(Classified::Output(frame)) => Event::Output(frame),
                DriverEvent::Item(Classified::Request(req)) => Event::Request(req),
                DriverEvent::Item(other) => {
                    debug!("unexpected run-mode item {other:?}");
                    continue;
                }
                DriverEvent::Ended(ended) => {
                    self.keys.remove(&report.serial);
                    if self
                        .slots
                        .get(&key)
                        .is_some_and(|s| s.serial == report.serial)
                    {
                        self.slots.remove(&key);
                    }
                    Event::Ended(ended)
                }
            };
            self.held = report.held;
            return (key, event);
        }
    }

    /// Stops every process and collects events until all have ended. Wrap it in a timeout
    /// of more than the grace time if the caller must not wait on a stuck reaper.
    pub async fn shutdown(mut self) -> Vec<(InstanceKey, Event)> {
        for slot in self.slots.values() {
            slot.stop.cancel();
        }
        let mut events = Vec::new();
        while !self.keys.is_empty() {
            events.push(self.next_event().await);
        }
        events
    }

    fn start(&mut self, key: InstanceKey, target: &Target) -> Result<Slot> {
        let tag = format!("{}-cmd-{}-{}", self.ctx.tag, key.cmd_id.0, key.branch_id.0);
        let (listener, socket) = process::bind(&self.cfg, &tag)?;
        let args = ModuleArgs {
            mode: Mode::Run(target.name.clone()),
            pipe: socket.path().to_path_buf(),
            mem_ses: self.ctx.mem_ses.clone(),
            mem_host: self.ctx.mem_host.clone(),
        };
        let process = Process::spawn(&self.cfg, &target.exe, &args, self.ctx.cwd.as_deref())?;
        let serial = self.next_serial;
        self.next_serial += 1;
        let (inputs, rx) = mpsc::channel(self.cfg.queue_len.max(1));
        let stop = CancellationToken::new();
        let driver = Driver {
            serial,
            process,
            listener: Some(listener),
            socket: Some(socket),
            list_mode: false,
            cfg: Arc::clone(&self.cfg),
            inputs: rx,
            stop: stop.clone(),
            out: self.tx.clone(),
            budget: self.from_modules.clone(),
        };
        tokio::spawn(driver.run());
        self.keys.insert(serial, key);
        Ok(Slot {
            serial,
            inputs,
            stop,
        })
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for slot in self.slots.values() {
            slot.stop.cancel();
        }
    }
}
