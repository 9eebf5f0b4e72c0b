//! What the runtime reports: per-replica and per-service state, the failure
//! report, the aggregate health — and the pure functions that derive them.

use std::collections::{BTreeSet, VecDeque};

use orchestra_plan::Observed;
use serde::{Deserialize, Serialize};

use crate::backoff::Exit;
use crate::probe::ProbeResult;

/// Where a replica or service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Waiting for its dependencies.
    Waiting,
    /// Process started, healthcheck not passed yet.
    Starting,
    /// Running and passing its healthcheck (or running, with none).
    Healthy,
    /// Running but failing its healthcheck.
    Unhealthy,
    /// Waiting out a backoff before restarting.
    Restarting,
    /// Restarting again and again without becoming healthy.
    CrashLooping,
    /// A job that exited 0.
    Completed,
    /// Exited and left down by its restart policy.
    Exited,
    /// Given up: could not start, or past max_restarts.
    Failed,
    /// A dependency can never be met.
    Blocked,
    /// Being stopped.
    Stopping,
    /// Stopped on request.
    Stopped,
}

impl Phase {
    /// Counts towards the platform's aggregate health.
    pub fn is_good(self) -> bool {
        matches!(self, Phase::Healthy | Phase::Completed)
    }
}

/// One replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// Replica index, from 0.
    pub index: u32,
    /// Current phase.
    pub phase: Phase,
    /// PID of the replica's process group leader.
    pub pid: Option<i32>,
    /// The container's id (container services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Its assigned PORT.
    pub port: Option<u16>,
    /// When its current process started (ms since the epoch).
    pub started_at_ms: Option<i64>,
    /// Passed its healthcheck.
    pub healthy: bool,
    /// Passed its readiness probe (equals `healthy` without one).
    pub ready: bool,
    /// Has been started at least once.
    pub ever_started: bool,
    /// Restarts so far.
    pub restarts: u32,
    /// How its last process ended.
    pub last_exit: Option<Exit>,
    /// Why it is in this phase, in words.
    pub reason: String,
    /// The last few probe results, oldest first.
    pub probes: VecDeque<ProbeResult>,
    /// Healthcheck probes run so far, the fast ones while starting included.
    #[serde(default)]
    pub probes_run: u64,
    /// Of which failed.
    #[serde(default)]
    pub probe_failures: u64,
}

impl ReplicaStatus {
    /// A replica that has not started yet.
    pub fn new(index: u32) -> Self {
        Self {
            index,
            phase: Phase::Waiting,
            pid: None,
            container: None,
            port: None,
            started_at_ms: None,
            healthy: false,
            ready: false,
            ever_started: false,
            restarts: 0,
            last_exit: None,
            reason: String::new(),
            probes: VecDeque::new(),
            probes_run: 0,
            probe_failures: 0,
        }
    }

    /// Keep the last probes only; count every one.
    pub fn record_probe(&mut self, p: ProbeResult) {
        self.probes_run += 1;
        if !p.ok() {
            self.probe_failures += 1;
        }
        if self.probes.len() == 5 {
            self.probes.pop_front();
        }
        self.probes.push_back(p);
    }
}

/// Why a service did not become healthy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureReport {
    /// Service name.
    pub service: String,
    /// Replica index.
    pub replica: u32,
    /// When the failure was declared (ms since the epoch).
    pub at_ms: i64,
    /// What happened, in one line.
    pub summary: String,
    /// The likely cause, when evident.
    pub cause: Option<String>,
    /// Exit of the process, if it ended.
    pub exit: Option<Exit>,
    /// Last probe results, one line each.
    pub probes: Vec<String>,
    /// Last log lines (up to 20).
    pub logs: Vec<String>,
}

impl FailureReport {
    /// The report as a person reads it.
    pub fn render(&self) -> String {
        let mut s = format!(
            "✗ {} (replica {}): {}\n",
            self.service, self.replica, self.summary
        );
        if let Some(c) = &self.cause {
            s.push_str(&format!("  likely cause: {c}\n"));
        }
        if let Some(e) = &self.exit {
            s.push_str(&format!("  process: {e}\n"));
        }
        if !self.probes.is_empty() {
            s.push_str("  last probes:\n");
            for p in &self.probes {
                s.push_str(&format!("    {p}\n"));
            }
        }
        if self.logs.is_empty() {
            s.push_str("  last log lines: (none)\n");
        } else {
            s.push_str(&format!("  last {} log lines:\n", self.logs.len()));
            for l in &self.logs {
                s.push_str(&format!("    {l}\n"));
            }
        }
        s
    }
}

