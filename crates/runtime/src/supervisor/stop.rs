//! Stopping and killing a replica: on request (stop, restart), because its
//! healthcheck failed, and what is published once it is stopped.

use tokio::time::Instant;

use super::EventKind;
use super::replica::{ReplicaTask, RunEnd};
use super::report;
use crate::backoff::{Ended, Exit};
use crate::driver::Replica;
use crate::status::Phase;

/// Its healthcheck failed past its retries: report why, then stop it with
/// its stop signal (SIGKILL after the grace period).
pub(super) async fn kill_unhealthy(
    task: &ReplicaTask,
    running: &mut dyn Replica,
    port: u16,
    started: Instant,
    reason: String,
) -> RunEnd {
    let svc = &task.svc;
    let idx = task.idx;
    let listening = running.listening_ports().await;
    let report = report::build_report(
        &task.inner,
        &task.key,
        svc,
        idx,
        port,
        started,
        listening,
        reason.clone(),
        None,
    )
    .await;
    task.update_instance(|s| {
        if let Some(r) = s.replicas.get_mut(idx as usize) {
            r.phase = Phase::Unhealthy;
            r.healthy = false;
            r.ready = false;
            r.reason = reason.clone();
        }
        s.report = Some(report);
    });
    task.emit(EventKind::Unhealthy, reason);
    let exit = running.stop(&svc.stop_signal, svc.stop_grace_period).await;
    task.emit(EventKind::Exited, format!("{exit} (stopped: unhealthy)"));
    RunEnd::Ended(Ended::Unhealthy)
}

/// Stop requested (the service, its instance or the whole platform).
pub(super) async fn stop_on_request(task: &ReplicaTask, running: &mut dyn Replica) -> Exit {
    task.update(|r| {
        r.phase = Phase::Stopping;
        r.reason = "stopping".into();
    });
    let svc = &task.svc;
    running.stop(&svc.stop_signal, svc.stop_grace_period).await
}

/// Restart requested: stop this run; the loop starts the next at once.
pub(super) async fn stop_for_restart(task: &ReplicaTask, running: &mut dyn Replica) -> Exit {
    let svc = &task.svc;
    running.stop(&svc.stop_signal, svc.stop_grace_period).await
}

impl ReplicaTask {
    /// It stopped on request.
    pub(super) fn publish_stopped(&self, exit: Option<Exit>) {
        self.update(|r| {
            r.phase = Phase::Stopped;
            r.healthy = false;
            r.ready = false;
            r.reason = "stopped".into();
        });
        self.emit(
            EventKind::Stopped,
            exit.map(|e| e.to_string()).unwrap_or_default(),
        );
    }

    /// A stop came while it waited to be restarted.
    pub(super) fn publish_stopped_while_waiting(&self) {
        self.update(|r| {
            r.phase = Phase::Stopped;
            r.reason = "stopped".into();
        });
        self.emit(EventKind::Stopped, "while waiting to restart");
    }
}
