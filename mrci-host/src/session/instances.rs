//! The session's one instance table: every running (command id, branch id) pair, internal
//! task or module process, keyed by [`InstanceKey`], with one policy for control frames and
//! for input that arrives too fast (PROTOCOL.md §2.3, §2.5).
//!
//! Control policy: TERM_CMD and KILL_CMD reach the pair's instance if it has one (an internal
//! task aborts its invocation, a module process gets the frame); with no instance at all the
//! session answers IDLE at once, so a client always learns that nothing runs. HALT_CMD and
//! RESUME_CMD reach an instance that has one and are dropped otherwise. No control frame
//! ever starts an instance. Input a task or process cannot take this fast is refused with
//! [`TOO_FAST`], with no IDLE: the instance is still running.
//!
//! An internal task that is told to end (KILL_CMD, or its command unloaded) leaves the table
//! at once and is counted as dying until its `Ended` arrives: its IDLE still reaches the
//! client, but a frame for the same pair starts a new instance instead of going to the dying
//! one (command ids are reused, so the next frame on that pair may well be another command).
//!
//! Invariant: while draining (the session is ending) no instance is started; a session ends
//! when draining and no internal invocation is running.

use std::{collections::HashMap, sync::Arc};

use mrci_modrun::{Event as ModEvent, InstanceKey, Routed, Runner, Target};
use mrci_proto::{Frame, IpcFrame, TypeId};
use tokio::sync::{mpsc, watch};

use crate::{
    cmd::{
        Outbox, RunFn, SessionMsg,
        instance::{self, Control, InstanceHandle},
    },
    host::HostCtx,
    modules::ModCmd,
};

use super::SessionView;

/// The refusal for input an instance cannot take this fast.
pub(crate) const TOO_FAST: &str =
    "The command is not accepting input this fast; the frame was dropped.";

struct Task {
    handle: InstanceHandle,
    busy: bool,
}