/// The role of one revision of a service, set by the deploy controller from
/// its rollout state. Written as `ps` shows it (`live`, `canary 10%`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Takes the service's (stable share of the) traffic.
    Live,
    /// Starting beside the live one, no traffic yet.
    Candidate,
    /// A canary at this weight, in percent.
    Canary(u32),
    /// Running without traffic, for an instant rollback.
    Warm,
    /// Was live until another revision was made live.
    Previous,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Live => f.write_str("live"),
            Role::Candidate => f.write_str("candidate"),
            Role::Canary(w) => write!(f, "canary {w}%"),
            Role::Warm => f.write_str("warm"),
            Role::Previous => f.write_str("previous"),
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "live" => Role::Live,
            "candidate" => Role::Candidate,
            "warm" => Role::Warm,
            "previous" => Role::Previous,
            other => other
                .strip_prefix("canary ")
                .and_then(|w| w.strip_suffix('%'))
                .and_then(|w| w.parse().ok())
                .map(Role::Canary)
                .ok_or_else(|| format!("unknown role `{other}`"))?,
        })
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// `process`, `image` or `build`.
    pub kind: String,
    /// Its revision (hash of its definition).
    pub revision: String,
    /// The runtime's key for this revision: `service@revision`.
    pub instance: String,
    /// What this revision is for: `live`, or `candidate`, `canary N%`, `warm`, `previous`.
    pub role: Role,
    /// Aggregate phase over its replicas.
    pub phase: Phase,
    /// Why, in words.
    pub reason: String,
    /// Dependencies it still waits on.
    pub waiting_on: Vec<String>,
    /// Its replicas.
    pub replicas: Vec<ReplicaStatus>,
    /// The last failure report, cleared when it becomes healthy.
    pub report: Option<FailureReport>,
}

impl ServiceStatus {
    /// Recompute `phase` and `reason` from the replicas.
    pub fn refresh(&mut self) {
        // Before its replicas exist the service-level phase (waiting, blocked) stands.
        if !self.replicas.is_empty() {
            let (phase, reason) = aggregate(&self.replicas);
            self.phase = phase;
            self.reason = reason;
        }
    }

    /// The plan's view of this service.
    pub fn observed(&self) -> Observed {
        let all = |f: &dyn Fn(&ReplicaStatus) -> bool| {
            !self.replicas.is_empty() && self.replicas.iter().all(f)
        };
        let exit_code = if all(&|r| r.phase == Phase::Completed) {
            Some(0)
        } else {
            self.replicas
                .iter()
                .find_map(|r| match (r.phase, r.last_exit) {
                    (
                        Phase::Exited | Phase::Failed | Phase::Restarting | Phase::CrashLooping,
                        Some(Exit::Code(c)),
                    ) => Some(c),
                    (
                        Phase::Exited | Phase::Failed | Phase::Restarting | Phase::CrashLooping,
                        Some(Exit::Signal(s)),
                    ) => Some(128 + s),
                    _ => None,
                })
        };
        Observed {
            started: all(&|r| r.ever_started),
            healthy: all(&|r| r.healthy && r.ready && matches!(r.phase, Phase::Healthy)),
            exit_code,
            given_up: matches!(
                self.phase,
                Phase::Failed | Phase::Blocked | Phase::Exited | Phase::Stopped
            ),
        }
    }
}

