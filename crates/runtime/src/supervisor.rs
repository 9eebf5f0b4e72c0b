//! The supervisor: starts services along the plan as their dependencies'
//! conditions are met, runs each replica through probe, restart and stop,
//! and keeps the status table every other part reads.
//!
//! One task per service waits on its gate; one task per replica owns its
//! process. They publish into a status table (short std-mutex sections,
//! never held across an await) and bump a watch counter so waiters re-decide.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orchestra_manifest::{Check, Manifest, Probe, Restart, Service, Workload};
use orchestra_plan::{Gate, StartPlan, gate_all};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backoff::{self, CRASH_LOOP_AFTER, Ended, Exit, Next};
use crate::diagnose::{self, Evidence};
use crate::driver::process::ProcessDriver;
use crate::driver::{Driver, ReplicaSpec};
use crate::logs::{LogHub, LogLine, Stream};
use crate::probe::{self, ExecContext, Failure, ProbeResult};
use crate::procfs;
use crate::status::{self, FailureReport, Phase, PlatformStatus, ReplicaStatus, ServiceStatus};

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

/// One running revision of a service: its status and the handles that control it.
struct Entry {
    service: String,
    def: Arc<Service>,
    status: ServiceStatus,
    stop: Option<watch::Sender<bool>>,
    restart: Vec<mpsc::UnboundedSender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Instances by key (`service@revision`), and which one of each service is live.
#[derive(Default)]
struct Table {
    entries: BTreeMap<String, Entry>,
    live: HashMap<String, String>,
}

impl Table {
    fn live_entry(&self, service: &str) -> Option<&Entry> {
        self.live.get(service).and_then(|k| self.entries.get(k))
    }
}

struct Inner {
    cfg: RuntimeConfig,
    processes: Arc<dyn Driver>,
    table: Mutex<Table>,
    changed: watch::Sender<u64>,
    events: mpsc::UnboundedSender<Event>,
    logs: Arc<LogHub>,
    ports: Mutex<HashSet<u16>>,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the supervisor down with it.
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn now_ms() -> i64 {
    orchestra_state::now_ms()
}

fn kind_of(w: &Workload) -> &'static str {
    match w {
        Workload::Process { .. } => "process",
        Workload::Image { .. } => "image",
        Workload::Build { .. } => "build",
    }
}

/// The key of one revision of a service in the runtime.
pub fn instance_key(service: &str, revision: &str) -> String {
    format!("{service}@{revision}")
}

/// How long a replica must stay healthy before its restart streak resets.
const STREAK_RESET: Duration = Duration::from_secs(10);
/// Until the first success, HTTP and TCP probes run this often, so that a
/// dependent starts as soon as its dependency is up (a refused connect costs
/// microseconds)...
const FAST_PROBE: Duration = Duration::from_millis(5);
/// ...for this long after the start; slower starters are probed less eagerly.
const FAST_PROBE_FOR: Duration = Duration::from_secs(2);
const SLOW_START_PROBE: Duration = Duration::from_millis(25);
/// Same for exec probes, which cost a process each.
const FAST_EXEC_PROBE: Duration = Duration::from_millis(200);

fn new_entry(svc: &Service, role: &str) -> Entry {
    let revision = svc.revision();
    Entry {
        service: svc.name.clone(),
        def: Arc::new(svc.clone()),
        status: ServiceStatus {
            name: svc.name.clone(),
            kind: kind_of(&svc.workload).to_owned(),
            revision: revision.clone(),
            instance: instance_key(&svc.name, &revision),
            role: role.to_owned(),
            phase: Phase::Waiting,
            reason: String::new(),
            waiting_on: Vec::new(),
            replicas: Vec::new(),
            report: None,
        },
        stop: None,
        restart: Vec::new(),
        task: None,
    }
}

impl Runtime {
    /// Start the plan. Returns at once; services come up in the background.
    /// Events arrive on the returned receiver.
    pub fn start(cfg: RuntimeConfig) -> (Runtime, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let (changed, _) = watch::channel(0);
        let logs = Arc::new(LogHub::new(&cfg.log_dir));
        let mut table = Table::default();
        let mut keys = Vec::new();
        for name in &cfg.plan.order {
            if let Some(svc) = cfg.manifest.service(name) {
                let e = new_entry(svc, "live");
                let key = e.status.instance.clone();
                table.live.insert(name.clone(), key.clone());
                table.entries.insert(key.clone(), e);
                keys.push(key);
            }
        }
        let rt = Runtime {
            inner: Arc::new(Inner {
                processes: Arc::new(ProcessDriver {
                    shim: cfg.shim.clone(),
                }),
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
        let Some(def) = lock(&self.inner.table)
            .entries
            .get(key)
            .map(|e| e.def.clone())
        else {
            return;
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..def.replicas).map(|_| mpsc::unbounded_channel()).unzip();
        let task = tokio::spawn(drive(
            self.inner.clone(),
            key.to_owned(),
            def,
            gated,
            stop_rx,
            receivers,
        ));
        let mut t = lock(&self.inner.table);
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
        let t = lock(&self.inner.table);
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
        lock(&self.inner.table)
            .live_entry(name)
            .map(|e| e.status.clone())
    }

    /// Every running revision of one service (live first).
    pub fn instances(&self, name: &str) -> Vec<ServiceStatus> {
        let t = lock(&self.inner.table);
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
        lock(&self.inner.table)
            .entries
            .get(key)
            .map(|e| e.status.clone())
    }

    /// The definition an instance runs.
    pub fn instance_def(&self, key: &str) -> Option<Arc<Service>> {
        lock(&self.inner.table)
            .entries
            .get(key)
            .map(|e| e.def.clone())
    }

    /// The live instance key of a service.
    pub fn live_key(&self, service: &str) -> Option<String> {
        lock(&self.inner.table).live.get(service).cloned()
    }

    /// Start another revision of a service beside the live one, not gated on
    /// dependencies (they are running). Returns its instance key. Starting a
    /// revision that already runs returns the existing key.
    pub fn start_revision(&self, svc: &Service, role: &str) -> String {
        let key = instance_key(&svc.name, &svc.revision());
        let exists = {
            let mut t = lock(&self.inner.table);
            match t.entries.get_mut(&key) {
                Some(e) => {
                    e.status.role = role.to_owned();
                    e.task.as_ref().is_some_and(|t| !t.is_finished())
                }
                None => {
                    t.entries.insert(key.clone(), new_entry(svc, role));
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
            let mut t = lock(&self.inner.table);
            let service = t.entries.get(key)?.service.clone();
            let prev = t.live.insert(service, key.to_owned());
            if let Some(p) = &prev
                && p != key
                && let Some(e) = t.entries.get_mut(p)
            {
                e.status.role = "previous".into();
            }
            if let Some(e) = t.entries.get_mut(key) {
                e.status.role = "live".into();
            }
            prev
        };
        self.inner.bump();
        prev.filter(|p| p != key)
    }

    /// Set an instance's role label (`candidate`, `canary`, `warm`...).
    pub fn set_role(&self, key: &str, role: &str) {
        self.inner.update(key, |s| s.role = role.to_owned());
    }

    /// Loopback addresses of an instance's replicas that are healthy and ready.
    pub fn ready_addrs(&self, key: &str) -> Vec<std::net::SocketAddr> {
        lock(&self.inner.table)
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
        let mut t = lock(&self.inner.table);
        let is_live = t.live.values().any(|k| k == key);
        if !is_live {
            t.entries.remove(key);
        }
        drop(t);
        self.inner.bump();
    }

    async fn stop_instance(&self, key: &str) {
        let task = {
            let mut t = lock(&self.inner.table);
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
        let t = lock(&self.inner.table);
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
        let running = lock(&self.inner.table)
            .entries
            .get(&key)
            .is_some_and(|e| e.task.as_ref().is_some_and(|t| !t.is_finished()));
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
            let t = lock(&self.inner.table);
            t.entries.get(&key).and_then(|e| {
                (e.task.as_ref().is_some_and(|t| !t.is_finished()) && !e.status.replicas.is_empty())
                    .then(|| e.restart.clone())
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

impl Inner {
    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn update(&self, key: &str, f: impl FnOnce(&mut ServiceStatus)) {
        {
            let mut t = lock(&self.table);
            if let Some(e) = t.entries.get_mut(key) {
                f(&mut e.status);
                e.status.refresh();
            }
        }
        self.bump();
    }

    fn update_replica(&self, key: &str, idx: u32, f: impl FnOnce(&mut ReplicaStatus)) {
        self.update(key, |s| {
            if let Some(r) = s.replicas.get_mut(idx as usize) {
                f(r);
            }
        });
    }

    /// Record a probe result without waking every waiter: a failed probe
    /// while starting changes nothing anyone decides on, and they come
    /// every few milliseconds.
    fn record_probe_quietly(&self, key: &str, idx: u32, p: ProbeResult) {
        let mut t = lock(&self.table);
        if let Some(r) = t
            .entries
            .get_mut(key)
            .and_then(|e| e.status.replicas.get_mut(idx as usize))
        {
            r.record_probe(p);
        }
    }

    fn emit(
        &self,
        instance: &str,
        service: &str,
        replica: Option<u32>,
        kind: EventKind,
        reason: impl Into<String>,
    ) {
        self.emit_process(instance, service, replica, kind, reason, None);
    }

    fn emit_process(
        &self,
        instance: &str,
        service: &str,
        replica: Option<u32>,
        kind: EventKind,
        reason: impl Into<String>,
        process: Option<ProcessInfo>,
    ) {
        let reason = reason.into();
        self.logs.push(LogLine {
            at_ms: now_ms(),
            service: service.to_owned(),
            replica: replica.unwrap_or(0),
            stream: Stream::Orchestra,
            text: if reason.is_empty() {
                kind.as_str().to_owned()
            } else {
                format!("{}: {reason}", kind.as_str())
            },
        });
        let _ = self.events.send(Event {
            at_ms: now_ms(),
            instance: instance.to_owned(),
            service: service.to_owned(),
            replica,
            kind,
            reason,
            process,
        });
    }

    fn restart_policy(&self, name: &str) -> Restart {
        self.cfg
            .manifest
            .service(name)
            .map(|s| s.restart.policy)
            .unwrap_or(Restart::No)
    }

    fn alloc_port(&self) -> std::io::Result<u16> {
        let mut used = lock(&self.ports);
        for _ in 0..64 {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let port = l.local_addr()?.port();
            if used.insert(port) {
                return Ok(port);
            }
        }
        Err(std::io::Error::other("no free port found"))
    }

    /// The driver that runs this kind of workload.
    fn driver_for(&self, w: &Workload) -> Result<Arc<dyn Driver>, String> {
        match (w, &self.cfg.containers) {
            (Workload::Process { .. }, _) => Ok(self.processes.clone()),
            (_, Some(d)) => Ok(d.clone()),
            (_, None) => Err(
                "container services (`image`/`build`) are not supported by this version's runtime yet"
                    .into(),
            ),
        }
    }

    fn release_port(&self, port: u16) {
        lock(&self.ports).remove(&port);
    }
}

async fn drive(
    inner: Arc<Inner>,
    key: String,
    svc: Arc<Service>,
    gated: bool,
    mut stop: watch::Receiver<bool>,
    restarts: Vec<mpsc::UnboundedReceiver<()>>,
) {
    let name = svc.name.clone();
    let edges = if gated {
        inner.cfg.plan.deps.get(&name).cloned().unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut changed = inner.changed.subscribe();
    let mut announced = false;
    loop {
        if *stop.borrow() {
            return;
        }
        changed.borrow_and_update();
        let (gate, waiting) = {
            let t = lock(&inner.table);
            let (g, w) = gate_all(&edges, |dep| {
                let obs = t
                    .live_entry(dep)
                    .map(|e| e.status.observed())
                    .unwrap_or_default();
                (obs, inner.restart_policy(dep))
            });
            (g, w.into_iter().map(str::to_owned).collect::<Vec<_>>())
        };
        match gate {
            Gate::Open => break,
            Gate::Blocked(reason) => {
                let report = FailureReport {
                    service: name.clone(),
                    replica: 0,
                    at_ms: now_ms(),
                    summary: format!("not started: {reason}"),
                    cause: Some(format!("a dependency failed: {reason}")),
                    exit: None,
                    probes: Vec::new(),
                    logs: Vec::new(),
                };
                inner.update(&key, |s| {
                    s.phase = Phase::Blocked;
                    s.reason = reason.clone();
                    s.waiting_on.clear();
                    s.report = Some(report);
                });
                inner.emit(&key, &name, None, EventKind::Blocked, reason);
                return;
            }
            Gate::Waiting => {
                let what: Vec<String> = edges
                    .iter()
                    .filter(|e| waiting.contains(&e.service))
                    .map(|e| format!("{} ({})", e.service, condition_word(e.condition)))
                    .collect();
                let reason = format!("waiting for {}", what.join(", "));
                inner.update(&key, |s| {
                    s.phase = Phase::Waiting;
                    s.reason = reason.clone();
                    s.waiting_on = waiting.clone();
                });
                if !announced {
                    inner.emit(&key, &name, None, EventKind::Waiting, reason);
                    announced = true;
                }
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return },
                    _ = stop.changed() => {}
                }
            }
        }
    }
    inner.update(&key, |s| {
        s.waiting_on.clear();
        s.replicas = (0..svc.replicas).map(ReplicaStatus::new).collect();
        for r in &mut s.replicas {
            r.phase = Phase::Starting;
        }
    });
    let tasks: Vec<JoinHandle<()>> = restarts
        .into_iter()
        .enumerate()
        .map(|(i, rx)| {
            tokio::spawn(replica(
                inner.clone(),
                key.clone(),
                svc.clone(),
                i as u32,
                stop.clone(),
                rx,
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

fn condition_word(c: orchestra_manifest::Condition) -> &'static str {
    match c {
        orchestra_manifest::Condition::Started => "started",
        orchestra_manifest::Condition::Healthy => "healthy",
        orchestra_manifest::Condition::Completed => "completed",
    }
}

pub use crate::driver::process::{reap_group, resolve_program};

#[allow(clippy::too_many_lines)]
async fn replica(
    inner: Arc<Inner>,
    key: String,
    svc: Arc<Service>,
    idx: u32,
    mut stop: watch::Receiver<bool>,
    mut restart_rx: mpsc::UnboundedReceiver<()>,
) {
    let name = svc.name.clone();
    // A free port for the replica's life: processes listen on it across
    // restarts; container drivers say where they publish instead.
    let reserved = match inner.alloc_port() {
        Ok(p) => p,
        Err(e) => {
            fail(
                &inner,
                &key,
                &svc,
                idx,
                format!("no port could be assigned: {e}"),
                None,
            )
            .await;
            return;
        }
    };
    let mut streak: u32 = 0;
    let mut total_restarts: u32 = 0;
    let mut crash_loop_announced = false;
    let mut last_end: Option<String> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let driver = match inner.driver_for(&svc.workload) {
            Ok(d) => d,
            Err(why) => {
                fail(&inner, &key, &svc, idx, why, None).await;
                break;
            }
        };
        let spec = ReplicaSpec {
            project: inner.cfg.manifest.name.clone(),
            service: svc.clone(),
            revision: svc.revision(),
            instance: key.clone(),
            replica: idx,
            port: reserved,
            dir: svc
                .working_dir
                .clone()
                .unwrap_or_else(|| inner.cfg.manifest.dir.clone()),
            logs: inner.logs.clone(),
        };
        let mut running = match driver.start(&spec).await {
            Ok(r) => r,
            Err(e) => {
                let evidence = e.cause.map(|c| Evidence {
                    spawn_error: Some(c),
                    port: reserved,
                    ..Default::default()
                });
                fail(&inner, &key, &svc, idx, e.summary, evidence).await;
                break;
            }
        };
        let started = Instant::now();
        let port = running.port();
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
        inner.update_replica(&key, idx, |r| {
            r.pid = pid;
            r.container = container.clone();
            r.port = Some(port);
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
            r.reason = match &last_end {
                Some(why) => format!("restarted after: {why}"),
                None => format!("started ({what}, port {port})"),
            };
        });
        match &last_end {
            None => inner.emit_process(
                &key,
                &name,
                Some(idx),
                EventKind::Started,
                format!("{what}, port {port}"),
                info,
            ),
            Some(why) => inner.emit_process(
                &key,
                &name,
                Some(idx),
                EventKind::Restarted,
                format!("restart {total_restarts}, {what}, port {port}, after: {why}"),
                info,
            ),
        }
        if !has_probe {
            inner.emit(
                &key,
                &name,
                Some(idx),
                EventKind::Healthy,
                "running (no healthcheck)",
            );
        }

        let ctx = running.exec_context();
        let ended;
        let mut stop_requested = false;
        let mut restart_requested = false;
        {
            let health = watch_health(&inner, &key, &svc, idx, port, started, &ctx);
            tokio::pin!(health);
            loop {
                tokio::select! {
                    exit = running.wait() => {
                        ended = Ended::Exited(exit);
                        break;
                    }
                    reason = &mut health => {
                                let listening = running.listening_ports().await;
                                let report = build_report(&inner, &key, &svc, idx, port, started, listening, reason.clone(), None).await;
                                inner.update(&key, |s| {
                                    if let Some(r) = s.replicas.get_mut(idx as usize) {
                                        r.phase = Phase::Unhealthy;
                                        r.healthy = false;
                                        r.ready = false;
                                        r.reason = reason.clone();
                                    }
                                    s.report = Some(report);
                                });
                                inner.emit(&key, &name, Some(idx), EventKind::Unhealthy, reason);
                                let exit = running.stop(&svc.stop_signal, svc.stop_grace_period).await;
                                inner.emit(&key, &name, Some(idx), EventKind::Exited, format!("{exit} (stopped: unhealthy)"));
                                ended = Ended::Unhealthy;
                                break;
                    }
                    r = stop.changed() => {
                        if r.is_err() || *stop.borrow() {
                            stop_requested = true;
                            inner.update_replica(&key, idx, |r| { r.phase = Phase::Stopping; r.reason = "stopping".into(); });
                            let exit = running.stop(&svc.stop_signal, svc.stop_grace_period).await;
                            ended = Ended::Exited(exit);
                            break;
                        }
                    }
                    Some(()) = restart_rx.recv() => {
                        restart_requested = true;
                        let exit = running.stop(&svc.stop_signal, svc.stop_grace_period).await;
                        ended = Ended::Exited(exit);
                        break;
                    }
                }
            }
        }
        running.finish().await;
        let exit = match ended {
            Ended::Exited(e) => Some(e),
            Ended::Unhealthy => None,
        };
        if let Some(e) = exit
            && !matches!(ended, Ended::Unhealthy)
        {
            inner.emit(&key, &name, Some(idx), EventKind::Exited, e.to_string());
        }
        inner.update_replica(&key, idx, |r| {
            r.pid = None;
            if let Some(e) = exit {
                r.last_exit = Some(e);
            }
        });
        if stop_requested {
            inner.update_replica(&key, idx, |r| {
                r.phase = Phase::Stopped;
                r.healthy = false;
                r.ready = false;
                r.reason = "stopped".into();
            });
            inner.emit(
                &key,
                &name,
                Some(idx),
                EventKind::Stopped,
                exit.map(|e| e.to_string()).unwrap_or_default(),
            );
            break;
        }
        if restart_requested {
            total_restarts += 1;
            streak = 0;
            last_end = Some("restart requested".into());
            continue;
        }
        let was_healthy = lock(&inner.table)
            .entries
            .get(&key)
            .and_then(|e| e.status.replicas.get(idx as usize).map(|r| r.healthy))
            .unwrap_or(false);
        let lived = started.elapsed();
        if was_healthy && lived >= STREAK_RESET {
            streak = 0;
            crash_loop_announced = false;
        }
        // An exit before becoming healthy (or, without a healthcheck, soon
        // after starting) is a failed start: report it.
        let failed_start = !was_healthy || (svc.healthcheck.is_none() && lived < STREAK_RESET);
        if failed_start
            && let Some(e) = exit
            && !e.success()
        {
            let report = report_after_exit(&inner, &key, &svc, idx, port, started, e).await;
            inner.update(&key, |s| s.report = Some(report));
        }
        let why = match ended {
            Ended::Exited(e) => e.to_string(),
            Ended::Unhealthy => "failed its healthcheck".to_owned(),
        };
        match backoff::next(&svc.restart, ended, streak, rand::random::<f64>()) {
            Next::Completed => {
                inner.update_replica(&key, idx, |r| {
                    r.phase = Phase::Completed;
                    r.healthy = false;
                    r.ready = false;
                    r.reason = "completed (exit 0)".into();
                });
                inner.emit(&key, &name, Some(idx), EventKind::Completed, "exit 0");
                break;
            }
            Next::Stay(reason) => {
                inner.update_replica(&key, idx, |r| {
                    r.phase = Phase::Exited;
                    r.healthy = false;
                    r.ready = false;
                    r.reason = reason.clone();
                });
                break;
            }
            Next::GiveUp(reason) => {
                inner.update_replica(&key, idx, |r| {
                    r.phase = Phase::Failed;
                    r.healthy = false;
                    r.ready = false;
                    r.reason = reason.clone();
                });
                inner.emit(&key, &name, Some(idx), EventKind::Failed, reason);
                break;
            }
            Next::Restart(delay) => {
                streak += 1;
                total_restarts += 1;
                // The streak only resets after a stable run, so it counts failed starts.
                let looping = streak >= CRASH_LOOP_AFTER;
                let reason = format!(
                    "{why}; restarting in {} (restart {total_restarts})",
                    diagnose::human(delay)
                );
                inner.update_replica(&key, idx, |r| {
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
                if looping && !crash_loop_announced {
                    crash_loop_announced = true;
                    inner.emit(
                        &key,
                        &name,
                        Some(idx),
                        EventKind::CrashLooping,
                        format!("{streak} failed starts in a row; last: {why}"),
                    );
                }
                last_end = Some(why);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    inner.update_replica(&key, idx, |r| {
                        r.phase = Phase::Stopped;
                        r.reason = "stopped".into();
                    });
                    inner.emit(
                        &key,
                        &name,
                        Some(idx),
                        EventKind::Stopped,
                        "while waiting to restart",
                    );
                    break;
                }
            }
        }
    }
    inner.release_port(reserved);
}

/// Startup, then liveness, with readiness alongside. Only resolves when the
/// replica must be restarted: with the reason.
async fn watch_health(
    inner: &Inner,
    key: &str,
    svc: &Service,
    idx: u32,
    port: u16,
    started: Instant,
    ctx: &ExecContext,
) -> String {
    let name = &svc.name;
    let readiness = async {
        match &svc.readiness {
            Some(p) => readiness_loop(inner, key, idx, p, port, ctx).await,
            None => std::future::pending::<()>().await,
        }
    };
    let health = async {
        let Some(p) = &svc.healthcheck else {
            return std::future::pending::<String>().await;
        };
        let mut failures_after_grace = 0u32;
        // Most services print a line when they start listening: probe at once
        // when the replica prints something, instead of waiting for the next tick.
        let mut output = inner.logs.subscribe();
        loop {
            let r = probe::run(&p.check, port, p.timeout, ctx).await;
            let ok = r.ok();
            let summary = r.summary();
            if ok {
                inner.update_replica(key, idx, |rs| rs.record_probe(r));
            } else {
                inner.record_probe_quietly(key, idx, r);
            }
            if ok {
                let took = started.elapsed();
                inner.update(key, |s| {
                    if let Some(r) = s.replicas.get_mut(idx as usize) {
                        r.healthy = true;
                        if svc.readiness.is_none() {
                            r.ready = true;
                        }
                        r.phase = Phase::Healthy;
                        r.reason = format!("healthy after {}", diagnose::human(took));
                    }
                    s.report = None;
                });
                inner.emit(
                    key,
                    name,
                    Some(idx),
                    EventKind::Healthy,
                    format!("after {}", diagnose::human(took)),
                );
                break;
            }
            if started.elapsed() >= p.start_period {
                failures_after_grace += 1;
                if failures_after_grace >= p.retries {
                    return format!(
                        "did not become healthy within start_period {} and {} more probe(s): {summary}",
                        diagnose::human(p.start_period),
                        p.retries
                    );
                }
                tokio::time::sleep(p.interval).await;
            } else {
                let left = p.start_period.saturating_sub(started.elapsed());
                let tick = tokio::time::sleep(
                    fast_cadence(p, started.elapsed()).min(left.max(Duration::from_millis(1))),
                );
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        _ = &mut tick => break,
                        line = output.recv() => match line {
                            Ok(l) if l.service == *name && l.replica == idx && l.stream != Stream::Orchestra => break,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(_) => {
                                (&mut tick).await;
                                break;
                            }
                        },
                    }
                }
            }
        }
        // Liveness.
        let mut consecutive = 0u32;
        loop {
            tokio::time::sleep(p.interval).await;
            let r = probe::run(&p.check, port, p.timeout, ctx).await;
            let ok = r.ok();
            let summary = r.summary();
            inner.update_replica(key, idx, |rs| rs.record_probe(r));
            if ok {
                if consecutive > 0 {
                    inner.update_replica(key, idx, |rs| {
                        rs.healthy = true;
                        rs.phase = Phase::Healthy;
                        rs.reason = "healthy again".into();
                    });
                }
                consecutive = 0;
            } else {
                consecutive += 1;
                if consecutive >= p.retries {
                    return format!("healthcheck failed {consecutive} times in a row: {summary}");
                }
            }
        }
    };
    tokio::select! {
        h = health => h,
        _ = readiness => String::new(),
    }
}

fn fast_cadence(p: &Probe, since_start: Duration) -> Duration {
    let fast = match p.check {
        Check::Exec { .. } => FAST_EXEC_PROBE,
        _ if since_start < FAST_PROBE_FOR => FAST_PROBE,
        _ => SLOW_START_PROBE,
    };
    fast.min(p.interval)
}

async fn readiness_loop(
    inner: &Inner,
    name: &str,
    idx: u32,
    p: &Probe,
    port: u16,
    ctx: &ExecContext,
) {
    let mut was_ready = false;
    loop {
        let r = probe::run(&p.check, port, p.timeout, ctx).await;
        let ok = r.ok();
        if ok != was_ready {
            was_ready = ok;
            inner.update_replica(name, idx, |rs| rs.ready = ok);
        }
        tokio::time::sleep(if ok {
            p.interval
        } else {
            fast_cadence(p, Duration::ZERO)
        })
        .await;
    }
}

async fn fail(
    inner: &Inner,
    key: &str,
    svc: &Service,
    idx: u32,
    summary: String,
    evidence: Option<Evidence>,
) {
    let cause = evidence.as_ref().and_then(diagnose::likely_cause);
    let report = FailureReport {
        service: svc.name.clone(),
        replica: idx,
        at_ms: now_ms(),
        summary: summary.clone(),
        cause,
        exit: None,
        probes: Vec::new(),
        logs: Vec::new(),
    };
    inner.update(key, |s| {
        if let Some(r) = s.replicas.get_mut(idx as usize) {
            r.phase = Phase::Failed;
            r.reason = summary.clone();
        }
        s.report = Some(report);
    });
    inner.emit(key, &svc.name, Some(idx), EventKind::Failed, summary);
}

fn recent_logs(inner: &Inner, name: &str, idx: u32) -> Vec<String> {
    let lines: Vec<String> = inner
        .logs
        .tail(Some(name), 200)
        .into_iter()
        .filter(|l| l.replica == idx && l.stream != Stream::Orchestra)
        .map(|l| l.render())
        .collect();
    let skip = lines.len().saturating_sub(20);
    lines[skip..].to_vec()
}

#[allow(clippy::too_many_arguments)]
async fn build_report(
    inner: &Inner,
    key: &str,
    svc: &Service,
    idx: u32,
    port: u16,
    started: Instant,
    listening: Vec<u16>,
    summary: String,
    exit: Option<Exit>,
) -> FailureReport {
    let probes: Vec<ProbeResult> = lock(&inner.table)
        .entries
        .get(key)
        .and_then(|e| {
            e.status
                .replicas
                .get(idx as usize)
                .map(|r| r.probes.iter().cloned().collect())
        })
        .unwrap_or_default();
    let alternatives = match (
        &svc.healthcheck,
        probes.last().and_then(|p| p.failure.clone()),
    ) {
        (Some(p), Some(Failure::Status(404))) => find_served_path(&p.check, port).await,
        _ => Vec::new(),
    };
    let logs = recent_logs(inner, &svc.name, idx);
    let evidence = Evidence {
        check: svc.healthcheck.as_ref().map(|p| p.check.clone()),
        port,
        probes: probes.clone(),
        exit,
        listening,
        elapsed: started.elapsed(),
        start_period: svc
            .healthcheck
            .as_ref()
            .map(|p| p.start_period)
            .unwrap_or_default(),
        timeout: svc
            .healthcheck
            .as_ref()
            .map(|p| p.timeout)
            .unwrap_or_default(),
        log_tail: logs.clone(),
        spawn_error: None,
        alternatives,
    };
    FailureReport {
        service: svc.name.clone(),
        replica: idx,
        at_ms: now_ms(),
        summary,
        cause: diagnose::likely_cause(&evidence),
        exit,
        probes: probes.iter().map(ProbeResult::summary).collect(),
        logs,
    }
}

async fn report_after_exit(
    inner: &Inner,
    key: &str,
    svc: &Service,
    idx: u32,
    port: u16,
    started: Instant,
    exit: Exit,
) -> FailureReport {
    let probes: Vec<ProbeResult> = lock(&inner.table)
        .entries
        .get(key)
        .and_then(|e| {
            e.status
                .replicas
                .get(idx as usize)
                .map(|r| r.probes.iter().cloned().collect())
        })
        .unwrap_or_default();
    // Log readers may still be flushing the last lines.
    tokio::task::yield_now().await;
    let logs = recent_logs(inner, &svc.name, idx);
    let evidence = Evidence {
        check: svc.healthcheck.as_ref().map(|p| p.check.clone()),
        port,
        probes: probes.clone(),
        exit: Some(exit),
        elapsed: started.elapsed(),
        log_tail: logs.clone(),
        ..Default::default()
    };
    FailureReport {
        service: svc.name.clone(),
        replica: idx,
        at_ms: now_ms(),
        summary: if svc.healthcheck.is_some() {
            format!("{exit} before becoming healthy")
        } else {
            format!("{exit} right after starting")
        },
        cause: diagnose::likely_cause(&evidence),
        exit: Some(exit),
        probes: probes.iter().map(ProbeResult::summary).collect(),
        logs,
    }
}

/// When the probe path answers 404, look for the health path the service
/// does serve, to suggest it.
async fn find_served_path(check: &Check, port: u16) -> Vec<String> {
    let (probe_path, probe_port) = match check {
        Check::Http { path, port: p } => (path.as_str(), p.unwrap_or(port)),
        _ => return Vec::new(),
    };
    let mut found = Vec::new();
    for candidate in [
        "/health", "/healthz", "/ready", "/readyz", "/status", "/ping", "/",
    ] {
        if candidate == probe_path {
            continue;
        }
        let r = tokio::time::timeout(
            Duration::from_millis(500),
            probe::http_get(probe_port, candidate),
        )
        .await;
        if matches!(r, Ok(Ok(_))) {
            found.push(candidate.to_owned());
        }
    }
    found
}
