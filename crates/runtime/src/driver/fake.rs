//! A fake driver for unit tests: replicas that run, exit and answer exec
//! probes as a test scripts them, on tokio's clock, without processes.
//! Other crates get it with the `test-support` feature (dev-dependencies only).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{BoxFuture, Driver, Replica, ReplicaSpec, StartError};
use crate::backoff::Exit;
use crate::probe::{ExecContext, ExecInside, ExecOutput};

/// How one run of a fake replica behaves.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Exit by itself this long after starting (`ZERO`: at once), this way.
    pub exit_after: Option<(Duration, Exit)>,
    /// Whether its exec probes pass at first.
    pub healthy: bool,
}

impl Plan {
    /// Runs until stopped, its probes passing.
    pub fn runs() -> Self {
        Plan {
            exit_after: None,
            healthy: true,
        }
    }

    /// Exits with `code` as soon as it starts.
    pub fn exits(code: i32) -> Self {
        Plan {
            exit_after: Some((Duration::ZERO, Exit::Code(code))),
            healthy: true,
        }
    }

    /// Runs, but its probes fail.
    pub fn unhealthy() -> Self {
        Plan {
            exit_after: None,
            healthy: false,
        }
    }
}

/// One started run, as the test sees it.
#[derive(Debug)]
pub struct Run {
    /// When it was started (tokio's clock).
    pub started: Instant,
    /// The host port it was given.
    pub port: u16,
    healthy: AtomicBool,
    probes: AtomicU32,
    stopped: Mutex<Option<(String, Duration)>>,
    exit: watch::Sender<Option<Exit>>,
}

impl Run {
    /// Make its probes pass or fail from now on.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Make it exit by itself now.
    pub fn exit(&self, exit: Exit) {
        self.exit.send_replace(Some(exit));
    }

    /// Exec probes it answered.
    pub fn probes(&self) -> u32 {
        self.probes.load(Ordering::SeqCst)
    }

    /// The signal and grace period it was stopped with, if it was.
    pub fn stopped(&self) -> Option<(String, Duration)> {
        self.stopped.lock().clone()
    }
}

#[derive(Debug)]
struct Shared {
    plans: Mutex<VecDeque<Plan>>,
    default: Plan,
    runs: Mutex<Vec<Arc<Run>>>,
}

/// The fake driver. Clones share their runs: keep one in the test, give
/// one to the runtime.
#[derive(Debug, Clone)]
pub struct FakeDriver(Arc<Shared>);

impl FakeDriver {
    /// Every run behaves as `default` unless a plan was queued with [`FakeDriver::then`].
    pub fn new(default: Plan) -> Self {
        FakeDriver(Arc::new(Shared {
            plans: Mutex::new(VecDeque::new()),
            default,
            runs: Mutex::new(Vec::new()),
        }))
    }

    /// The next start (after those queued before) behaves as `plan`.
    pub fn then(self, plan: Plan) -> Self {
        self.0.plans.lock().push_back(plan);
        self
    }

    /// Runs started so far.
    pub fn starts(&self) -> usize {
        self.0.runs.lock().len()
    }

    /// The `n`th run started (from 0).
    pub fn run(&self, n: usize) -> Arc<Run> {
        self.0.runs.lock()[n].clone()
    }

    /// Start times of every run.
    pub fn start_times(&self) -> Vec<Instant> {
        self.0.runs.lock().iter().map(|r| r.started).collect()
    }
}

impl Driver for FakeDriver {
    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Replica>, StartError>> {
        let plan = self.0.plans.lock().pop_front().unwrap_or(self.0.default);
        let (exit, exit_rx) = watch::channel(None);
        let run = Arc::new(Run {
            started: Instant::now(),
            port: spec.port,
            healthy: AtomicBool::new(plan.healthy),
            probes: AtomicU32::new(0),
            stopped: Mutex::new(None),
            exit,
        });
        let n = {
            let mut runs = self.0.runs.lock();
            runs.push(run.clone());
            runs.len()
        };
        let replica = FakeReplica {
            n,
            run,
            exit_after: plan.exit_after,
            exit_rx,
        };
        Box::pin(async move { Ok(Box::new(replica) as Box<dyn Replica>) })
    }
}

struct FakeReplica {
    n: usize,
    run: Arc<Run>,
    exit_after: Option<(Duration, Exit)>,
    exit_rx: watch::Receiver<Option<Exit>>,
}

impl Replica for FakeReplica {
    fn describe(&self) -> String {
        format!("fake {}", self.n)
    }

    fn port(&self) -> u16 {
        self.run.port
    }

    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        let started = self.run.started;
        let exit_after = self.exit_after;
        let rx = &mut self.exit_rx;
        Box::pin(async move {
            let timed = async {
                match exit_after {
                    Some((after, exit)) => {
                        tokio::time::sleep_until(started + after).await;
                        exit
                    }
                    None => std::future::pending().await,
                }
            };
            let told = async {
                loop {
                    if let Some(exit) = *rx.borrow_and_update() {
                        return exit;
                    }
                    if rx.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            };
            tokio::select! {
                e = timed => e,
                e = told => e,
            }
        })
    }

    fn stop<'a>(&'a mut self, signal: &'a str, grace: Duration) -> BoxFuture<'a, Exit> {
        *self.run.stopped.lock() = Some((signal.to_owned(), grace));
        let sig = signal
            .parse::<nix::sys::signal::Signal>()
            .map_or(15, |s| s as i32);
        Box::pin(async move { Exit::Signal(sig) })
    }

    fn exec_context(&self) -> ExecContext {
        ExecContext {
            inside: Some(Arc::new(FakeExec(self.run.clone()))),
            ..ExecContext::default()
        }
    }

    fn listening_ports(&self) -> BoxFuture<'_, Vec<u16>> {
        Box::pin(async { Vec::new() })
    }

    fn finish(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Exec probes "inside" a fake replica: pass or fail as the test says.
#[derive(Debug)]
struct FakeExec(Arc<Run>);

impl ExecInside for FakeExec {
    fn port(&self) -> u16 {
        self.0.port
    }

    fn exec(&self, _argv: Vec<String>) -> BoxFuture<'static, ExecOutput> {
        self.0.probes.fetch_add(1, Ordering::SeqCst);
        let out = if self.0.healthy.load(Ordering::SeqCst) {
            Ok((0, b"ok".to_vec()))
        } else {
            Ok((1, b"not yet".to_vec()))
        };
        Box::pin(async move { out })
    }
}
