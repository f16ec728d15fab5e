//! The pure lifecycle and timer state machine of one module process (PROTOCOL.md §5.7, seed
//! 001): connect deadline, 2-minute idle timer, KILL_CMD, 3-second grace, forced kill.
//!
//! Invariant: nothing here does IO or reads a clock; every input carries `now`. The tokio
//! driver (`crate::driver`) feeds events in and carries out the [`Action`]s that come out.
//!
//! Call order, in the manner of quinn's `Connection`:
//! 1. inputs: [`Supervisor::handle_connected`], [`Supervisor::handle_sent`],
//!    [`Supervisor::handle_received`], [`Supervisor::request_stop`],
//!    [`Supervisor::handle_protocol_error`], [`Supervisor::handle_timeout`],
//!    [`Supervisor::handle_exit`];
//! 2. after every input, drain [`Supervisor::poll_action`];
//! 3. sleep until [`Supervisor::poll_timeout`] and call `handle_timeout` when it passes.

use std::{
    collections::VecDeque,
    os::unix::process::ExitStatusExt,
    process::ExitStatus,
    time::{Duration, Instant},
};

use mrci_proto::TypeId;
use nix::sys::signal::Signal;

/// The three durations of a module's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// How long a started process has to connect to its socket (PROTOCOL.md §5.7: 5 s).
    pub connect: Duration,
    /// Silence on the pipe, in either direction, before KILL_CMD is sent (seed 001: 2 min).
    pub idle: Duration,
    /// Time between KILL_CMD and the forced kill (seed 001: 3 s).
    pub grace: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(120),
            grace: Duration::from_secs(3),
        }
    }
}

/// Where a module process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Started, not yet connected; host frames are queued.
    Starting,
    /// Connected; the idle timer runs.
    Active,
    /// KILL_CMD was sent; the grace timer runs.
    Stopping,
    /// SIGKILL was sent to the process group; waiting for the exit.
    Killed,
    /// The process has exited and was reaped.
    Dead,
}

/// Something the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an empty KILL_CMD frame to the module.
    SendKill,
    /// Send SIGKILL to the module's process group.
    ForceKill,
}

/// Why a module process ended, as far as the supervisor knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited by itself with a success status.
    Finished,
    /// It exited by itself with a failure status or was killed by a signal we did not send.
    Crashed,
    /// It was silent for the idle time, got KILL_CMD and exited within the grace time.
    IdleStopped,
    /// It was asked to stop (host stop or client KILL_CMD) and exited within the grace time.
    Stopped,
    /// It did not exit within the grace time after KILL_CMD and was force-killed.
    ForceKilled,
    /// It never connected to its socket and was force-killed.
    NeverConnected,
    /// It broke the IPC framing (oversize or malformed frame) and was force-killed.
    Protocol,
    /// It could not be started at all.
    SpawnFailed,
    /// It used up its CPU-time limit and the kernel ended it with SIGXCPU
    /// ([`crate::confine::Limits::cpu_secs`]).
    CpuLimit,
}

impl ExitCause {
    /// True when the host should report the failure (ASYNC_EXE_CRASH, PROTOCOL.md §2.5 (c)):
    /// everything except a clean finish or a stop the host asked for and got.
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::Finished | Self::IdleStopped | Self::Stopped)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Idle,
    Requested,
    NeverConnected,
    Protocol,
}

/// The lifecycle of one module process; see the module docs for the call order.
#[derive(Debug)]
pub struct Supervisor {
    timers: Timers,
    state: State,
    connect_at: Option<Instant>,
    idle_at: Option<Instant>,
    kill_at: Option<Instant>,
    stop: Option<Stop>,
    forced: bool,
    task_open: bool,
    actions: VecDeque<Action>,
}

