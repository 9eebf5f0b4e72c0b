//! Unit tests of the supervisor on tokio's paused clock, with the fake
//! driver instead of processes: restart timing, crash loops, giving up,
//! healthchecks. Real processes are in the CLI's integration tests.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::advance;

use super::{Event, EventKind, Runtime, RuntimeConfig};
use crate::backoff::Exit;
use crate::driver::fake::{FakeDriver, Plan};
use crate::status::Phase;

struct Platform {
    rt: Runtime,
    events: mpsc::UnboundedReceiver<Event>,
    seen: Vec<Event>,
    _logs: tempfile::TempDir,
}

impl Platform {
    /// Run the manifest's services with `driver` for `command:` services.
    fn start(yaml: &str, driver: &FakeDriver) -> Platform {
        let m = orchestra_manifest::load_str(
            yaml,
            Path::new("/nonexistent/orchestra.yaml"),
            &orchestra_manifest::LoadOptions::default(),
        )
        .expect("test manifest is valid");
        let names: BTreeSet<String> = m.services.iter().map(|s| s.name.clone()).collect();
        let plan = orchestra_plan::plan(&m, &names).expect("test plan");
        let logs = tempfile::tempdir().expect("tempdir");
        let (rt, events) = Runtime::start_with(
            RuntimeConfig {
                manifest: Arc::new(m),
                plan,
                log_dir: logs.path().to_owned(),
                shim: Vec::new(),
                containers: None,
                static_dir: logs.path().join("static"),
            },
            Arc::new(driver.clone()),
        );
        Platform {
            rt,
            events,
            seen: Vec::new(),
            _logs: logs,
        }
    }

    /// Events so far, of one kind.
    fn events(&mut self, kind: EventKind) -> Vec<Event> {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
        self.seen
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect()
    }

    fn replica_phase(&self, service: &str) -> Phase {
        self.rt.service(service).expect("service").replicas[0].phase
    }

    fn replica_reason(&self, service: &str) -> String {
        self.rt.service(service).expect("service").replicas[0]
            .reason
            .clone()
    }
}

/// Let every task run as far as it can without the clock moving.
async fn settle() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

/// Let `d` pass: the paused clock jumps from timer to timer, every task
/// running in between, as if that much time had passed.
async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
    settle().await;
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn an_exited_replica_is_restarted_after_the_backoff_delay_not_before() {
    let driver = FakeDriver::new(Plan::runs()).then(Plan::exits(1));
    let mut p = Platform::start(
        "services:\n  api:\n    command: [api]\n    restart: { policy: on-failure, backoff: { initial: 1s, max: 10s } }\n",
        &driver,
    );
    settle().await;
    assert_eq!(driver.starts(), 1);
    assert_eq!(p.replica_phase("api"), Phase::Restarting);
    assert!(
        p.replica_reason("api")
            .contains("exited with code 1; restarting in"),
        "{}",
        p.replica_reason("api")
    );
    assert_eq!(p.events(EventKind::Exited).len(), 1);

    // The delay is 1s spread by ±20% of jitter: nothing before 800ms...
    advance(ms(799)).await;
    settle().await;
    assert_eq!(driver.starts(), 1, "restarted before the backoff delay");
    assert!(p.events(EventKind::Restarted).is_empty());

    // ...and a restart by 1.2s, which then keeps running.
    advance(ms(402)).await;
    settle().await;
    assert_eq!(driver.starts(), 2, "not restarted after the backoff delay");
    let restarted = p.events(EventKind::Restarted);
    assert_eq!(restarted.len(), 1);
    assert!(
        restarted[0].reason.contains("restart 1")
            && restarted[0].reason.contains("exited with code 1"),
        "{}",
        restarted[0].reason
    );
    assert_eq!(p.replica_phase("api"), Phase::Healthy);
    let status = p.rt.service("api").expect("api");
    assert_eq!(status.replicas[0].restarts, 1);
    assert_eq!(status.replicas[0].last_exit, Some(Exit::Code(1)));
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_then_crash_looping_then_gives_up_at_max_restarts() {
    let driver = FakeDriver::new(Plan::exits(3));
    let mut p = Platform::start(
        "services:\n  flaky:\n    command: [flaky]\n    restart: { policy: on-failure, backoff: { initial: 100ms, max: 1s }, max_restarts: 4 }\n",
        &driver,
    );
    settle().await;
    // Two failed starts (the second at 100ms ±20%, the third not before
    // 240ms): restarting, not yet crash-looping.
    run_for(ms(230)).await;
    assert_eq!(driver.starts(), 2);
    assert_eq!(p.replica_phase("flaky"), Phase::Restarting);
    assert!(p.events(EventKind::CrashLooping).is_empty());

    run_for(Duration::from_secs(30)).await;
    // The first start and max_restarts restarts, then no more.
    assert_eq!(driver.starts(), 5);
    let times = driver.start_times();
    for (i, w) in times.windows(2).enumerate() {
        let expected = ms(100) * 2u32.pow(i as u32);
        let gap = w[1] - w[0];
        assert!(
            gap >= expected.mul_f64(0.8) && gap <= expected.mul_f64(1.2),
            "restart {}: {gap:?}, expected about {expected:?}",
            i + 1
        );
    }
    let looping = p.events(EventKind::CrashLooping);
    assert_eq!(
        looping.len(),
        1,
        "crash-looping is announced once per streak"
    );
    assert!(
        looping[0].reason.starts_with("3 failed starts in a row"),
        "{}",
        looping[0].reason
    );
    assert_eq!(p.replica_phase("flaky"), Phase::Failed);
    let failed = p.events(EventKind::Failed);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .reason
            .contains("gave up after 4 restarts (max_restarts 4)"),
        "{}",
        failed[0].reason
    );
    let status = p.rt.service("flaky").expect("flaky");
    assert_eq!(status.phase, Phase::Failed);
    assert_eq!(status.replicas[0].restarts, 4);
    let report = status.report.expect("a failure report");
    assert!(
        report.summary.contains("exited with code 3"),
        "{}",
        report.summary
    );
}