/// What became of a frame sent to an instance.
pub(crate) enum Fed {
    /// Delivered (or queued for a process that is starting).
    Delivered,
    /// A GEN_FILE frame for a task (always) or for a running module process that has no
    /// room yet: the future delivers it (for a task: and waits until the task is done with
    /// it), and the session reads nothing more from its client until it is done
    /// (backpressure for uploads, instead of [`Fed::TooFast`]).
    Parked(futures::future::BoxFuture<'static, ()>),
    /// Refused because the instance is not keeping up ([`TOO_FAST`]).
    TooFast,
    /// The session is ending and starts nothing.
    Draining,
    /// A module process could not be started, or too many run: ERR (this text) and IDLE.
    Failed(&'static str),
}

/// The next thing an instance has for the session.
pub(crate) enum Next {
    /// Output or a request from an internal task.
    Task(SessionMsg),
    /// Output, a request or the end of a module process.
    Module(InstanceKey, ModEvent),
}

/// Every instance of one session.
pub(crate) struct Instances {
    tasks: HashMap<InstanceKey, Task>,
    /// Tasks told to end whose `Ended` has not arrived yet, per pair.
    dying: HashMap<InstanceKey, usize>,
    modules: Option<Runner>,
    /// Module command invocations under way: the command's name and when its first frame
    /// was routed, for the command metrics (recorded at its IDLE or its process's end).
    invocations: HashMap<InstanceKey, (Arc<str>, std::time::Instant)>,
    outbox: Outbox,
    output: mpsc::Receiver<SessionMsg>,
    draining: bool,
}

impl Instances {
    /// An empty table whose internal tasks share `output_budget` bytes of unwritten output.
    pub(crate) fn new(output_budget: usize) -> Self {
        let (outbox, output) = Outbox::new(output_budget);
        Self {
            tasks: HashMap::new(),
            dying: HashMap::new(),
            modules: None,
            invocations: HashMap::new(),
            outbox,
            output,
            draining: false,
        }
    }

    /// A module command's invocation on `key` ended (its IDLE, or its process ended): counts
    /// it and its time in the command metrics, as internal commands are.
    pub(crate) fn module_invocation_ended(&mut self, key: InstanceKey) {
        if let Some((name, start)) = self.invocations.remove(&key) {
            crate::metrics::command(&name, start.elapsed());
        }
    }

    /// Feeds a client frame to the pair's internal task, starting it on first use.
    pub(crate) fn feed_task(
        &mut self,
        key: InstanceKey,
        (name, run): (&str, RunFn),
        host: &Arc<HostCtx>,
        view: watch::Receiver<Arc<SessionView>>,
        frame: Frame,
    ) -> Fed {
        if !self.tasks.contains_key(&key) {
            if self.draining {
                return Fed::Draining;
            }
            let handle = instance::spawn(
                name.to_owned(),
                run,
                Arc::clone(host),
                (key.cmd_id, key.branch_id),
                self.outbox.clone(),
                view,
            );
            let task = Task {
                handle,
                busy: false,
            };
            self.tasks.insert(key, task);
        }
        let Some(task) = self.tasks.get_mut(&key) else {
            return Fed::TooFast;
        };
        task.busy = true;
        if frame.type_id == TypeId::GEN_FILE {
            return Fed::Parked(task.handle.feed_file(frame));
        }
        if task.handle.feed(frame) {
            Fed::Delivered
        } else {
            Fed::TooFast
        }
    }

    /// Sends a client frame to the pair's module process, starting one on first use.
    pub(crate) fn feed_module(
        &mut self,
        key: InstanceKey,
        cmd: &ModCmd,
        runner: impl FnOnce() -> Runner,
        frame: Frame,
    ) -> Fed {
        let running = self.modules.as_ref().is_some_and(|r| r.is_running(key));
        if self.draining && !running {
            return Fed::Draining;
        }
        let target = Target {
            exe: cmd.module.clone(),
            name: cmd.new_cmd.name.clone(),
        };
        let ipc = IpcFrame::new(frame.type_id, frame.payload);
        let runner = self.modules.get_or_insert_with(runner);
        // File data for a running process waits for room, like a task's (see `Fed::Parked`).
        let ipc = if ipc.type_id == TypeId::GEN_FILE {
            match runner.route_paced(key, ipc) {
                Ok(None) => return Fed::Delivered,
                Ok(Some(paced)) => return Fed::Parked(paced),
                Err(ipc) => ipc,
            }
        } else {
            ipc
        };
        let routed = runner.route(key, &target, ipc);
        if matches!(routed, Ok(Routed::Started | Routed::Sent)) {
            self.invocations.entry(key).or_insert_with(|| {
                (
                    Arc::from(cmd.new_cmd.name.as_str()),
                    std::time::Instant::now(),
                )
            });
        }
        match routed {
            Ok(Routed::Started) => {
                crate::metrics::module(true);
                Fed::Delivered
            }
            Ok(Routed::Sent | Routed::NoInstance) => Fed::Delivered,
            Ok(Routed::Busy) => Fed::TooFast,
            Ok(Routed::TooMany) => {
                Fed::Failed("Too many module commands are running in this session.")
            }
            Err(e) => {
                tracing::error!(module = %cmd.module.display(), command = %cmd.new_cmd.name, error = %e, "module command failed to start");
                Fed::Failed(
                    "The command failed to start. error details were logged for admin review.",
                )
            }
        }
    }

    /// Delivers a control frame to the pair's instance; false if it has none.
    pub(crate) fn control(&mut self, key: InstanceKey, type_id: TypeId) -> bool {
        if type_id == TypeId::KILL_CMD
            && let Some(task) = self.tasks.remove(&key)
        {
            task.handle.control(Control::Kill);
            *self.dying.entry(key).or_default() += 1;
            return true;
        }
        if let Some(task) = self.tasks.get(&key) {
            match type_id {
                TypeId::TERM_CMD => task.handle.control(Control::Term),
                TypeId::HALT_CMD => task.handle.set_halted(true),
                TypeId::RESUME_CMD => task.handle.set_halted(false),
                _ => return false,
            }
            return true;
        }
        let Some(runner) = self.modules.as_mut().filter(|r| r.is_running(key)) else {
            return false;
        };
        // The target only matters for starting a process, which a control frame never does.
        let target = Target {
            exe: Default::default(),
            name: String::new(),
        };
        let routed = runner.route(key, &target, IpcFrame::new(type_id, bytes::Bytes::new()));
        matches!(routed, Ok(Routed::Sent))
    }

    /// The next output of any instance; pending forever while there is none.
    pub(crate) async fn next(&mut self) -> Next {
        let modules = async {
            match &mut self.modules {
                Some(runner) => runner.next_event().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(msg) = self.output.recv() => Next::Task(msg),
            (key, event) = modules => Next::Module(key, event),
        }
    }

    /// True when more internal output is already waiting.
    pub(crate) fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// An internal invocation finished: the pair is idle (and no longer halted).
    pub(crate) fn on_idle(&mut self, key: InstanceKey) {
        if let Some(task) = self.tasks.get_mut(&key) {
            task.busy = false;
            task.handle.set_halted(false);
        }
    }

    /// An internal task ended: a dying one, or (if none is dying on that pair) the live one.
    pub(crate) fn on_ended(&mut self, key: InstanceKey) {
        match self.dying.get_mut(&key) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.dying.remove(&key);
            }
            None => {
                self.tasks.remove(&key);
            }
        }
    }

    /// Ends every instance of an unloaded command id.
    pub(crate) fn stop_command(&mut self, cmd_id: mrci_proto::CmdId) {
        let keys: Vec<InstanceKey> = self
            .tasks
            .keys()
            .filter(|k| k.cmd_id == cmd_id)
            .copied()
            .collect();
        for key in keys {
            if let Some(task) = self.tasks.remove(&key) {
                task.handle.kill();
                *self.dying.entry(key).or_default() += 1;
            }
        }
        if let Some(runner) = &mut self.modules {
            runner.stop_command(cmd_id);
        }
    }

    /// Starts nothing new from now on (the session is ending).
    pub(crate) fn drain(&mut self) {
        self.draining = true;
    }

    /// True once [`Instances::drain`] was called.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining
    }