/// A service's phase from its replicas' phases: the worst one decides,
/// except that all-completed is completed.
pub fn aggregate(replicas: &[ReplicaStatus]) -> (Phase, String) {
    use Phase::*;
    if replicas.is_empty() {
        return (Waiting, String::new());
    }
    let rank = |p: Phase| match p {
        Failed => 0,
        Blocked => 1,
        CrashLooping => 2,
        Unhealthy => 3,
        Restarting => 4,
        Exited => 5,
        Stopping => 6,
        Starting => 7,
        Waiting => 8,
        Stopped => 9,
        Completed => 10,
        Healthy => 11,
    };
    let worst = replicas
        .iter()
        .min_by_key(|r| rank(r.phase))
        .map(|r| (r.phase, r.reason.clone()));
    match worst {
        Some((p, reason)) => (p, reason),
        None => (Waiting, String::new()),
    }
}

/// The platform's health.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformStatus {
    /// Project name.
    pub project: String,
    /// Services healthy or completed.
    pub healthy: usize,
    /// Services selected.
    pub total: usize,
    /// Required fraction.
    pub threshold: f64,
    /// `healthy / total >= threshold`.
    pub ok: bool,
    /// Every service is healthy or completed.
    pub ready: bool,
    /// Per service, in start order.
    pub services: Vec<ServiceStatus>,
}

/// Build the platform summary.
pub fn platform(project: &str, threshold: f64, services: Vec<ServiceStatus>) -> PlatformStatus {
    let total = services.len();
    let healthy = services.iter().filter(|s| s.phase.is_good()).count();
    let ok = total == 0 || (healthy as f64) / (total as f64) + 1e-9 >= threshold;
    PlatformStatus {
        project: project.to_owned(),
        healthy,
        total,
        threshold,
        ok,
        ready: healthy == total,
        services,
    }
}

/// Where a start stands, for `up -d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Still starting.
    Pending,
    /// Every service is healthy or completed.
    Up,
    /// These services failed to come up.
    Failed(Vec<String>),
}

/// Decide whether a start has finished, and how. A service counts as failed
/// as soon as it has a failure report while not healthy: `up -d` does not
/// wait out restart loops.
pub fn settled(services: &[ServiceStatus]) -> Settled {
    settled_with(services, &BTreeSet::new())
}

