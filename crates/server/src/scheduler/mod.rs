//! The scheduler: one task per scheduled item sleeps until its next tick,
//! then starts what the item names, through the runtime (the same driver,
//! environment, secrets, user and logs as any service), and records each
//! run's start and end (exit code, last log lines) in the event log.
//!
//! What a tick starts is a [`ScheduledAction`]: a run of a scheduled job's
//! service, or a backup of a data service (`backup.schedule`). Whether a tick starts, is dropped or waits is decided
//! by the pure functions of [`decide`].
//!
//! `up` does not run a scheduled job: its first run is its first tick (or
//! `orchestra jobs run NAME`). `@every` counts from when the daemon started.

pub mod api;
pub mod decide;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use orchestra_manifest::{Concurrency, Manifest, Schedule, Service};
use orchestra_runtime::Runtime;
use orchestra_runtime::backoff::Exit;
use orchestra_runtime::logs::Stream;
use orchestra_runtime::status::{Phase, ServiceStatus};
use orchestra_state::StateStore;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use decide::TickAction;

/// Log lines of a run kept with its end (in the event and in `jobs --json`).
pub const LAST_LOG_LINES: usize = 20;
/// Ended runs each job keeps in memory for `orchestra jobs`.
const RUNS_KEPT: usize = 10;

/// What a tick starts.
#[derive(Debug, Clone)]
pub enum ScheduledAction {
    /// One run of a scheduled job's service.
    RunService(Arc<Service>),
    /// A backup of this data service, as `orchestra backup run` takes it.
    Backup(String),
}

impl ScheduledAction {
    fn kind(&self) -> &'static str {
        match self {
            ScheduledAction::RunService(_) => "service",
            ScheduledAction::Backup(_) => "backup",
        }
    }

    /// The service its events are recorded under, and their kind's prefix
    /// (`job-started`, `backup-finished`).
    fn subject<'a>(&'a self, name: &'a str) -> (&'a str, &'static str) {
        match self {
            ScheduledAction::RunService(_) => (name, "job"),
            ScheduledAction::Backup(svc) => (svc, "backup"),
        }
    }
}

/// One thing on a timetable.
#[derive(Debug, Clone)]
pub struct ScheduledItem {
    /// Its name (the service's, for a job).
    pub name: String,
    /// When it runs.
    pub schedule: Schedule,
    /// What a tick does while a run is going.
    pub concurrency: Concurrency,
    /// What a tick starts.
    pub action: ScheduledAction,
}

impl ScheduledItem {
    /// The item a service with `schedule:` is.
    #[must_use]
    pub fn for_service(svc: &Service) -> Option<Self> {
        let job = svc.schedule.as_ref()?;
        Some(Self {
            name: svc.name.clone(),
            schedule: job.schedule.clone(),
            concurrency: job.concurrency,
            action: ScheduledAction::RunService(Arc::new(svc.clone())),
        })
    }

    /// The item a data service's `backup.schedule` is, named `backup:SERVICE`.
    /// Backups never overlap: a tick while one is being taken is skipped.
    #[must_use]
    pub fn for_backup(svc: &Service) -> Option<Self> {
        let schedule = svc.backup.as_ref()?.schedule.clone()?;
        Some(Self {
            name: format!("backup:{}", svc.name),
            schedule,
            concurrency: Concurrency::Skip,
            action: ScheduledAction::Backup(svc.name.clone()),
        })
    }

    /// Every item a service brings: its own schedule and its backup's.
    pub fn for_service_all(svc: &Service) -> impl Iterator<Item = Self> {
        Self::for_service(svc)
            .into_iter()
            .chain(Self::for_backup(svc))
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// A tick of the schedule.
    Schedule,
    /// A tick that waited for the previous run (`concurrency: queue`).
    Queued,
    /// `orchestra jobs run NAME`.
    Manual,
}

impl Trigger {
    fn describe(self) -> &'static str {
        match self {
            Trigger::Schedule => "scheduled tick",
            Trigger::Queued => "queued tick",
            Trigger::Manual => "run now",
        }
    }
}