#[tokio::test(start_paused = true)]
async fn a_healthcheck_failing_past_its_retries_marks_the_replica_unhealthy() {
    let driver = FakeDriver::new(Plan::unhealthy());
    let mut p = Platform::start(
        "services:\n  db:\n    command: [db]\n    healthcheck: { exec: [check], interval: 1s, retries: 3, start_period: 2s }\n    restart: \"no\"\n",
        &driver,
    );
    settle().await;
    assert_eq!(p.replica_phase("db"), Phase::Starting);
    // Failures within the start period do not count; then 3 more, 1s apart:
    // unhealthy at 2s + 2 intervals = 4s.
    run_for(ms(3900)).await;
    assert_eq!(p.replica_phase("db"), Phase::Starting);
    assert!(p.events(EventKind::Unhealthy).is_empty());
    assert!(driver.run(0).stopped().is_none());
    assert!(driver.run(0).probes() > 10, "fast probes while starting");

    run_for(ms(200)).await;
    let unhealthy = p.events(EventKind::Unhealthy);
    assert_eq!(unhealthy.len(), 1);
    assert!(
        unhealthy[0]
            .reason
            .starts_with("did not become healthy within start_period 2s and 3 more probe(s)"),
        "{}",
        unhealthy[0].reason
    );
    // Killed with its stop signal, and, with restart `no`, left down.
    assert_eq!(
        driver.run(0).stopped(),
        Some(("SIGTERM".to_owned(), Duration::from_secs(10)))
    );
    let status = p.rt.service("db").expect("db");
    assert_eq!(status.replicas[0].phase, Phase::Exited);
    assert!(!status.replicas[0].healthy);
    assert_eq!(status.replicas[0].reason, "unhealthy; restart policy `no`");
    assert!(status.report.is_some());
    run_for(Duration::from_secs(10)).await;
    assert_eq!(driver.starts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_replica_that_stops_answering_is_killed_and_restarted() {
    let driver = FakeDriver::new(Plan::runs());
    let mut p = Platform::start(
        "services:\n  api:\n    command: [api]\n    healthcheck: { exec: [check], interval: 1s, retries: 2, start_period: 5s }\n    restart: { policy: on-failure, backoff: { initial: 500ms } }\n",
        &driver,
    );
    settle().await;
    assert_eq!(p.replica_phase("api"), Phase::Healthy);
    assert_eq!(p.events(EventKind::Healthy).len(), 1);

    driver.run(0).set_healthy(false);
    // Liveness probes every 1s; 2 failures in a row make it unhealthy.
    run_for(ms(1500)).await;
    assert!(p.events(EventKind::Unhealthy).is_empty());
    run_for(ms(1000)).await;
    let unhealthy = p.events(EventKind::Unhealthy);
    assert_eq!(unhealthy.len(), 1);
    assert!(
        unhealthy[0]
            .reason
            .starts_with("healthcheck failed 2 times in a row"),
        "{}",
        unhealthy[0].reason
    );
    assert!(driver.run(0).stopped().is_some());
    run_for(ms(700)).await;
    assert_eq!(driver.starts(), 2);
    assert!(
        p.events(EventKind::Restarted)[0]
            .reason
            .contains("after: failed its healthcheck")
    );
    assert_eq!(p.replica_phase("api"), Phase::Healthy);
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_waiting_to_restart_stops_it_there() {
    let driver = FakeDriver::new(Plan::exits(1));
    let mut p = Platform::start(
        "services:\n  api:\n    command: [api]\n    restart: { policy: always, backoff: { initial: 5s } }\n",
        &driver,
    );
    settle().await;
    assert_eq!(p.replica_phase("api"), Phase::Restarting);
    p.rt.stop_all().await;
    assert_eq!(p.replica_phase("api"), Phase::Stopped);
    let stopped = p.events(EventKind::Stopped);
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].reason, "while waiting to restart");
    run_for(Duration::from_secs(30)).await;
    assert_eq!(driver.starts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dependent_waits_for_its_dependency_to_be_healthy() {
    let driver = FakeDriver::new(Plan::runs()).then(Plan::unhealthy());
    let mut p = Platform::start(
        "services:\n  db:\n    command: [db]\n    healthcheck: { exec: [check], interval: 1s, start_period: 30s }\n  api:\n    command: [api]\n    depends_on: { db: healthy }\n",
        &driver,
    );
    settle().await;
    run_for(Duration::from_secs(3)).await;
    assert_eq!(driver.starts(), 1, "api started before db was healthy");
    let api = p.rt.service("api").expect("api");
    assert_eq!(api.phase, Phase::Waiting);
    assert_eq!(api.waiting_on, ["db"]);
    assert_eq!(p.events(EventKind::Waiting).len(), 1);

    driver.run(0).set_healthy(true);
    run_for(ms(300)).await;
    assert_eq!(driver.starts(), 2);
    assert_eq!(p.replica_phase("api"), Phase::Healthy);
}

#[tokio::test(start_paused = true)]
async fn a_streak_resets_after_a_stable_run_and_a_clean_exit_completes() {
    let driver = FakeDriver::new(Plan::runs())
        .then(Plan::exits(1))
        .then(Plan::exits(1));
    let mut p = Platform::start(
        "services:\n  worker:\n    command: [worker]\n    healthcheck: { exec: [check], interval: 1s }\n    restart: { policy: on-failure, backoff: { initial: 1s, max: 1m } }\n",
        &driver,
    );
    // Two failed starts: the third comes by 1.2s + 2.4s.
    run_for(ms(4000)).await;
    assert_eq!(driver.starts(), 3);
    assert_eq!(p.replica_phase("worker"), Phase::Healthy);
    // Healthy for longer than the streak reset: a crash restarts after the
    // initial delay again, not 4s.
    run_for(Duration::from_secs(20)).await;
    driver.run(2).exit(Exit::Code(2));
    settle().await;
    assert!(
        p.replica_reason("worker").contains("restarting in"),
        "{}",
        p.replica_reason("worker")
    );
    run_for(ms(1250)).await;
    assert_eq!(driver.starts(), 4);
    assert!(p.events(EventKind::CrashLooping).is_empty());
    // A clean exit with `on-failure` completes.
    run_for(ms(100)).await;
    driver.run(3).exit(Exit::Code(0));
    settle().await;
    assert_eq!(p.replica_phase("worker"), Phase::Completed);
    assert_eq!(p.events(EventKind::Completed).len(), 1);
    run_for(Duration::from_secs(30)).await;
    assert_eq!(driver.starts(), 4);
}

#[tokio::test(start_paused = true)]
async fn with_on_failure_none_a_failing_check_marks_unhealthy_and_never_restarts() {
    let driver = FakeDriver::new(Plan::runs()).then(Plan::unhealthy());
    let mut p = Platform::start(
        "services:\n  db:\n    command: [db]\n    healthcheck: { exec: [check], interval: 1s, retries: 2, start_period: 0s, on_failure: none }\n    restart: always\n  api:\n    command: [api]\n    depends_on: { db: healthy }\n",
        &driver,
    );
    settle().await;
    run_for(ms(2500)).await;
    let unhealthy = p.events(EventKind::Unhealthy);
    assert_eq!(unhealthy.len(), 1, "one event, not one per failed probe");
    assert!(
        unhealthy[0]
            .reason
            .ends_with("(kept running: on_failure is none)"),
        "{}",
        unhealthy[0].reason
    );
    assert_eq!(p.replica_phase("db"), Phase::Unhealthy);
    // Still running, probed on, never stopped or restarted; its dependent waits.
    run_for(Duration::from_secs(20)).await;
    assert!(driver.run(0).stopped().is_none());
    assert_eq!(driver.starts(), 1);
    assert!(p.events(EventKind::Restarted).is_empty());
    assert_eq!(p.events(EventKind::Unhealthy).len(), 1);
    let db = p.rt.service("db").expect("db");
    assert!(db.report.is_none());
    assert_eq!(db.replicas[0].restarts, 0);
    assert_eq!(p.rt.service("api").expect("api").phase, Phase::Waiting);

    // The next success makes it healthy, and the dependent starts.
    driver.run(0).set_healthy(true);
    run_for(ms(1500)).await;
    assert_eq!(p.replica_phase("db"), Phase::Healthy);
    assert_eq!(driver.starts(), 2);

    // Failing again later: unhealthy again, still not restarted.
    driver.run(0).set_healthy(false);
    run_for(ms(2500)).await;
    assert_eq!(p.replica_phase("db"), Phase::Unhealthy);
    assert!(driver.run(0).stopped().is_none());
    assert_eq!(p.events(EventKind::Unhealthy).len(), 2);
    driver.run(0).set_healthy(true);
    run_for(ms(1500)).await;
    assert_eq!(p.replica_phase("db"), Phase::Healthy);
    assert_eq!(p.replica_reason("db"), "healthy again");
}
