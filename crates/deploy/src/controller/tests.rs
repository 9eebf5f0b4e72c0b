//! The controller on tokio's paused clock: a runtime with the fake driver
//! instead of processes, a fake data plane whose figures the test scripts,
//! and a real (in-memory) state database. Minutes of keep_warm and
//! verification deadlines pass in milliseconds, deterministically.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use orchestra_manifest::Service;
use orchestra_proxy::{RejectedRoute, RevisionStats, Route};
use orchestra_runtime::driver::fake::{FakeDriver, Plan as RunPlan};
use orchestra_runtime::{Event, Runtime, RuntimeConfig};
use orchestra_state::{ReleaseRecord, ReleaseStatus, StateStore};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::Deployer;
use crate::rollout::Phase;
use crate::traffic::Traffic;

/// A data plane that records the table it is given and answers with the
/// figures the test adds.
#[derive(Default)]
struct FakeTraffic {
    figures: Mutex<HashMap<String, (u64, u64)>>,
    routes: Mutex<Vec<Route>>,
    forgotten: Mutex<Vec<String>>,
}

impl Traffic for FakeTraffic {
    fn apply_routes(&self, routes: Vec<Route>) -> Vec<RejectedRoute> {
        *self.routes.lock() = routes;
        Vec::new()
    }

    fn stats(&self, revision: &str) -> RevisionStats {
        let (requests, errors) = self
            .figures
            .lock()
            .get(revision)
            .copied()
            .unwrap_or_default();
        RevisionStats {
            requests,
            errors,
            latency: Default::default(),
        }
    }

    fn in_flight(&self, _revision: &str) -> u64 {
        0
    }

    fn forget(&self, revision: &str) {
        self.forgotten.lock().push(revision.to_owned());
    }
}

impl FakeTraffic {
    fn add(&self, revision: &str, requests: u64, errors: u64) {
        let mut f = self.figures.lock();
        let e = f.entry(revision.to_owned()).or_default();
        e.0 += requests;
        e.1 += errors;
    }

    /// (revision, weight, replicas) of the one route.
    fn weights(&self) -> Vec<(String, u32, usize)> {
        self.routes.lock()[0]
            .targets
            .iter()
            .map(|t| (t.revision.clone(), t.weight, t.upstreams.len()))
            .collect()
    }
}

struct Env {
    d: Deployer,
    rt: Runtime,
    traffic: Arc<FakeTraffic>,
    state: Arc<StateStore>,
    driver: FakeDriver,
    _events: mpsc::UnboundedReceiver<Event>,
    _logs: tempfile::TempDir,
}

const SERVICE: &str = "services:\n  api:\n    command: [api]\n    env: { VERSION: v1 }\n    route: /api\n    healthcheck: { exec: [check], interval: 1s, retries: 1, start_period: 2s }\n";

