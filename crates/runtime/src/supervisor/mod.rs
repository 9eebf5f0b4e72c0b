//! The supervisor: starts services along the plan as their dependencies'
//! conditions are met, runs each replica through probe, restart and stop,
//! and keeps the status table every other part reads.
//!
//! One task per service waits on its gate ([`gate`]); one task per replica
//! owns its process ([`replica`]: start, probe ([`health`]), stop or kill
//! ([`stop`]), restart with backoff ([`restart`]), failure reports
//! ([`report`])). They publish into the instance table ([`table`]) through
//! [`publish`]: short mutex sections, never held across an await, then a
//! bump of a watch counter so waiters re-decide.
//!
//! Durations and deadlines use tokio's clock, so that tests can pause it;
//! timestamps (ms since the epoch) come from `orchestra_clock::now_ms`.

mod gate;
mod health;
mod job;
mod publish;
mod replica;
mod report;
mod restart;
mod stop;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use orchestra_manifest::{Manifest, Service, Workload};
use orchestra_plan::StartPlan;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::driver::Driver;
use crate::driver::process::ProcessDriver;
use crate::driver::site::{StaticDriver, snapshot_dir};
use crate::logs::LogHub;
use crate::status::{self, Phase, PlatformStatus, Role, ServiceStatus};
use table::{Entry, Inner, Table};

pub use crate::driver::process::{reap_group, resolve_program};

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The validated manifest.
    pub manifest: Arc<Manifest>,
    /// The services to run and their dependencies.
    pub plan: StartPlan,
    /// Where per-service log files go.
    pub log_dir: PathBuf,
    /// The shim command (program and arguments) that wraps every service
    /// process; the service's argv follows after `--`.
    pub shim: Vec<String>,
    /// Runs `image:` and `build:` services; without one they fail to start
    /// with a clear reason. The daemon provides it.
    pub containers: Option<Arc<dyn Driver>>,
    /// Where static sites' snapshots are kept (`.orchestra/static`), one per revision.
    pub static_dir: PathBuf,
}

/// What happened, for the event log and for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// Waiting for dependencies.
    Waiting,
    /// A process was started (first time).
    Started,
    /// A process was started again after an exit or a failed probe.
    Restarted,
    /// Passed its healthcheck.
    Healthy,
    /// Failed its healthcheck.
    Unhealthy,
    /// A process ended (any way).
    Exited,
    /// Restarting again and again without becoming healthy.
    CrashLooping,
    /// A job exited 0.
    Completed,
    /// Given up.
    Failed,
    /// A dependency can never be met.
    Blocked,
    /// Stopped on request.
    Stopped,
}

impl EventKind {
    /// The kebab-case name stored in the event log.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Waiting => "waiting",
            EventKind::Started => "started",
            EventKind::Restarted => "restarted",
            EventKind::Healthy => "healthy",
            EventKind::Unhealthy => "unhealthy",
            EventKind::Exited => "exited",
            EventKind::CrashLooping => "crash-looping",
            EventKind::Completed => "completed",
            EventKind::Failed => "failed",
            EventKind::Blocked => "blocked",
            EventKind::Stopped => "stopped",
        }
    }
}

/// A process as the state records it, so a later daemon can reap it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProcessInfo {
    /// PID of the group leader (the shim).
    pub pid: i32,
    /// Its process group.
    pub pgid: i32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
    /// Service revision.
    pub revision: String,
    /// Assigned PORT.
    pub port: u16,
}

/// One runtime event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// ms since the epoch.
    pub at_ms: i64,
    /// The runtime instance (`service@revision`).
    pub instance: String,
    /// Service.
    pub service: String,
    /// Replica, when about one.
    pub replica: Option<u32>,
    /// What happened.
    pub kind: EventKind,
    /// Why / details.
    pub reason: String,
    /// For `started`/`restarted`: the process.
    pub process: Option<ProcessInfo>,
}

/// Errors from control operations.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such service in this run.
    #[error("no service `{0}` in this platform")]
    UnknownService(String),
}

/// The running platform. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// The values of a service's secrets, as injected into its environment.
fn secret_values(svc: &Service) -> impl Iterator<Item = &str> {
    svc.secrets
        .iter()
        .filter_map(|n| svc.env.get(n).map(String::as_str))
        .chain(svc.secret_files.values().map(String::as_str))
}

/// The key of one revision of a service in the runtime.
pub fn instance_key(service: &str, revision: &str) -> String {
    format!("{service}@{revision}")
}

