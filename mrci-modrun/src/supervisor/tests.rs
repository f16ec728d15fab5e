//! Unit tests of the supervisor state machine with hand-made instants: no sleeping, no
//! processes.

use std::os::unix::process::ExitStatusExt;

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn start() -> (Supervisor, Instant) {
    let t0 = Instant::now();
    (Supervisor::new(t0, Timers::default()), t0)
}

fn actions(sup: &mut Supervisor) -> Vec<Action> {
    std::iter::from_fn(|| sup.poll_action()).collect()
}

fn ok() -> ExitStatus {
    ExitStatus::from_raw(0)
}

fn sigkill() -> ExitStatus {
    ExitStatus::from_raw(9)
}

#[test]
fn never_connecting_is_killed_at_the_connect_deadline() {
    let (mut sup, t0) = start();
    assert_eq!(sup.poll_timeout(), Some(t0 + 5 * SEC));
    sup.handle_timeout(t0 + 4 * SEC);
    assert!(actions(&mut sup).is_empty());
    sup.handle_timeout(t0 + 5 * SEC);
    assert_eq!(actions(&mut sup), [Action::ForceKill]);
    assert_eq!(sup.state(), State::Killed);
    assert_eq!(sup.poll_timeout(), None);
    sup.handle_exit(t0 + 5 * SEC);
    assert_eq!(sup.exit_cause(sigkill()), ExitCause::NeverConnected);
    assert!(ExitCause::NeverConnected.is_failure());
}

#[test]
fn idle_for_two_minutes_sends_kill_cmd_then_forces_after_three_seconds() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0 + SEC);
    assert_eq!(sup.poll_timeout(), Some(t0 + 121 * SEC));
    sup.handle_timeout(t0 + 120 * SEC);
    assert!(actions(&mut sup).is_empty());
    sup.handle_timeout(t0 + 121 * SEC);
    assert_eq!(actions(&mut sup), [Action::SendKill]);
    assert_eq!(sup.state(), State::Stopping);
    assert_eq!(sup.poll_timeout(), Some(t0 + 124 * SEC));
    // Traffic during the grace time does not save the process.
    sup.handle_received(t0 + 122 * SEC, TypeId::TEXT);
    assert_eq!(sup.poll_timeout(), Some(t0 + 124 * SEC));
    sup.handle_timeout(t0 + 124 * SEC);
    assert_eq!(actions(&mut sup), [Action::ForceKill]);
    sup.handle_exit(t0 + 124 * SEC);
    assert_eq!(sup.state(), State::Dead);
    assert_eq!(sup.exit_cause(sigkill()), ExitCause::ForceKilled);
}

#[test]
fn traffic_in_either_direction_restarts_the_idle_timer() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0);
    sup.handle_sent(t0 + 100 * SEC, TypeId::TEXT);
    assert_eq!(sup.poll_timeout(), Some(t0 + 220 * SEC));
    sup.handle_received(t0 + 200 * SEC, TypeId::TEXT);
    sup.handle_timeout(t0 + 220 * SEC);
    assert!(actions(&mut sup).is_empty());
    assert_eq!(sup.poll_timeout(), Some(t0 + 320 * SEC));
}

#[test]
fn a_module_that_obeys_kill_cmd_is_idle_stopped() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0);
    sup.handle_timeout(t0 + 120 * SEC);
    assert_eq!(actions(&mut sup), [Action::SendKill]);
    sup.handle_exit(t0 + 121 * SEC);
    assert_eq!(sup.poll_timeout(), None);
    assert_eq!(sup.exit_cause(ok()), ExitCause::IdleStopped);
    assert!(!ExitCause::IdleStopped.is_failure());
}

#[test]
fn requested_stop_while_starting_forces_at_once() {
    let (mut sup, t0) = start();
    sup.request_stop(t0);
    assert_eq!(actions(&mut sup), [Action::ForceKill]);
    sup.handle_exit(t0);
    assert_eq!(sup.exit_cause(sigkill()), ExitCause::Stopped);
}

#[test]
fn requested_stop_when_active_gets_the_grace_time_once() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0);
    sup.request_stop(t0 + SEC);
    sup.request_stop(t0 + 2 * SEC);
    assert_eq!(actions(&mut sup), [Action::SendKill]);
    assert_eq!(sup.poll_timeout(), Some(t0 + 4 * SEC));
    sup.handle_exit(t0 + 2 * SEC);
    assert_eq!(sup.exit_cause(ok()), ExitCause::Stopped);
}

#[test]
fn protocol_errors_force_a_kill() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0);
    sup.handle_protocol_error(t0);
    assert_eq!(actions(&mut sup), [Action::ForceKill]);
    sup.handle_exit(t0);
    assert_eq!(sup.exit_cause(sigkill()), ExitCause::Protocol);
}

#[test]
fn exits_on_its_own_are_finished_or_crashed() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0);
    sup.handle_exit(t0);
    assert_eq!(sup.exit_cause(ok()), ExitCause::Finished);
    assert_eq!(
        sup.exit_cause(ExitStatus::from_raw(1 << 8)),
        ExitCause::Crashed
    );
    assert_eq!(sup.exit_cause(ExitStatus::from_raw(11)), ExitCause::Crashed);
}

#[test]
fn tasks_open_on_input_and_close_on_idle() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0);
    sup.handle_sent(t0, TypeId::HOST_VER);
    sup.handle_sent(t0, TypeId::TERM_CMD);
    assert!(!sup.task_open());
    sup.handle_sent(t0, TypeId::TEXT);
    assert!(sup.task_open());
    sup.handle_received(t0, TypeId::TEXT);
    assert!(sup.task_open());
    sup.handle_received(t0, TypeId::IDLE);
    assert!(!sup.task_open());
}

/// Whatever happens, a process that is asked to stop is dead (or force-killed) no later than
/// the grace time after the request: walk many input orders through the machine.
#[test]
fn every_stop_ends_in_a_forced_kill_within_the_grace_time() {
    let inputs = [0u8, 1, 2, 3, 4];
    for a in inputs {
        for b in inputs {
            let (mut sup, t0) = start();
            let mut now = t0;
            for step in [a, b] {
                now += SEC;
                match step {
                    0 => sup.handle_connected(now),
                    1 => sup.handle_sent(now, TypeId::TEXT),
                    2 => sup.handle_received(now, TypeId::IDLE),
                    3 => {
                        now += 200 * SEC;
                        sup.handle_timeout(now);
                    }
                    _ => sup.handle_protocol_error(now),
                }
            }
            let stop_at = now + SEC;
            sup.request_stop(stop_at);
            let mut forced = false;
            while let Some(at) = sup.poll_timeout() {
                assert!(
                    at <= stop_at + 3 * SEC,
                    "timer past the grace time: {a} {b}"
                );
                sup.handle_timeout(at);
            }
            while let Some(action) = sup.poll_action() {
                forced |= action == Action::ForceKill;
            }
            assert!(forced, "no forced kill after inputs {a} {b}");
            assert_eq!(sup.state(), State::Killed);
        }
    }
}

#[test]
fn sigxcpu_is_the_cpu_limit_and_other_signals_are_crashes() {
    let (mut sup, t0) = start();
    sup.handle_connected(t0);
    sup.handle_exit(t0 + SEC);
    assert_eq!(
        sup.exit_cause(ExitStatus::from_raw(24)),
        ExitCause::CpuLimit
    );
    assert!(ExitCause::CpuLimit.is_failure());
    assert_eq!(sup.exit_cause(ExitStatus::from_raw(6)), ExitCause::Crashed);
    assert_eq!(sup.exit_cause(sigkill()), ExitCause::Crashed);
}