async fn env(deploy: &str, driver: FakeDriver) -> Env {
    let yaml = format!("{SERVICE}    deploy: {deploy}\n");
    let m = orchestra_manifest::load_str(
        &yaml,
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
    assert_eq!(rt.settled().await, orchestra_runtime::status::Settled::Up);
    let traffic = Arc::new(FakeTraffic::default());
    let state = Arc::new(StateStore::open_in_memory().expect("state"));
    let d = Deployer::start(
        rt.clone(),
        traffic.clone(),
        state.clone(),
        Arc::new(crate::stored::NoSecrets),
    );
    Env {
        d,
        rt,
        traffic,
        state,
        driver,
        _events: events,
        _logs: logs,
    }
}

impl Env {
    /// The manifest's api with another VERSION: a new revision.
    fn version(&self, v: &str) -> Service {
        let mut s = self.rt.manifest().services[0].clone();
        s.env.insert("VERSION".into(), v.into());
        s
    }

    /// Start a deploy of version `v`; its release id.
    fn deploy(&self, v: &str) -> (i64, String) {
        let def = self.version(v);
        let started = self.d.deploy(vec![def.clone()], None);
        (
            started[0].release.expect("a release started"),
            def.revision(),
        )
    }

    fn release(&self, id: i64) -> ReleaseRecord {
        self.state.release(id).expect("state").expect("release")
    }

    fn phase(&self) -> Phase {
        self.d.rollout("api").expect("rollout").phase
    }

    fn v1(&self) -> String {
        self.rt.manifest().services[0].revision()
    }

    /// Wait, on the paused clock, until `f` holds; at most `limit` of virtual time.
    async fn until(&self, limit: Duration, what: &str, mut f: impl FnMut(&Env) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !f(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {limit:?} (phase {:?})",
                self.phase()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn blue_green_keeps_the_old_revision_warm_for_keep_warm_then_stops_it() {
    let e = env(
        "{ strategy: blue-green, keep_warm: 5m }",
        FakeDriver::new(RunPlan::runs()),
    )
    .await;
    let (id, v2) = e.deploy("v2");
    e.until(MINUTE, "the switch", |e| {
        e.release(id).status == ReleaseStatus::Live
    })
    .await;
    assert_eq!(e.traffic.weights(), [(v2.clone(), 100, 1)]);
    assert!(matches!(e.phase(), Phase::Switched { .. }));
    let v1_key = orchestra_runtime::instance_key("api", &e.v1());
    assert_eq!(
        e.rt.instance(&v1_key).expect("v1 runs").role,
        orchestra_runtime::status::Role::Warm
    );
    // Still warm, still watched, just before keep_warm ends...
    tokio::time::sleep(Duration::from_secs(290)).await;
    assert_eq!(e.release(id).status, ReleaseStatus::Live);
    assert!(e.rt.instance(&v1_key).is_some());
    // ...and stopped once it has.
    e.until(MINUTE, "the watch to end", |e| {
        e.release(id).status == ReleaseStatus::Succeeded
    })
    .await;
    e.until(MINUTE, "v1 to stop", |e| e.rt.instance(&v1_key).is_none())
        .await;
    assert!(
        e.driver.run(0).stopped().is_some(),
        "the old replica was stopped"
    );
    assert!(e.traffic.forgotten.lock().contains(&e.v1()));
    assert_eq!(e.phase(), Phase::Stable);
}

#[tokio::test(start_paused = true)]
async fn an_inconclusive_canary_step_holds_until_its_deadline_then_fails() {
    let e = env(
        "{ strategy: canary, steps: [50], step_interval: 10s, verify: { min_requests: 20, deadline: 2m } }",
        FakeDriver::new(RunPlan::runs()),
    )
    .await;
    let (id, v2) = e.deploy("v2");
    e.until(MINUTE, "the canary", |e| {
        matches!(e.phase(), Phase::Canary { .. })
    })
    .await;
    assert_eq!(e.traffic.weights(), [(e.v1(), 50, 1), (v2.clone(), 50, 1)]);
    // A trickle: never min_requests. The step ends at 10s and holds.
    e.traffic.add(&v2, 5, 0);
    tokio::time::sleep(MINUTE).await;
    assert!(matches!(e.phase(), Phase::Canary { .. }), "it holds");
    let r = e.release(id);
    assert_eq!(r.status, ReleaseStatus::InProgress);
    assert_eq!(r.figures["holding"], true, "{}", r.figures);
    e.until(2 * MINUTE, "the deadline", |e| {
        e.release(id).status == ReleaseStatus::Failed
    })
    .await;
    let r = e.release(id);
    assert!(
        r.reason.contains("could not be verified at 50%"),
        "{}",
        r.reason
    );
    assert_eq!(e.traffic.weights(), [(e.v1(), 100, 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_canary_with_enough_good_traffic_is_promoted_and_a_bad_one_fails_at_once() {
    let e = env(
        "{ strategy: canary, steps: [10, 50], step_interval: 30s, keep_warm: 0s, verify: { min_requests: 20 } }",
        FakeDriver::new(RunPlan::runs()),
    )
    .await;
    let (id, v2) = e.deploy("v2");
    for weight in [10, 50] {
        e.until(MINUTE, "the next step", |e| {
            matches!(&e.phase(), Phase::Canary { plan, step, .. } if plan.steps[*step] == weight)
        })
        .await;
        e.traffic.add(&v2, 100, 0);
        e.traffic.add(&e.v1(), 100, 0);
    }
    e.until(MINUTE, "the release to succeed", |e| {
        e.release(id).status == ReleaseStatus::Succeeded
    })
    .await;
    assert_eq!(e.traffic.weights(), [(v2.clone(), 100, 1)]);

    let (id, v3) = e.deploy("v3");
    e.until(MINUTE, "the canary", |e| {
        matches!(e.phase(), Phase::Canary { .. })
    })
    .await;
    let t0 = tokio::time::Instant::now();
    e.traffic.add(&v3, 30, 10);
    e.until(MINUTE, "the failure", |e| {
        e.release(id).status == ReleaseStatus::Failed
    })
    .await;
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "caught within the step, not at its end"
    );
    assert_eq!(e.traffic.weights(), [(v2, 100, 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_breach_after_the_switch_switches_back_to_the_warm_revision() {
    let e = env(
        "{ strategy: blue-green, keep_warm: 10m, verify: { max_error_rate: 1%, min_requests: 20 } }",
        FakeDriver::new(RunPlan::runs()),
    )
    .await;
    let (id, v2) = e.deploy("v2");
    e.until(MINUTE, "the switch", |e| {
        e.release(id).status == ReleaseStatus::Live
    })
    .await;
    e.traffic.add(&v2, 100, 40);
    e.until(MINUTE, "the breach", |e| {
        e.release(id).status == ReleaseStatus::RolledBack
    })
    .await;
    assert_eq!(e.traffic.weights(), [(e.v1(), 100, 1)]);
    assert!(e.release(id).reason.contains("breached its SLO"));
    assert_eq!(e.d.rollout("api").expect("rollout").stable.revision, e.v1());
}

#[tokio::test(start_paused = true)]
async fn a_candidate_that_never_turns_healthy_never_gets_traffic() {
    // The first run (v1) is healthy, the second (v2) never is.
    let driver = FakeDriver::new(RunPlan::runs())
        .then(RunPlan::runs())
        .then(RunPlan::unhealthy());
    let e = env("{ strategy: blue-green }", driver).await;
    let (id, _) = e.deploy("v2");
    e.until(MINUTE, "the failure", |e| {
        e.release(id).status == ReleaseStatus::Failed
    })
    .await;
    assert!(e.release(id).reason.contains("did not become healthy"));
    assert_eq!(e.traffic.weights(), [(e.v1(), 100, 1)]);
    assert_eq!(e.phase(), Phase::Stable);
}

#[tokio::test(start_paused = true)]
async fn abort_and_promote_act_on_the_phase_they_find() {
    let e = env(
        "{ strategy: canary, steps: [10, 50], step_interval: 10m, keep_warm: 0s }",
        FakeDriver::new(RunPlan::runs()),
    )
    .await;
    let (id, v2) = e.deploy("v2");
    e.until(MINUTE, "the canary", |e| {
        matches!(e.phase(), Phase::Canary { .. })
    })
    .await;
    assert_eq!(e.d.promote("api").expect("promote"), id);
    e.until(MINUTE, "the promotion", |e| {
        e.release(id).status == ReleaseStatus::Succeeded
    })
    .await;
    assert_eq!(e.traffic.weights(), [(v2.clone(), 100, 1)]);
    assert!(e.d.promote("api").is_err(), "nothing to promote now");

    let (id, v3) = e.deploy("v3");
    e.until(MINUTE, "the canary", |e| {
        matches!(e.phase(), Phase::Canary { .. })
    })
    .await;
    e.d.abort("api").expect("abort");
    assert_eq!(e.release(id).status, ReleaseStatus::Aborted);
    assert_eq!(e.traffic.weights(), [(v2, 100, 1)]);
    let v3_key = orchestra_runtime::instance_key("api", &v3);
    e.until(MINUTE, "the canary to stop", |e| {
        e.rt.instance(&v3_key).is_none()
    })
    .await;
    assert!(e.d.abort("api").is_err(), "nothing to abort now");
}

/// Restore points that answer with numbered ids, or fail when told to.
#[derive(Default)]
struct Points {
    fail: std::sync::atomic::AtomicBool,
    taken: Mutex<Vec<(String, i64)>>,
}

impl crate::RestorePoints for Arc<Points> {
    fn take(
        &self,
        service: String,
        release: i64,
    ) -> crate::restore_points::BoxFuture<Result<crate::RestorePoint, String>> {
        let me = self.clone();
        Box::pin(async move {
            if me.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("pg_dump: disk full".to_owned());
            }
            let mut t = me.taken.lock();
            t.push((service.clone(), release));
            Ok(crate::RestorePoint {
                service,
                backup: format!("b-{}", t.len()),
                kind: "redis".into(),
            })
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_release_with_backup_before_records_its_restore_point_and_fails_without_one() {
    let e = env(
        "{ strategy: blue-green, keep_warm: 0s, backup_before: [api] }\n    backup: { kind: redis }",
        FakeDriver::new(RunPlan::runs()),
    )
    .await;
    let points = Arc::new(Points::default());
    e.d.set_restore_points(Arc::new(points.clone()));
    let (id, v2) = e.deploy("v2");
    e.until(MINUTE, "the switch", |e| {
        matches!(
            e.release(id).status,
            ReleaseStatus::Live | ReleaseStatus::Succeeded
        )
    })
    .await;
    assert_eq!(*points.taken.lock(), [("api".to_owned(), id)]);
    assert_eq!(
        e.release(id).restore_points,
        serde_json::json!([{"service": "api", "backup": "b-1", "kind": "redis"}])
    );
    assert_eq!(e.traffic.weights(), [(v2.clone(), 100, 1)]);

    // A backup that fails fails the release before anything moves.
    points.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let (id2, _) = e.deploy("v3");
    e.until(MINUTE, "the failure", |e| {
        e.release(id2).status == ReleaseStatus::Failed
    })
    .await;
    let r = e.release(id2);
    assert!(
        r.reason
            .contains("restore point failed, nothing changed: backup of api: pg_dump: disk full"),
        "{}",
        r.reason
    );
    assert_eq!(r.restore_points, serde_json::json!([]));
    assert_eq!(e.traffic.weights(), [(v2, 100, 1)], "traffic stayed");
}