/// [`settled`], where the services in `running_is_enough` (a healthcheck with
/// `on_failure: none` that no dependent waits on being healthy) count once every
/// replica has started, healthy or not, as Compose's `up -d` does. Any other service
/// left unhealthy without a restart (`on_failure: none`) has failed to come up.
pub fn settled_with(services: &[ServiceStatus], running_is_enough: &BTreeSet<String>) -> Settled {
    let up = |s: &ServiceStatus| {
        s.phase.is_good()
            || (running_is_enough.contains(&s.name)
                && s.report.is_none()
                && matches!(s.phase, Phase::Starting | Phase::Unhealthy)
                && !s.replicas.is_empty()
                && s.replicas.iter().all(|r| {
                    r.ever_started
                        && matches!(r.phase, Phase::Starting | Phase::Unhealthy | Phase::Healthy)
                }))
    };
    let failed: Vec<String> = services
        .iter()
        .filter(|s| {
            !up(s)
                && (s.report.is_some()
                    || matches!(
                        s.phase,
                        Phase::Failed | Phase::Blocked | Phase::Exited | Phase::Unhealthy
                    ))
        })
        .map(|s| s.name.clone())
        .collect();
    if !failed.is_empty() {
        Settled::Failed(failed)
    } else if services.iter().all(up) {
        Settled::Up
    } else {
        Settled::Pending
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn roles_read_back_as_ps_writes_them() {
        for r in [
            Role::Live,
            Role::Candidate,
            Role::Canary(10),
            Role::Warm,
            Role::Previous,
        ] {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json, r.to_string());
            assert_eq!(serde_json::from_value::<Role>(json).unwrap(), r);
        }
        assert_eq!(Role::Canary(50).to_string(), "canary 50%");
        assert!("canary x%".parse::<Role>().is_err());
    }

    use super::*;

    fn rep(phase: Phase) -> ReplicaStatus {
        ReplicaStatus {
            phase,
            ..ReplicaStatus::new(0)
        }
    }

    fn svc(name: &str, phase: Phase) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            kind: "process".into(),
            revision: "r".into(),
            instance: format!("{name}@r"),
            role: Role::Live,
            phase,
            reason: String::new(),
            waiting_on: vec![],
            replicas: vec![rep(phase)],
            report: None,
        }
    }

    #[test]
    fn worst_replica_decides() {
        assert_eq!(
            aggregate(&[rep(Phase::Healthy), rep(Phase::CrashLooping)]).0,
            Phase::CrashLooping
        );
        assert_eq!(
            aggregate(&[rep(Phase::Healthy), rep(Phase::Starting)]).0,
            Phase::Starting
        );
        assert_eq!(
            aggregate(&[rep(Phase::Completed), rep(Phase::Completed)]).0,
            Phase::Completed
        );
        assert_eq!(
            aggregate(&[rep(Phase::Healthy), rep(Phase::Healthy)]).0,
            Phase::Healthy
        );
    }

    #[test]
    fn threshold_counts_healthy_and_completed() {
        let s = vec![
            svc("a", Phase::Healthy),
            svc("b", Phase::Completed),
            svc("c", Phase::Healthy),
            svc("d", Phase::Healthy),
            svc("e", Phase::CrashLooping),
        ];
        let p = platform("x", 0.8, s.clone());
        assert_eq!((p.healthy, p.total, p.ok, p.ready), (4, 5, true, false));
        let p = platform("x", 0.9, s);
        assert!(!p.ok);
    }

    #[test]
    fn settled_waits_then_fails_fast_on_a_report() {
        let mut s = vec![svc("a", Phase::Healthy), svc("b", Phase::Starting)];
        assert_eq!(settled(&s), Settled::Pending);
        s[1].report = Some(FailureReport {
            service: "b".into(),
            replica: 0,
            at_ms: 0,
            summary: "x".into(),
            cause: None,
            exit: None,
            probes: vec![],
            logs: vec![],
        });
        s[1].phase = Phase::Restarting;
        assert_eq!(settled(&s), Settled::Failed(vec!["b".into()]));
        let ok = vec![svc("a", Phase::Healthy), svc("m", Phase::Completed)];
        assert_eq!(settled(&ok), Settled::Up);
    }

    #[test]
    fn a_service_that_only_has_to_run_settles_once_started_healthy_or_not() {
        let started = |name: &str, phase: Phase| {
            let mut s = svc(name, phase);
            s.replicas[0].ever_started = true;
            s
        };
        let lenient: BTreeSet<String> = ["db".to_owned()].into();
        // Kept running while failing its check: up for `up`, unless a dependent needs it.
        let s = vec![
            started("api", Phase::Healthy),
            started("db", Phase::Unhealthy),
        ];
        assert_eq!(settled_with(&s, &lenient), Settled::Up);
        assert_eq!(settled(&s), Settled::Failed(vec!["db".into()]));
        let s = vec![
            started("api", Phase::Healthy),
            started("db", Phase::Starting),
        ];
        assert_eq!(settled_with(&s, &lenient), Settled::Up);
        assert_eq!(settled(&s), Settled::Pending);
        // Not started yet, or exited: not up.
        let s = vec![svc("db", Phase::Starting)];
        assert_eq!(settled_with(&s, &lenient), Settled::Pending);
        let s = vec![started("db", Phase::Exited)];
        assert_eq!(
            settled_with(&s, &lenient),
            Settled::Failed(vec!["db".into()])
        );
        // Restarted after a crash (its report stands until it is healthy): not up.
        let mut s = vec![started("db", Phase::Starting)];
        s[0].report = Some(FailureReport {
            service: "db".into(),
            replica: 0,
            at_ms: 0,
            summary: "exited 1".into(),
            cause: None,
            exit: None,
            probes: vec![],
            logs: vec![],
        });
        assert_eq!(
            settled_with(&s, &lenient),
            Settled::Failed(vec!["db".into()])
        );
    }

    #[test]
    fn observed_reports_job_completion_and_health() {
        let mut job = svc("m", Phase::Completed);
        job.replicas[0].ever_started = true;
        let o = job.observed();
        assert_eq!((o.started, o.exit_code), (true, Some(0)));
        let mut api = svc("api", Phase::Healthy);
        api.replicas[0].healthy = true;
        api.replicas[0].ready = false;
        assert!(!api.observed().healthy, "not ready yet");
        api.replicas[0].ready = true;
        assert!(api.observed().healthy);
    }
}