impl Runtime {
    /// Start the plan. Returns at once; services come up in the background.
    /// Events arrive on the returned receiver.
    pub fn start(cfg: RuntimeConfig) -> (Runtime, mpsc::UnboundedReceiver<Event>) {
        let processes = Arc::new(ProcessDriver {
            shim: cfg.shim.clone(),
        });
        Self::start_driver(cfg, processes)
    }

    /// [`Runtime::start`] with another driver for `command:` services: the
    /// fake of [`crate::driver::fake`], in unit tests here and in other crates.
    #[cfg(any(test, feature = "test-support"))]
    pub fn start_with(
        cfg: RuntimeConfig,
        processes: Arc<dyn Driver>,
    ) -> (Runtime, mpsc::UnboundedReceiver<Event>) {
        Self::start_driver(cfg, processes)
    }

    fn start_driver(
        cfg: RuntimeConfig,
        processes: Arc<dyn Driver>,
    ) -> (Runtime, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let (changed, _) = watch::channel(0);
        let statics = Arc::new(StaticDriver::new(cfg.static_dir.clone()));
        let logs = Arc::new(LogHub::new(&cfg.log_dir));
        // Secret files a killed daemon left on tmpfs: its processes are gone.
        crate::secret_files::remove_project(&cfg.manifest.name);
        let mut table = Table::default();
        let mut keys = Vec::new();
        for name in &cfg.plan.order {
            if let Some(svc) = cfg.manifest.service(name) {
                logs.mask(&svc.name, secret_values(svc));
                // A scheduled job runs at its ticks ([`Runtime::start_job_run`]), not at `up`.
                if svc.schedule.is_some() {
                    continue;
                }
                let e = Entry::new(svc, Role::Live);
                let key = e.status.instance.clone();
                table.live.insert(name.clone(), key.clone());
                table.entries.insert(key.clone(), e);
                keys.push(key);
            }
        }
        let rt = Runtime {
            inner: Arc::new(Inner {
                processes,
                statics,
                cfg,
                table: Mutex::new(table),
                changed,
                events,
                logs,
                ports: Mutex::new(HashSet::new()),
            }),
        };
        for key in keys {
            rt.spawn_driver(&key, true);
        }
        (rt, rx)
    }

    fn spawn_driver(&self, key: &str, gated: bool) {
        let Some(def) = self
            .inner
            .table
            .lock()
            .entries
            .get(key)
            .map(|e| e.def.clone())
        else {
            return;
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..def.replicas).map(|_| mpsc::unbounded_channel()).unzip();
        let task = tokio::spawn(gate::drive(
            self.inner.clone(),
            key.to_owned(),
            def,
            gated,
            stop_rx,
            receivers,
        ));
        let mut t = self.inner.table.lock();
        if let Some(e) = t.entries.get_mut(key) {
            e.stop = Some(stop_tx);
            e.restart = senders;
            e.task = Some(task);
        }
    }

    /// The log pipeline.
    pub fn logs(&self) -> &LogHub {
        &self.inner.logs
    }