impl Supervisor {
    /// A supervisor for a process started at `now`.
    pub fn new(now: Instant, timers: Timers) -> Self {
        Self {
            timers,
            state: State::Starting,
            connect_at: Some(now + timers.connect),
            idle_at: None,
            kill_at: None,
            stop: None,
            forced: false,
            task_open: false,
            actions: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True between a host frame that starts a task and the module's IDLE.
    pub fn task_open(&self) -> bool {
        self.task_open
    }

    /// The module connected to its socket.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state == State::Starting {
            self.state = State::Active;
            self.connect_at = None;
            self.idle_at = Some(now + self.timers.idle);
        }
    }

    /// A frame of type `type_id` was written to the module. Anything but a control frame or
    /// HOST_VER starts a task.
    pub fn handle_sent(&mut self, now: Instant, type_id: TypeId) {
        self.touch(now);
        if !matches!(
            type_id,
            TypeId::KILL_CMD
                | TypeId::TERM_CMD
                | TypeId::HALT_CMD
                | TypeId::RESUME_CMD
                | TypeId::HOST_VER
        ) {
            self.task_open = true;
        }
    }

    /// A frame of type `type_id` was read from the module; IDLE closes the open task.
    pub fn handle_received(&mut self, now: Instant, type_id: TypeId) {
        self.touch(now);
        if type_id == TypeId::IDLE {
            self.task_open = false;
        }
    }

    /// The host wants the process gone (session end, unload, or a client KILL_CMD):
    /// KILL_CMD and the grace timer if connected, an immediate forced kill if not.
    pub fn request_stop(&mut self, now: Instant) {
        match self.state {
            State::Starting => {
                self.stop = Some(Stop::Requested);
                self.force();
            }
            State::Active => {
                self.stop = Some(Stop::Requested);
                self.begin_stop(now);
            }
            State::Stopping | State::Killed | State::Dead => {}
        }
    }

    /// The module sent bytes that are not a valid IPC frame (or too large a frame).
    pub fn handle_protocol_error(&mut self, _now: Instant) {
        if matches!(
            self.state,
            State::Starting | State::Active | State::Stopping
        ) {
            self.stop = Some(Stop::Protocol);
            self.force();
        }
    }

    /// Advances the timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        match self.state {
            State::Starting if due(self.connect_at) => {
                self.stop = Some(Stop::NeverConnected);
                self.force();
            }
            State::Active if due(self.idle_at) => {
                self.stop = Some(Stop::Idle);
                self.begin_stop(now);
            }
            State::Stopping if due(self.kill_at) => {
                self.forced = true;
                self.force();
            }
            _ => {}
        }
    }

    /// The process exited and was reaped.
    pub fn handle_exit(&mut self, _now: Instant) {
        self.state = State::Dead;
        self.clear_timers();
    }

    /// Why the process ended, given its exit status.
    pub fn exit_cause(&self, status: ExitStatus) -> ExitCause {
        match self.stop {
            None if status.success() => ExitCause::Finished,
            None if status.signal() == Some(Signal::SIGXCPU as i32) => ExitCause::CpuLimit,
            None => ExitCause::Crashed,
            Some(Stop::NeverConnected) => ExitCause::NeverConnected,
            Some(Stop::Protocol) => ExitCause::Protocol,
            Some(_) if self.forced => ExitCause::ForceKilled,
            Some(Stop::Idle) => ExitCause::IdleStopped,
            Some(Stop::Requested) => ExitCause::Stopped,
        }
    }

    /// The next instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.connect_at, self.idle_at, self.kill_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn touch(&mut self, now: Instant) {
        if self.state == State::Active {
            self.idle_at = Some(now + self.timers.idle);
        }
    }

    fn begin_stop(&mut self, now: Instant) {
        self.state = State::Stopping;
        self.clear_timers();
        self.kill_at = Some(now + self.timers.grace);
        self.actions.push_back(Action::SendKill);
    }

    fn force(&mut self) {
        self.state = State::Killed;
        self.clear_timers();
        self.actions.push_back(Action::ForceKill);
    }

    fn clear_timers(&mut self) {
        self.connect_at = None;
        self.idle_at = None;
        self.kill_at = None;
    }
}

#[cfg(test)]
mod tests;
