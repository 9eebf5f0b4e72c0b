//! The replica loop: one task per replica owns its workload across
//! restarts. Each turn: start it through its driver, announce it, watch it
//! (exit, health, stop and restart requests), then decide with the restart
//! policy whether it runs again and after how long.

use std::sync::Arc;

use orchestra_manifest::Service;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::publish::now_ms;
use super::restart::{self, History};
use super::table::Inner;
use super::{EventKind, ProcessInfo, health, report, stop};
use crate::backoff::{Ended, Exit};
use crate::diagnose::Evidence;
use crate::driver::{Replica, ReplicaSpec};
use crate::procfs;
use crate::status::{Phase, ReplicaStatus, ServiceStatus};

/// One replica's task: what it runs, and where it publishes.
pub(super) struct ReplicaTask {
    pub(super) inner: Arc<Inner>,
    pub(super) key: String,
    pub(super) svc: Arc<Service>,
    pub(super) idx: u32,
}

/// How one run of a replica ended.
pub(super) enum RunEnd {
    /// It exited by itself, or was killed because it was unhealthy.
    Ended(Ended),
    /// Stopped on request, ending this way.
    Stopped(Exit),
    /// Restarted on request; the old run ended this way.
    RestartRequested(Exit),
}

impl RunEnd {
    /// The exit status, when one is known (not for a replica killed as unhealthy).
    fn exit(&self) -> Option<Exit> {
        match *self {
            RunEnd::Ended(Ended::Exited(e)) | RunEnd::Stopped(e) | RunEnd::RestartRequested(e) => {
                Some(e)
            }
            RunEnd::Ended(Ended::Unhealthy) => None,
        }
    }
}

/// Runs one replica until it is stopped, completes or is given up on.
pub(super) async fn replica(
    inner: Arc<Inner>,
    key: String,
    svc: Arc<Service>,
    idx: u32,
    mut stop: watch::Receiver<bool>,
    mut restart_rx: mpsc::UnboundedReceiver<()>,
) {
    let task = ReplicaTask {
        inner,
        key,
        svc,
        idx,
    };
    // A free port for the replica's life: processes listen on it across
    // restarts; container drivers say where they publish instead. A pinned
    // port is the service's own (one replica; deploys recreate).
    let port = match task.svc.pinned_port() {
        Some(p) => task.inner.reserve_port(p),
        None => task.inner.alloc_port(),
    };
    let reserved = match port {
        Ok(p) => p,
        Err(e) => {
            task.fail(format!("no port could be assigned: {e}"), None)
                .await;
            return;
        }
    };
    let mut history = History::default();
    loop {
        if *stop.borrow() {
            break;
        }
        let Some(mut running) = task.start(reserved).await else {
            break;
        };
        let started = Instant::now();
        let port = running.port();
        task.announce_start(running.as_ref(), port, &history);
        let end = task
            .watch(running.as_mut(), port, started, &mut stop, &mut restart_rx)
            .await;
        running.finish().await;
        let exit = end.exit();
        task.record_end(&end, exit);
        let ended = match end {
            RunEnd::Stopped(_) => {
                task.publish_stopped(exit);
                break;
            }
            RunEnd::RestartRequested(_) => {
                history.restart_requested();
                continue;
            }
            RunEnd::Ended(ended) => ended,
        };
        let again =
            restart::after_end(&task, &mut history, ended, exit, port, started, &mut stop).await;
        if !again {
            break;
        }
    }
    task.inner.release_port(reserved);
}

impl ReplicaTask {
    pub(super) fn name(&self) -> &str {
        &self.svc.name
    }

    /// Change this replica's status.
    pub(super) fn update(&self, f: impl FnOnce(&mut ReplicaStatus)) {
        self.inner.update_replica(&self.key, self.idx, f);
    }

    /// Change its instance's status.
    pub(super) fn update_instance(&self, f: impl FnOnce(&mut ServiceStatus)) {
        self.inner.update(&self.key, f);
    }

    /// An event about this replica.
    pub(super) fn emit(&self, kind: EventKind, reason: impl Into<String>) {
        self.inner
            .emit(&self.key, &self.svc.name, Some(self.idx), kind, reason);
    }

    /// Declare it failed: it is not started again.
    pub(super) async fn fail(&self, summary: String, evidence: Option<Evidence>) {
        report::fail(
            &self.inner,
            &self.key,
            &self.svc,
            self.idx,
            summary,
            evidence,
        )
        .await;
    }