    /// The manifest this runtime was started with.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.cfg.manifest
    }

    /// The plan this runtime runs.
    pub fn plan(&self) -> &StartPlan {
        &self.inner.cfg.plan
    }

    /// A counter that changes whenever any status changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Current status of every service's live revision, in start order.
    pub fn services(&self) -> Vec<ServiceStatus> {
        let t = self.inner.table.lock();
        self.inner
            .cfg
            .plan
            .order
            .iter()
            .filter_map(|n| t.live_entry(n).map(|e| e.status.clone()))
            .collect()
    }

    /// The live revision's status of one service.
    pub fn service(&self, name: &str) -> Option<ServiceStatus> {
        self.inner
            .table
            .lock()
            .live_entry(name)
            .map(|e| e.status.clone())
    }

    /// Every running revision of one service (live first).
    pub fn instances(&self, name: &str) -> Vec<ServiceStatus> {
        let t = self.inner.table.lock();
        let live = t.live.get(name).cloned();
        let mut v: Vec<ServiceStatus> = t
            .entries
            .values()
            .filter(|e| e.service == name)
            .map(|e| e.status.clone())
            .collect();
        v.sort_by_key(|s| Some(&s.instance) != live.as_ref());
        v
    }

    /// The status of one instance.
    pub fn instance(&self, key: &str) -> Option<ServiceStatus> {
        self.inner
            .table
            .lock()
            .entries
            .get(key)
            .map(|e| e.status.clone())
    }

    /// The definition an instance runs.
    pub fn instance_def(&self, key: &str) -> Option<Arc<Service>> {
        self.inner
            .table
            .lock()
            .entries
            .get(key)
            .map(|e| e.def.clone())
    }

    /// The live instance key of a service.
    pub fn live_key(&self, service: &str) -> Option<String> {
        self.inner.table.lock().live.get(service).cloned()
    }

    /// Start another revision of a service beside the live one, not gated on
    /// dependencies (they are running). Returns its instance key. Starting a
    /// revision that already runs returns the existing key.
    pub fn start_revision(&self, svc: &Service, role: Role) -> String {
        let key = instance_key(&svc.name, &svc.revision());
        self.inner.logs.mask(&svc.name, secret_values(svc));
        let exists = {
            let mut t = self.inner.table.lock();
            match t.entries.get_mut(&key) {
                Some(e) => {
                    e.status.role = role;
                    e.running()
                }
                None => {
                    t.entries.insert(key.clone(), Entry::new(svc, role));
                    false
                }
            }
        };
        if !exists {
            self.inner.update(&key, |s| {
                s.replicas.clear();
                s.report = None;
                s.phase = Phase::Waiting;
            });
            self.spawn_driver(&key, false);
        }
        self.inner.bump();
        key
    }

    /// Make `key` the live revision of its service; the previous live one
    /// gets the role `previous`. Returns the previous key.
    pub fn set_live(&self, key: &str) -> Option<String> {
        let prev = {
            let mut t = self.inner.table.lock();
            let service = t.entries.get(key)?.service.clone();
            let prev = t.live.insert(service, key.to_owned());
            if let Some(p) = &prev
                && p != key
                && let Some(e) = t.entries.get_mut(p)
            {
                e.status.role = Role::Previous;
            }
            if let Some(e) = t.entries.get_mut(key) {
                e.status.role = Role::Live;
            }
            prev
        };
        self.inner.bump();
        prev.filter(|p| p != key)
    }

    /// Set an instance's role label (`candidate`, `canary`, `warm`...).
    pub fn set_role(&self, key: &str, role: Role) {
        self.inner.update(key, |s| s.role = role);
    }

    /// Loopback addresses of an instance's replicas that are healthy and ready.
    pub fn ready_addrs(&self, key: &str) -> Vec<std::net::SocketAddr> {
        self.inner
            .table
            .lock()
            .entries
            .get(key)
            .map(|e| {
                e.status
                    .replicas
                    .iter()
                    .filter(|r| r.healthy && r.ready && r.phase == Phase::Healthy)
                    .filter_map(|r| r.port)
                    .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The snapshot the proxy serves a static site's instance from, once it
    /// is up; `None` for other instances.
    pub fn site_root(&self, key: &str) -> Option<PathBuf> {
        let t = self.inner.table.lock();
        let e = t.entries.get(key)?;
        let up = e
            .status
            .replicas
            .iter()
            .any(|r| r.healthy && r.ready && r.phase == Phase::Healthy);
        (matches!(e.def.workload, Workload::Static { .. }) && up)
            .then(|| snapshot_dir(&self.inner.cfg.static_dir, &e.service, &e.status.revision))
    }

    /// Wait until an instance is up (every replica healthy and ready) or has
    /// failed to come up.
    pub async fn instance_settled(&self, key: &str) -> status::Settled {
        let mut rx = self.subscribe();
        loop {
            rx.borrow_and_update();
            let Some(s) = self.instance(key) else {
                return status::Settled::Failed(vec![key.to_owned()]);
            };
            let st = status::settled(std::slice::from_ref(&s));
            let all_ready =
                !s.replicas.is_empty() && s.replicas.iter().all(|r| r.healthy && r.ready);
            match st {
                status::Settled::Up if all_ready || s.phase == Phase::Completed => return st,
                status::Settled::Failed(_) => return st,
                _ => {}
            }
            if rx.changed().await.is_err() {
                return status::Settled::Failed(vec![key.to_owned()]);
            }
        }
    }

    /// Stop one instance and forget it.
    pub async fn remove_instance(&self, key: &str) {
        self.stop_instance(key).await;
        let mut t = self.inner.table.lock();
        let is_live = t.live.values().any(|k| k == key);
        if !is_live {
            t.entries.remove(key);
        }
        drop(t);
        self.inner.bump();
    }

    async fn stop_instance(&self, key: &str) {
        let task = {
            let mut t = self.inner.table.lock();
            let Some(e) = t.entries.get_mut(key) else {
                return;
            };
            if let Some(stop) = &e.stop {
                let _ = stop.send(true);
            }
            e.task.take()
        };
        if let Some(task) = task {
            let _ = task.await;
        }
        // The revision stopped: its secret files go with it.
        crate::secret_files::remove(&self.inner.cfg.manifest.name, key);
        self.inner.update(key, |s| {
            if s.replicas.is_empty() || s.replicas.iter().all(|r| r.phase == Phase::Waiting) {
                s.phase = Phase::Stopped;
                s.reason = "stopped before it started".into();
                s.replicas.clear();
            }
        });
    }

    /// The platform summary.
    pub fn status(&self) -> PlatformStatus {
        let m = &self.inner.cfg.manifest;
        status::platform(&m.name, m.health.threshold, self.services())
    }

    /// Wait until the start has settled (everything up, or something failed).
    pub async fn settled(&self) -> status::Settled {
        let mut rx = self.subscribe();
        loop {
            rx.borrow_and_update();
            let s = status::settled(&self.services());
            if s != status::Settled::Pending {
                return s;
            }
            if rx.changed().await.is_err() {
                return s;
            }
        }
    }

    fn keys_of(&self, service: &str) -> Result<Vec<String>, ControlError> {
        let t = self.inner.table.lock();
        if !t.live.contains_key(service) {
            return Err(ControlError::UnknownService(service.to_owned()));
        }
        Ok(t.entries
            .iter()
            .filter(|(_, e)| e.service == service)
            .map(|(k, _)| k.clone())
            .collect())
    }

    /// Stop one service, every revision of it (its dependents keep running).
    pub async fn stop_service(&self, name: &str) -> Result<(), ControlError> {
        let keys = self.keys_of(name)?;
        let live = self.live_key(name);
        for k in keys {
            if Some(&k) == live.as_ref() {
                self.stop_instance(&k).await;
            } else {
                self.remove_instance(&k).await;
            }
        }
        Ok(())
    }

    /// Start a stopped (or never started) service.
    pub fn start_service(&self, name: &str) -> Result<bool, ControlError> {
        let key = self
            .live_key(name)
            .ok_or_else(|| ControlError::UnknownService(name.to_owned()))?;
        let running = self
            .inner
            .table
            .lock()
            .entries
            .get(&key)
            .is_some_and(|e| e.running());
        if running {
            return Ok(false);
        }
        self.inner.update(&key, |s| {
            s.replicas.clear();
            s.report = None;
            s.phase = Phase::Waiting;
            s.reason = String::new();
        });
        self.spawn_driver(&key, true);
        Ok(true)
    }

    /// Restart a service: each running replica of its live revision is
    /// stopped and started again at once; a stopped service is started.
    pub async fn restart_service(&self, name: &str) -> Result<(), ControlError> {
        let key = self
            .live_key(name)
            .ok_or_else(|| ControlError::UnknownService(name.to_owned()))?;
        let senders = {
            let t = self.inner.table.lock();
            t.entries.get(&key).and_then(|e| {
                (e.running() && !e.status.replicas.is_empty()).then(|| e.restart.clone())
            })
        };
        match senders {
            Some(s) => {
                for tx in s {
                    let _ = tx.send(());
                }
            }
            None => {
                self.start_service(name)?;
            }
        }
        Ok(())
    }

    /// Stop everything, dependents before their dependencies; independent
    /// services stop in parallel.
    pub async fn stop_all(&self) {
        for wave in stop_waves(&self.inner.cfg.plan) {
            let mut set = tokio::task::JoinSet::new();
            for name in wave {
                let rt = self.clone();
                set.spawn(async move { rt.stop_service(&name).await });
            }
            while set.join_next().await.is_some() {}
        }
        crate::secret_files::remove_project(&self.inner.cfg.manifest.name);
        if let Some(d) = &self.inner.cfg.containers {
            d.release(&self.inner.cfg.manifest.name).await;
        }
    }

    /// Remove the project's container volumes (after `stop_all`); their names.
    pub async fn remove_volumes(&self) -> Vec<String> {
        match &self.inner.cfg.containers {
            Some(d) => d.remove_volumes(&self.inner.cfg.manifest.name).await,
            None => Vec::new(),
        }
    }
}

/// Group services into waves for stopping: each wave holds the services all
/// of whose dependents are in earlier waves.
pub fn stop_waves(plan: &StartPlan) -> Vec<Vec<String>> {
    let mut done: HashSet<String> = HashSet::new();
    let mut waves = Vec::new();
    while done.len() < plan.order.len() {
        let wave: Vec<String> = plan
            .order
            .iter()
            .filter(|s| !done.contains(*s))
            .filter(|s| plan.dependents(s).iter().all(|d| done.contains(d)))
            .cloned()
            .collect();
        if wave.is_empty() {
            // Only reachable with a cycle, which validation rejects: stop the rest together.
            waves.push(
                plan.order
                    .iter()
                    .filter(|s| !done.contains(*s))
                    .cloned()
                    .collect(),
            );
            break;
        }
        done.extend(wave.iter().cloned());
        waves.push(wave);
    }
    waves
}