/// One run, going or ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// 1, 2, ... since the daemon started.
    pub run: u64,
    /// What started it.
    pub trigger: Trigger,
    /// When it started (ms since the epoch).
    pub started_at_ms: i64,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
    /// How long it took (ms).
    pub duration_ms: Option<i64>,
    /// Its exit code (128+N for signal N); `None` while going, or when it never started.
    pub exit_code: Option<i32>,
    /// `running`, `succeeded`, `failed` or `stopped`.
    pub outcome: String,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Its last log lines (at most [`LAST_LOG_LINES`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

/// A scheduled item as `orchestra jobs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Its name.
    pub name: String,
    /// What a tick starts (`service`).
    pub kind: &'static str,
    /// The schedule as written (`@every 2s`, `0 3 * * * (Europe/Paris)`).
    pub schedule: String,
    /// `skip` or `queue`.
    pub concurrency: Concurrency,
    /// The next tick (ms since the epoch); `None` when the schedule never fires again.
    pub next_run_at_ms: Option<i64>,
    /// The run going now.
    pub running: Option<RunRecord>,
    /// A run waits for the current one to end.
    pub queued: bool,
    /// Ticks dropped because a run was going.
    pub skipped: u64,
    /// The last ended runs, oldest first.
    pub runs: Vec<RunRecord>,
}

/// Why `jobs run NAME` did not start a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunNowError {
    /// No service of that name.
    #[error("no service `{0}` in this platform")]
    Unknown(String),
    /// A service that has no `schedule:`.
    #[error(
        "`{0}` is not a scheduled job (it has no `schedule:`); use `orchestra restart {0}` for a service"
    )]
    NotScheduled(String),
    /// A run is going and the job does not queue.
    #[error(
        "`{name}` is still running (run {run}, started {since}); with `concurrency: skip` a new run waits for it to end"
    )]
    Running {
        /// The job.
        name: String,
        /// The run going.
        run: u64,
        /// When it started (RFC 3339).
        since: String,
    },
    /// The scheduler is stopping.
    #[error("the scheduler is stopping")]
    Stopping,
}

type RunNowReply = oneshot::Sender<Result<String, RunNowError>>;

struct Job {
    view: Arc<Mutex<JobView>>,
    run_now: mpsc::UnboundedSender<RunNowReply>,
}