    /// Start one run through the driver for its kind of workload; `None`
    /// (after declaring it failed) when it cannot be started.
    async fn start(&self, reserved: u16) -> Option<Box<dyn Replica>> {
        let inner = &self.inner;
        let svc = &self.svc;
        let driver = match inner.driver_for(&svc.workload) {
            Ok(d) => d,
            Err(why) => {
                self.fail(why, None).await;
                return None;
            }
        };
        let spec = ReplicaSpec {
            project: inner.cfg.manifest.name.clone(),
            service: svc.clone(),
            revision: svc.revision(),
            instance: self.key.clone(),
            replica: self.idx,
            port: reserved,
            dir: svc
                .working_dir
                .clone()
                .unwrap_or_else(|| inner.cfg.manifest.dir.clone()),
            logs: inner.logs.clone(),
        };
        match driver.start(&spec).await {
            Ok(r) => Some(r),
            Err(e) => {
                let evidence = e.cause.map(|c| Evidence {
                    spawn_error: Some(c),
                    port: reserved,
                    ..Default::default()
                });
                self.fail(e.summary, evidence).await;
                None
            }
        }
    }

    /// Publish a run that just started, and emit `started` (first run) or
    /// `restarted`; without a healthcheck it counts as healthy at once.
    fn announce_start(&self, running: &dyn Replica, port: u16, history: &History) {
        let svc = &self.svc;
        let pid = running.pid();
        let container = running.container();
        let what = running.describe();
        let info = pid.map(|pid| ProcessInfo {
            pid,
            pgid: pid,
            start_ticks: procfs::stat(pid).map(|s| s.start_ticks).unwrap_or(0),
            revision: svc.revision(),
            port,
        });
        let has_probe = svc.healthcheck.is_some();
        // Port 0: nothing listens (a static site, served by the proxy).
        let at = if port == 0 {
            String::new()
        } else {
            format!(", port {port}")
        };
        let last_end = &history.last_end;
        let total_restarts = history.total_restarts;
        self.update(|r| {
            r.pid = pid;
            r.container = container.clone();
            r.port = (port != 0).then_some(port);
            r.started_at_ms = Some(now_ms());
            r.ever_started = true;
            r.healthy = !has_probe;
            r.ready = !has_probe && svc.readiness.is_none();
            r.restarts = total_restarts;
            r.phase = if has_probe || svc.readiness.is_some() {
                Phase::Starting
            } else {
                Phase::Healthy
            };
            r.reason = match last_end {
                Some(why) => format!("restarted after: {why}"),
                None => format!("started ({what}{at})"),
            };
        });
        let (kind, reason) = match last_end {
            None => (EventKind::Started, format!("{what}{at}")),
            Some(why) => (
                EventKind::Restarted,
                format!("restart {total_restarts}, {what}{at}, after: {why}"),
            ),
        };
        self.inner
            .emit_process(&self.key, self.name(), Some(self.idx), kind, reason, info);
        if !has_probe {
            let why = if port == 0 {
                "serving its files"
            } else {
                "running (no healthcheck)"
            };
            self.emit(EventKind::Healthy, why);
        }
    }

    /// Watch a running replica until it ends: by itself, killed because its
    /// healthcheck failed, or stopped or restarted on request.
    async fn watch(
        &self,
        running: &mut dyn Replica,
        port: u16,
        started: Instant,
        stop: &mut watch::Receiver<bool>,
        restart_rx: &mut mpsc::UnboundedReceiver<()>,
    ) -> RunEnd {
        let ctx = running.exec_context();
        let health = health::watch_health(
            &self.inner,
            &self.key,
            &self.svc,
            self.idx,
            port,
            started,
            &ctx,
        );
        tokio::pin!(health);
        loop {
            tokio::select! {
                exit = running.wait() => return RunEnd::Ended(Ended::Exited(exit)),
                reason = &mut health => {
                    return stop::kill_unhealthy(self, running, port, started, reason).await;
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return RunEnd::Stopped(stop::stop_on_request(self, running).await);
                    }
                }
                Some(()) = restart_rx.recv() => {
                    return RunEnd::RestartRequested(stop::stop_for_restart(self, running).await);
                }
            }
        }
    }

    /// After a run ended (and its driver finished it): the `exited` event
    /// (already sent for an unhealthy kill) and the last exit status.
    fn record_end(&self, end: &RunEnd, exit: Option<Exit>) {
        if let Some(e) = exit
            && !matches!(end, RunEnd::Ended(Ended::Unhealthy))
        {
            self.emit(EventKind::Exited, e.to_string());
        }
        self.update(|r| {
            r.pid = None;
            if let Some(e) = exit {
                r.last_exit = Some(e);
            }
        });
    }
}
