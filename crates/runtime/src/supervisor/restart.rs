//! Restart with backoff: after a run ended by itself (or was killed as
//! unhealthy), report a failed start, then let the restart policy decide:
//! completed, left stopped, given up, or started again after a delay.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::EventKind;
use super::replica::ReplicaTask;
use super::report;
use crate::backoff::{self, CRASH_LOOP_AFTER, Ended, Exit, Next};
use crate::diagnose;
use crate::status::Phase;

/// How long a replica must stay healthy before its restart streak resets.
pub(super) const STREAK_RESET: Duration = Duration::from_secs(10);

/// What carries over from one run of a replica to the next.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Restarts in the current failure streak (reset after a stable run).
    pub(super) streak: u32,
    /// Restarts since the replica was first started.
    pub(super) total_restarts: u32,
    /// Whether `crash-looping` was sent for the current streak.
    pub(super) crash_loop_announced: bool,
    /// Why the previous run ended, once there was one.
    pub(super) last_end: Option<String>,
}

impl History {
    /// A restart on request: not a failure.
    pub(super) fn restart_requested(&mut self) {
        self.total_restarts += 1;
        self.streak = 0;
        self.last_end = Some("restart requested".into());
    }
}

/// After a run ended by itself or as unhealthy: whether the replica runs
/// again (after its backoff delay, already waited for here).
pub(super) async fn after_end(
    task: &ReplicaTask,
    history: &mut History,
    ended: Ended,
    exit: Option<Exit>,
    port: u16,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    report_failed_start(task, history, exit, port, started).await;
    let why = match ended {
        Ended::Exited(e) => e.to_string(),
        Ended::Unhealthy => "failed its healthcheck".to_owned(),
    };
    match backoff::next(
        &task.svc.restart,
        ended,
        history.streak,
        rand::random::<f64>(),
    ) {
        Next::Completed => {
            task.update(|r| {
                r.phase = Phase::Completed;
                r.healthy = false;
                r.ready = false;
                r.reason = "completed (exit 0)".into();
            });
            task.emit(EventKind::Completed, "exit 0");
            false
        }
        Next::Stay(reason) => {
            task.update(|r| {
                r.phase = Phase::Exited;
                r.healthy = false;
                r.ready = false;
                r.reason = reason.clone();
            });
            false
        }
        Next::GiveUp(reason) => {
            task.update(|r| {
                r.phase = Phase::Failed;
                r.healthy = false;
                r.ready = false;
                r.reason = reason.clone();
            });
            task.emit(EventKind::Failed, reason);
            false
        }
        Next::Restart(delay) => {
            announce_restart(task, history, &why, delay);
            history.last_end = Some(why);
            wait_to_restart(task, delay, stop).await
        }
    }
}

/// Reset the streak after a stable run; report an exit before becoming
/// healthy (or, without a healthcheck, soon after starting) as a failed start.
async fn report_failed_start(
    task: &ReplicaTask,
    history: &mut History,
    exit: Option<Exit>,
    port: u16,
    started: Instant,
) {
    let was_healthy = task
        .inner
        .replica_status(&task.key, task.idx, |r| r.healthy)
        .unwrap_or(false);
    let lived = started.elapsed();
    if was_healthy && lived >= STREAK_RESET {
        history.streak = 0;
        history.crash_loop_announced = false;
    }
    let failed_start = !was_healthy || (task.svc.healthcheck.is_none() && lived < STREAK_RESET);
    if failed_start
        && let Some(e) = exit
        && !e.success()
    {
        let report = report::report_after_exit(
            &task.inner,
            &task.key,
            &task.svc,
            task.idx,
            port,
            started,
            e,
        )
        .await;
        task.update_instance(|s| s.report = Some(report));
    }
}

/// Count the restart and publish it: `restarting`, or `crash-looping` once
/// the streak reaches [`CRASH_LOOP_AFTER`] (the event once per streak).
fn announce_restart(task: &ReplicaTask, history: &mut History, why: &str, delay: Duration) {
    history.streak += 1;
    history.total_restarts += 1;
    let streak = history.streak;
    let total_restarts = history.total_restarts;
    // The streak only resets after a stable run, so it counts failed starts.
    let looping = streak >= CRASH_LOOP_AFTER;
    let reason = format!(
        "{why}; restarting in {} (restart {total_restarts})",
        diagnose::human(delay)
    );
    task.update(|r| {
        r.phase = if looping {
            Phase::CrashLooping
        } else {
            Phase::Restarting
        };
        r.healthy = false;
        r.ready = false;
        r.restarts = total_restarts;
        r.reason = if looping {
            format!("crash-looping: {streak} failed starts in a row; last: {reason}")
        } else {
            reason.clone()
        };
    });
    if looping && !history.crash_loop_announced {
        history.crash_loop_announced = true;
        task.emit(
            EventKind::CrashLooping,
            format!("{streak} failed starts in a row; last: {why}"),
        );
    }
}

/// Sleep the backoff delay; `false` when a stop came meanwhile.
async fn wait_to_restart(
    task: &ReplicaTask,
    delay: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
    }
    if *stop.borrow() {
        task.publish_stopped_while_waiting();
        return false;
    }
    true
}