/// The running scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    jobs: Arc<BTreeMap<String, Job>>,
    manifest: Arc<Manifest>,
    stop: watch::Sender<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("jobs", &self.jobs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Where a scheduler records what it does.
#[derive(Clone)]
pub struct Recorder {
    /// The state database.
    pub state: Arc<StateStore>,
    /// The daemon's run.
    pub run_id: i64,
}

impl Recorder {
    fn event(&self, service: &str, kind: &str, reason: &str) {
        if let Err(e) =
            self.state
                .record_event(Some(self.run_id), Some(service), None, kind, reason)
        {
            tracing::warn!("cannot record event: {e}");
        }
    }
}

impl Scheduler {
    /// Start one task per item.
    #[must_use]
    pub fn start(
        items: Vec<ScheduledItem>,
        manifest: Arc<Manifest>,
        runtime: Runtime,
        recorder: Recorder,
    ) -> Scheduler {
        let (stop, _) = watch::channel(false);
        let mut jobs = BTreeMap::new();
        let mut tasks = Vec::new();
        let anchor = orchestra_clock::now_ms();
        for item in items {
            let view = Arc::new(Mutex::new(JobView {
                name: item.name.clone(),
                kind: item.action.kind(),
                schedule: item.schedule.describe(),
                concurrency: item.concurrency,
                next_run_at_ms: decide::next_tick(&item.schedule, anchor, None, anchor),
                running: None,
                queued: false,
                skipped: 0,
                runs: Vec::new(),
            }));
            let (tx, rx) = mpsc::unbounded_channel();
            let driver = JobDriver {
                item: item.clone(),
                view: view.clone(),
                runtime: runtime.clone(),
                recorder: recorder.clone(),
                anchor,
                seq: 0,
                running: None,
                queued: false,
                runs: VecDeque::new(),
            };
            tasks.push(tokio::spawn(driver.drive(rx, stop.subscribe())));
            jobs.insert(item.name, Job { view, run_now: tx });
        }
        Scheduler {
            jobs: Arc::new(jobs),
            manifest,
            stop,
            tasks: Arc::new(Mutex::new(tasks)),
        }
    }

    /// Every item, by name.
    #[must_use]
    pub fn jobs(&self) -> Vec<JobView> {
        self.jobs.values().map(|j| j.view.lock().clone()).collect()
    }

    /// Whether `name` is a scheduled item.
    #[must_use]
    pub fn is_job(&self, name: &str) -> bool {
        self.jobs.contains_key(name)
    }

    /// Start a run of `name` now (under `queue`, after the current one).
    ///
    /// # Errors
    /// [`RunNowError`]: unknown, not scheduled, still running under `skip`.
    pub async fn run_now(&self, name: &str) -> Result<String, RunNowError> {
        let Some(job) = self.jobs.get(name) else {
            return Err(if self.manifest.service(name).is_some() {
                RunNowError::NotScheduled(name.to_owned())
            } else {
                RunNowError::Unknown(name.to_owned())
            });
        };
        let (tx, rx) = oneshot::channel();
        job.run_now.send(tx).map_err(|_| RunNowError::Stopping)?;
        rx.await.unwrap_or(Err(RunNowError::Stopping))
    }

    /// Stop ticking; stop the runs that are going and record them as stopped.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = self.tasks.lock().drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

struct Going {
    record: RunRecord,
    key: Option<String>,
}

struct Ended {
    run: u64,
    result: RunEnd,
}

/// How a run ended, by kind of action.
enum RunEnd {
    /// A job's run: its last status (`None`: it disappeared).
    Service(Box<Option<ServiceStatus>>),
    /// A backup: what was taken, or why not (with the tool's stderr).
    Backup(Result<String, String>),
}

/// One item's task and everything it owns.
struct JobDriver {
    item: ScheduledItem,
    view: Arc<Mutex<JobView>>,
    runtime: Runtime,
    recorder: Recorder,
    anchor: i64,
    seq: u64,
    running: Option<Going>,
    queued: bool,
    runs: VecDeque<RunRecord>,
}

impl JobDriver {
    async fn drive(
        mut self,
        mut run_now: mpsc::UnboundedReceiver<RunNowReply>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<Ended>();
        let mut last_tick = None;
        loop {
            let now = orchestra_clock::now_ms();
            let next = decide::next_tick(&self.item.schedule, now, last_tick, self.anchor);
            self.publish(next);
            let sleep = next.map(|n| Duration::from_millis(u64::try_from(n - now).unwrap_or(0)));
            tokio::select! {
                () = sleep_for(sleep) => {
                    last_tick = next;
                    self.tick(next.unwrap_or(now), &ended_tx);
                }
                Some(reply) = run_now.recv() => {
                    let answer = self.run_now(&ended_tx);
                    let _ = reply.send(answer);
                }
                Some(ended) = ended_rx.recv() => {
                    self.ended(ended);
                    if decide::after_run(self.queued) == TickAction::Start {
                        self.queued = false;
                        self.start(Trigger::Queued, &ended_tx);
                    }
                }
                _ = stop.wait_for(|v| *v) => break,
            }
        }
        self.queued = false;
        if let Some(going) = &self.running
            && let Some(key) = going.key.clone()
        {
            let run = going.record.run;
            let status = self.runtime.stop_job_run(&key).await;
            self.ended(Ended {
                run,
                result: RunEnd::Service(Box::new(status)),
            });
        }
        self.publish(None);
    }

    fn publish(&self, next: Option<i64>) {
        let mut v = self.view.lock();
        v.next_run_at_ms = next;
        v.running = self.running.as_ref().map(|g| g.record.clone());
        v.queued = self.queued;
        v.runs = self.runs.iter().cloned().collect();
    }

    /// Publish what changed, keeping the next tick.
    fn refresh(&self) {
        let next = self.view.lock().next_run_at_ms;
        self.publish(next);
    }

    fn tick(&mut self, at_ms: i64, ended: &mpsc::UnboundedSender<Ended>) {
        let (name, prefix) = self.item.action.subject(&self.item.name);
        let name = name.to_owned();
        match decide::on_tick(self.item.concurrency, self.running.is_some(), self.queued) {
            TickAction::Start => {
                self.start(Trigger::Schedule, ended);
            }
            TickAction::Queue => {
                self.queued = true;
                self.recorder.event(
                    &name,
                    &format!("{prefix}-queued"),
                    &format!(
                        "tick {} waits for run {} to end (concurrency: queue)",
                        orchestra_clock::format_secs(at_ms),
                        self.running_run()
                    ),
                );
            }
            action @ (TickAction::Skip | TickAction::AlreadyQueued) => {
                self.view.lock().skipped += 1;
                let why = if action == TickAction::Skip {
                    "concurrency: skip"
                } else {
                    "a run is already queued"
                };
                self.recorder.event(
                    &name,
                    &format!("{prefix}-skipped"),
                    &format!(
                        "tick {} skipped: run {} is still going ({why})",
                        orchestra_clock::format_secs(at_ms),
                        self.running_run()
                    ),
                );
            }
        }
    }

    fn running_run(&self) -> u64 {
        self.running.as_ref().map_or(0, |g| g.record.run)
    }

    fn run_now(&mut self, ended: &mpsc::UnboundedSender<Ended>) -> Result<String, RunNowError> {
        match decide::on_tick(self.item.concurrency, self.running.is_some(), self.queued) {
            TickAction::Start => {
                let run = self.start(Trigger::Manual, ended);
                Ok(format!("started run {run}"))
            }
            TickAction::Queue => {
                self.queued = true;
                Ok(format!(
                    "queued: starts when run {} ends",
                    self.running_run()
                ))
            }
            TickAction::AlreadyQueued => Ok(format!(
                "already queued: a run starts when run {} ends",
                self.running_run()
            )),
            TickAction::Skip => {
                let g = self.running.as_ref().map(|g| &g.record);
                Err(RunNowError::Running {
                    name: self.item.name.clone(),
                    run: g.map_or(0, |r| r.run),
                    since: orchestra_clock::format_secs(g.map_or(0, |r| r.started_at_ms)),
                })
            }
        }
    }

    /// Start a run; returns its number.
    fn start(&mut self, trigger: Trigger, ended: &mpsc::UnboundedSender<Ended>) -> u64 {
        self.seq += 1;
        let run = self.seq;
        let started_at_ms = orchestra_clock::now_ms();
        let mut record = RunRecord {
            run,
            trigger,
            started_at_ms,
            ended_at_ms: None,
            duration_ms: None,
            exit_code: None,
            outcome: "running".into(),
            reason: String::new(),
            logs: Vec::new(),
        };
        let (subject, prefix) = self.item.action.subject(&self.item.name);
        self.recorder.event(
            subject,
            &format!("{prefix}-started"),
            &format!("run {run} ({})", trigger.describe()),
        );
        let tx = ended.clone();
        let rt = self.runtime.clone();
        match &self.item.action {
            ScheduledAction::RunService(svc) => match self.runtime.start_job_run(svc) {
                Some(k) => {
                    let key = k.clone();
                    tokio::spawn(async move {
                        let status = rt.job_run_ended(&key).await;
                        let _ = tx.send(Ended {
                            run,
                            result: RunEnd::Service(Box::new(status)),
                        });
                    });
                    self.running = Some(Going {
                        record,
                        key: Some(k),
                    });
                }
                None => {
                    // The runtime still runs the previous run (it was stopped by hand, or
                    // is finishing): this one cannot start.
                    record.outcome = "failed".into();
                    record.reason = "the previous run has not ended yet".into();
                    self.finish(record);
                }
            },
            ScheduledAction::Backup(svc) => {
                let svc = svc.clone();
                // A backup is not stopped midway by `down`: the tools finish or fail on
                // their own, and a half-written file never enters the catalog.
                tokio::spawn(async move {
                    let result = crate::backups::take(&rt, &svc, None)
                        .await
                        .map(|t| {
                            let mut s = format!("backup {} ({} bytes)", t.entry.id, t.entry.size);
                            if !t.removed.is_empty() {
                                s.push_str(&format!(
                                    "; retention removed {}",
                                    t.removed.join(", ")
                                ));
                            }
                            s
                        })
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Ended {
                        run,
                        result: RunEnd::Backup(result),
                    });
                });
                self.running = Some(Going { record, key: None });
            }
        }
        self.refresh();
        run
    }

    fn ended(&mut self, ended: Ended) {
        let Some(going) = self.running.take_if(|g| g.record.run == ended.run) else {
            return;
        };
        let mut record = going.record;
        let now = orchestra_clock::now_ms();
        record.ended_at_ms = Some(now);
        record.duration_ms = Some(now - record.started_at_ms);
        let status = match ended.result {
            RunEnd::Service(status) => *status,
            RunEnd::Backup(result) => {
                let (exit, outcome, reason) = match result {
                    Ok(taken) => (Some(0), "succeeded", taken),
                    Err(why) => (None, "failed", why),
                };
                record.exit_code = exit;
                record.outcome = outcome.into();
                record.reason = reason;
                self.finish(record);
                return;
            }
        };
        let (exit, outcome, reason) = outcome(status.as_ref());
        record.exit_code = exit;
        record.outcome = outcome.into();
        record.reason = reason;
        // The job's own output: the ring also holds Orchestra's lines about it.
        record.logs = self
            .runtime
            .logs()
            .tail(Some(&self.item.name), 4 * LAST_LOG_LINES)
            .into_iter()
            .filter(|l| l.at_ms >= record.started_at_ms && l.stream != Stream::Orchestra)
            .map(|l| l.render())
            .collect();
        let extra = record.logs.len().saturating_sub(LAST_LOG_LINES);
        record.logs.drain(..extra);
        self.finish(record);
    }

    /// Record an ended run: the event, and the last runs `jobs` shows.
    fn finish(&mut self, record: RunRecord) {
        let secs = record.duration_ms.unwrap_or(0) as f64 / 1000.0;
        let exit = record
            .exit_code
            .map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"));
        let mut reason = format!(
            "run {} {}: {exit} after {secs:.3}s",
            record.run, record.outcome
        );
        if !record.reason.is_empty() {
            reason.push_str(&format!(" ({})", record.reason));
        }
        let (subject, prefix) = self.item.action.subject(&self.item.name);
        if matches!(self.item.action, ScheduledAction::Backup(_)) {
            // A backup's evidence is its outcome (the tool's stderr on failure), not logs.
        } else if record.logs.is_empty() {
            reason.push_str("\nlast log lines: (none)");
        } else {
            reason.push_str(&format!("\nlast {} log lines:", record.logs.len()));
            for l in &record.logs {
                reason.push_str("\n  ");
                reason.push_str(l);
            }
        }
        self.recorder
            .event(subject, &format!("{prefix}-finished"), &reason);
        if self.runs.len() == RUNS_KEPT {
            self.runs.pop_front();
        }
        self.runs.push_back(record);
    }
}

/// Exit code, outcome and reason of an ended run from its last status.
fn outcome(status: Option<&ServiceStatus>) -> (Option<i32>, &'static str, String) {
    let Some(s) = status else {
        return (None, "failed", "the run disappeared".into());
    };
    let exit = s
        .replicas
        .first()
        .and_then(|r| r.last_exit)
        .map(|e| match e {
            Exit::Code(c) => c,
            Exit::Signal(n) => 128 + n,
        });
    match s.phase {
        Phase::Completed => (exit.or(Some(0)), "succeeded", String::new()),
        Phase::Stopped | Phase::Stopping => (exit, "stopped", String::new()),
        _ => (exit, "failed", s.reason.clone()),
    }
}

async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