    /// True while an internal invocation runs.
    pub(crate) fn any_busy(&self) -> bool {
        self.tasks.values().any(|t| t.busy)
    }

    /// The module runner, if a module process was ever started.
    pub(crate) fn runner_mut(&mut self) -> Option<&mut Runner> {
        self.modules.as_mut()
    }

    /// Ends every instance: internal tasks report their IDLE (if they were running) and end;
    /// module processes get KILL_CMD and a forced kill after `grace`. Returns the IDLE
    /// frames still owed to the client, waiting at most `wait` for them.
    pub(crate) async fn shutdown(
        &mut self,
        grace: std::time::Duration,
        wait: std::time::Duration,
    ) -> Vec<Frame> {
        for task in self.tasks.values() {
            task.handle.kill();
        }
        if let Some(runner) = self.modules.take() {
            let _ = tokio::time::timeout(grace * 2, runner.shutdown()).await;
        }
        let mut idles = Vec::new();
        let collect = async {
            while !self.tasks.is_empty() || !self.dying.is_empty() {
                match self.output.recv().await {
                    Some(SessionMsg::Ended { cmd, branch }) => {
                        self.on_ended(InstanceKey {
                            cmd_id: cmd,
                            branch_id: branch,
                        });
                    }
                    Some(SessionMsg::Idle { cmd, branch }) => idles.push(Frame::idle(cmd, branch)),
                    Some(_) => {}
                    None => break,
                }
            }
        };
        let _ = tokio::time::timeout(wait, collect).await;
        idles
    }
}
