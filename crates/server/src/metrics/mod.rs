//! `GET /metrics` on the admin address: the platform in the Prometheus text
//! format. Every figure is read from the piece of state that owns it, at
//! scrape time: the proxy's per-revision counters and histograms, the
//! runtime's replica status, `/proc` for processes, the container cache for
//! containers, and the release records in state.db. Nothing keeps a second
//! copy in step.
//!
//! Labels come only from route, service, revision, replica and status class
//! (plus the enumerations `state`, `window`, `decision`, `strategy`,
//! `outcome`, `trigger`): never a request path, a client's data or an
//! environment value. A revision's series go when the proxy forgets it
//! (after its `keep_warm`). `docs/metrics.md` lists the families.

pub mod containers;
pub mod delivery;
pub mod text;

use std::collections::HashMap;
use std::time::Duration;

use orchestra_proxy::RevisionTraffic;
use orchestra_runtime::procfs::{self, Usage};
use orchestra_runtime::status::{Role, ServiceStatus};

use crate::daemon::Shared;
use delivery::Delivery;
use text::{Kind, Writer};

/// OpenTelemetry's advised bucket bounds for `http.server.request.duration`, in seconds.
pub const HTTP_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket bounds for deploy durations and times to restore, in seconds.
pub const DEPLOY_BUCKETS: [f64; 10] =
    [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

/// Release records read per scrape (newest first); older ones no longer count.
const RELEASES_READ: usize = 100_000;

/// A replica's CPU time and resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReplicaUsage {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident memory, in bytes.
    pub rss_bytes: f64,
}

/// Everything one scrape renders, read from the owners first.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Services selected, healthy ones, and whether their share meets the threshold.
    pub platform: (usize, usize, bool),
    /// Every revision the proxy keeps.
    pub traffic: Vec<RevisionTraffic>,
    /// Every running revision of every service.
    pub instances: Vec<ServiceStatus>,
    /// CPU and memory by (instance key, replica index).
    pub usage: HashMap<(String, u32), ReplicaUsage>,
    /// From state.db; `None` when it could not be read (the scrape says so in a gauge).
    pub delivery: Option<Delivery>,
}

/// Read everything a scrape needs from its owners.
pub async fn collect(s: &Shared) -> Snapshot {
    let status = s.runtime.status();
    let mut instances = Vec::new();
    for svc in &status.services {
        instances.extend(s.runtime.instances(&svc.name));
    }
    let traffic = s.proxy.as_ref().map(|p| p.traffic()).unwrap_or_default();
    let mut usage = process_usage(&instances);
    usage.extend(s.containers.usage(&instances));
    let delivery = match s.state.releases(None, RELEASES_READ) {
        Ok(records) => Some(delivery::summarize(&records)),
        Err(e) => {
            tracing::warn!("/metrics: cannot read the releases: {e}");
            None
        }
    };
    Snapshot {
        platform: (status.total, status.healthy, status.ok),
        traffic,
        instances,
        usage,
        delivery,
    }
}

/// CPU and memory of process replicas: their process groups, from one pass over `/proc`.
fn process_usage(instances: &[ServiceStatus]) -> HashMap<(String, u32), ReplicaUsage> {
    let replicas: Vec<(&str, u32, i32)> = instances
        .iter()
        .filter(|i| i.kind == "process")
        .flat_map(|i| {
            i.replicas
                .iter()
                .filter_map(|r| r.pid.map(|pid| (i.instance.as_str(), r.index, pid)))
        })
        .collect();
    if replicas.is_empty() {
        return HashMap::new();
    }
    let pgids: Vec<i32> = replicas.iter().map(|r| r.2).collect();
    let groups = procfs::group_usage(&pgids);
    let (hz, page) = procfs::units();
    let convert = |u: &Usage| ReplicaUsage {
        cpu_seconds: u.cpu_ticks as f64 / hz as f64,
        rss_bytes: (u.rss_pages * page) as f64,
    };
    replicas
        .iter()
        .filter_map(|(key, idx, pgid)| Some(((key.to_string(), *idx), convert(groups.get(pgid)?))))
        .collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The body of `/metrics` for a snapshot.
pub fn render(s: &Snapshot) -> String {
    // About 1.2 KB per revision and 0.5 KB per replica: one allocation for most platforms.
    let mut w = Writer::with_capacity(4096 + s.traffic.len() * 1400 + s.instances.len() * 600);
    w.family(
        "orchestra_build_info",
        Kind::Gauge,
        "The orchestra daemon's version (always 1).",
    );
    w.sample(
        "orchestra_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    render_platform(&mut w, s);
    render_proxy(&mut w, &s.traffic);
    render_replicas(&mut w, s);
    render_delivery(&mut w, s.delivery.as_ref());
    w.finish()
}

fn render_platform(w: &mut Writer, s: &Snapshot) {
    let (total, healthy, ok) = s.platform;
    w.family(
        "orchestra_services",
        Kind::Gauge,
        "Services selected to run (their live revisions).",
    );
    w.sample("orchestra_services", &[], total as f64);
    w.family(
        "orchestra_services_healthy",
        Kind::Gauge,
        "Services whose live revision is healthy or, for jobs, completed.",
    );
    w.sample("orchestra_services_healthy", &[], healthy as f64);
    w.family(
        "orchestra_health_ok",
        Kind::Gauge,
        "1 while the share of healthy services meets health.threshold (GET /health answers 200), else 0.",
    );
    w.sample("orchestra_health_ok", &[], f64::from(u8::from(ok)));
}

/// Whether a revision gets its full set of traffic series: it is in the routing table or
/// still has requests open. A warm revision keeps only its request counts.
fn routed(t: &RevisionTraffic) -> bool {
    t.weight.is_some() || t.in_flight > 0
}

fn render_proxy(w: &mut Writer, traffic: &[RevisionTraffic]) {
    w.family(
        "orchestra_route_info",
        Kind::Gauge,
        "Each route ([host]/prefix) and the service it serves (1); join on service.",
    );
    let mut routes: Vec<(&str, &str)> = traffic
        .iter()
        .map(|t| (t.route.as_str(), t.service.as_str()))
        .collect();
    routes.sort_unstable();
    routes.dedup();
    for (route, service) in routes {
        w.sample(
            "orchestra_route_info",
            &[("route", route), ("service", service)],
            1.0,
        );
    }
    w.family(
        "orchestra_proxy_requests_total",
        Kind::Counter,
        "Requests sent (or tried) to a revision by status class of the answer (the proxy's own 502/503/504 are 5xx); classes other than 2xx once seen.",
    );
    for t in traffic {
        let [a, b] = rev_labels(t);
        for (i, class) in CLASSES.iter().enumerate() {
            let n = t.by_class[i];
            if n > 0 || i == 1 {
                w.sample(
                    "orchestra_proxy_requests_total",
                    &[a, b, ("status_class", class)],
                    n as f64,
                );
            }
        }
    }
    w.family(
        "http_server_request_duration_seconds",
        Kind::Histogram,
        "Time to the upstream's response headers, for revisions in the routing table (buckets exact to 1/64, erring slower).",
    );
    let bounds: Vec<Duration> = HTTP_BUCKETS
        .iter()
        .map(|b| Duration::from_secs_f64(*b))
        .collect();
    let mut cumulative = Vec::with_capacity(HTTP_BUCKETS.len());
    for t in traffic.iter().filter(|t| routed(t)) {
        cumulative.clear();
        cumulative.extend(
            HTTP_BUCKETS
                .iter()
                .copied()
                .zip(t.stats.latency.cumulative(&bounds)),
        );
        w.histogram(
            "http_server_request_duration_seconds",
            &rev_labels(t),
            &cumulative,
            secs(t.latency_sum),
            t.stats.latency.count(),
        );
    }
    let per_routed = |w: &mut Writer,
                      name: &str,
                      kind: Kind,
                      help: &str,
                      f: &dyn Fn(&RevisionTraffic) -> f64| {
        w.family(name, kind, help);
        for t in traffic.iter().filter(|t| routed(t)) {
            w.sample(name, &rev_labels(t), f(t));
        }
    };
    per_routed(
        w,
        "http_server_active_requests",
        Kind::Gauge,
        "Requests open on a revision now, streams and upgrades included.",
        &|t| t.in_flight as f64,
    );
    per_routed(
        w,
        "orchestra_proxy_upstream_connect_errors_total",
        Kind::Counter,
        "Attempts that could not connect to a replica (each retry counts).",
        &|t| t.connect_errors as f64,
    );
    per_routed(
        w,
        "orchestra_proxy_upstream_timeouts_total",
        Kind::Counter,
        "Attempts that got no response headers from a replica in time.",
        &|t| t.timeouts as f64,
    );
    w.family(
        "orchestra_proxy_breakers_open",
        Kind::Gauge,
        "Replicas of the revision whose circuit breaker is open or half-open.",
    );
    for t in traffic.iter().filter(|t| t.weight.is_some()) {
        w.sample(
            "orchestra_proxy_breakers_open",
            &rev_labels(t),
            (t.breakers.open + t.breakers.half_open) as f64,
        );
    }
    w.family(
        "orchestra_proxy_traffic_weight_ratio",
        Kind::Gauge,
        "The revision's share of new requests on its route (a canary's weight, 0 to 1).",
    );
    for t in traffic {
        if let Some(weight) = t.weight {
            w.sample(
                "orchestra_proxy_traffic_weight_ratio",
                &rev_labels(t),
                f64::from(weight.min(100)) / 100.0,
            );
        }
    }
}

fn rev_labels(t: &RevisionTraffic) -> [(&'static str, &str); 2] {
    [
        ("service", t.service.as_str()),
        ("revision", t.revision.as_str()),
    ]
}

type Row<'a> = (
    &'a ServiceStatus,
    &'a orchestra_runtime::status::ReplicaStatus,
    String,
);

fn replica_labels<'a>((i, _, idx): &'a Row<'a>) -> [(&'static str, &'a str); 3] {
    [
        ("service", i.name.as_str()),
        ("revision", i.revision.as_str()),
        ("replica", idx.as_str()),
    ]
}

fn render_replicas(w: &mut Writer, s: &Snapshot) {
    let rows: Vec<Row<'_>> = s
        .instances
        .iter()
        .flat_map(|i| i.replicas.iter().map(move |r| (i, r, r.index.to_string())))
        .collect();
    // Warm revisions take no traffic: their replicas show health and usage, not probe detail.
    let serving = |(i, _, _): &Row<'_>| !matches!(i.role, Role::Warm | Role::Previous);
    let gauge = |w: &mut Writer,
                 name: &str,
                 kind: Kind,
                 help: &str,
                 f: &dyn Fn(&Row<'_>) -> Option<f64>,
                 all: bool| {
        w.family(name, kind, help);
        for row in rows.iter().filter(|r| all || serving(r)) {
            if let Some(v) = f(row) {
                w.sample(name, &replica_labels(row), v);
            }
        }
    };
    gauge(
        w,
        "orchestra_replica_healthy",
        Kind::Gauge,
        "1 while the replica passes its healthcheck (or runs, without one).",
        &|(_, r, _)| Some(f64::from(u8::from(r.healthy))),
        true,
    );
    gauge(
        w,
        "orchestra_replica_ready",
        Kind::Gauge,
        "1 while the replica passes its readiness probe (not for warm revisions).",
        &|(_, r, _)| Some(f64::from(u8::from(r.ready))),
        false,
    );
    gauge(
        w,
        "orchestra_replica_restarts_total",
        Kind::Counter,
        "Restarts of the replica (not for warm revisions).",
        &|(_, r, _)| Some(f64::from(r.restarts)),
        false,
    );
    gauge(
        w,
        "orchestra_replica_probes_total",
        Kind::Counter,
        "Healthcheck probes run, start-up ones included (not for warm revisions).",
        &|(_, r, _)| Some(r.probes_run as f64),
        false,
    );
    gauge(
        w,
        "orchestra_replica_probe_failures_total",
        Kind::Counter,
        "Healthcheck probes failed, start-up ones included (not for warm revisions).",
        &|(_, r, _)| Some(r.probe_failures as f64),
        false,
    );
    gauge(
        w,
        "orchestra_replica_probe_duration_seconds",
        Kind::Gauge,
        "Duration of the last healthcheck probe (not for warm revisions).",
        &|(_, r, _)| r.probes.back().map(|p| p.millis as f64 / 1000.0),
        false,
    );
    let usage = |(i, r, _): &Row<'_>| s.usage.get(&(i.instance.clone(), r.index)).copied();
    gauge(
        w,
        "orchestra_replica_cpu_seconds_total",
        Kind::Counter,
        "CPU time of the replica's process group or container, from 0 at each restart (not for warm revisions).",
        &|row| usage(row).map(|u| u.cpu_seconds),
        false,
    );
    gauge(
        w,
        "orchestra_replica_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of the replica's process group or container.",
        &|row| usage(row).map(|u| u.rss_bytes),
        true,
    );
}

fn render_delivery(w: &mut Writer, d: Option<&Delivery>) {
    w.family(
        "orchestra_state_readable",
        Kind::Gauge,
        "1 when this scrape could read the releases in state.db.",
    );
    w.sample(
        "orchestra_state_readable",
        &[],
        f64::from(u8::from(d.is_some())),
    );
    let empty = Delivery::default();
    let d = d.unwrap_or(&empty);
    w.family(
        "orchestra_deploys_total",
        Kind::Counter,
        "Releases in state.db by service, strategy and outcome (status).",
    );
    for ((service, strategy, outcome), n) in &d.releases {
        w.sample(
            "orchestra_deploys_total",
            &[
                ("service", service),
                ("strategy", strategy),
                ("outcome", outcome),
            ],
            *n as f64,
        );
    }
    w.family(
        "orchestra_rollbacks_total",
        Kind::Counter,
        "Rollbacks by service and trigger (automatic or manual).",
    );
    for ((service, trigger), n) in &d.rollbacks {
        w.sample(
            "orchestra_rollbacks_total",
            &[("service", service), ("trigger", trigger)],
            *n as f64,
        );
    }
    w.family(
        "orchestra_deploy_duration_seconds",
        Kind::Histogram,
        "Start to end of each ended release, by strategy.",
    );
    let mut strategies: Vec<&str> = d.durations.iter().map(|(s, _)| s.as_str()).collect();
    strategies.sort_unstable();
    strategies.dedup();
    for strategy in strategies {
        let values: Vec<f64> = d
            .durations
            .iter()
            .filter(|(s, _)| s == strategy)
            .map(|(_, v)| *v)
            .collect();
        histogram_of(
            w,
            "orchestra_deploy_duration_seconds",
            &[("strategy", strategy)],
            &values,
        );
    }
    w.family(
        "orchestra_deploy_change_failure_ratio",
        Kind::Gauge,
        "Deploys failed or rolled back per deploy that reached a verdict.",
    );
    if let Some(r) = d.change_failure_ratio() {
        w.sample("orchestra_deploy_change_failure_ratio", &[], r);
    }
    w.family(
        "orchestra_deploy_time_to_restore_seconds",
        Kind::Histogram,
        "Time from a change failure to traffic back on a good revision.",
    );
    histogram_of(
        w,
        "orchestra_deploy_time_to_restore_seconds",
        &[],
        &d.restore_seconds,
    );
    w.family(
        "orchestra_release_last_info",
        Kind::Gauge,
        "The strategy and outcome of each service's latest release (always 1).",
    );
    for (service, last) in &d.last {
        w.sample(
            "orchestra_release_last_info",
            &[
                ("service", service),
                ("strategy", &last.strategy),
                ("outcome", &last.outcome),
            ],
            1.0,
        );
    }
    w.family(
        "orchestra_release_last_duration_seconds",
        Kind::Gauge,
        "Start to end of each service's latest release, once it ended.",
    );
    for (service, last) in &d.last {
        if let Some(v) = last.duration_seconds {
            w.sample(
                "orchestra_release_last_duration_seconds",
                &[("service", service)],
                v,
            );
        }
    }
    w.family(
        "orchestra_canary_detection_seconds",
        Kind::Gauge,
        "For each service's latest canary that failed verification: its release's start to the failure.",
    );
    for (service, v) in &d.detect_seconds {
        w.sample(
            "orchestra_canary_detection_seconds",
            &[("service", service)],
            *v,
        );
    }
    let windows = |w: &mut Writer,
                   name: &str,
                   help: &str,
                   f: &dyn Fn(&orchestra_deploy::verify::Window) -> f64| {
        w.family(name, Kind::Gauge, help);
        for (service, v) in &d.verify {
            for (window, fig) in &v.windows {
                w.sample(name, &[("service", service), ("window", window)], f(fig));
            }
        }
    };
    windows(
        w,
        "orchestra_verify_window_requests",
        "Requests in the window the verifier last judged, per service and window (canary, stable, after_switch).",
        &|f| f.requests as f64,
    );
    windows(
        w,
        "orchestra_verify_window_errors",
        "Failed requests in the window the verifier last judged.",
        &|f| f.errors as f64,
    );
    windows(
        w,
        "orchestra_verify_window_p99_seconds",
        "99th percentile latency of the window the verifier last judged.",
        &|f| f.p99.as_secs_f64(),
    );
    w.family(
        "orchestra_verify_step_weight_ratio",
        Kind::Gauge,
        "The canary weight of the step the verifier last judged (0 to 1).",
    );
    for (service, v) in &d.verify {
        if let Some(p) = v.step_percent {
            w.sample(
                "orchestra_verify_step_weight_ratio",
                &[("service", service)],
                f64::from(p.min(100)) / 100.0,
            );
        }
    }
    w.family(
        "orchestra_verify_decision",
        Kind::Gauge,
        "The verifier's last decision per service: 1 for the decision taken (pass, fail, inconclusive), 0 for the others.",
    );
    for (service, v) in &d.verify {
        for decision in ["pass", "fail", "inconclusive"] {
            w.sample(
                "orchestra_verify_decision",
                &[("service", service), ("decision", decision)],
                f64::from(u8::from(v.decision == decision)),
            );
        }
    }
}

/// A histogram over plain values, with [`DEPLOY_BUCKETS`].
fn histogram_of(w: &mut Writer, name: &str, labels: &[(&str, &str)], values: &[f64]) {
    let cumulative: Vec<(f64, u64)> = DEPLOY_BUCKETS
        .iter()
        .map(|b| (*b, values.iter().filter(|v| **v <= *b).count() as u64))
        .collect();
    w.histogram(
        name,
        labels,
        &cumulative,
        values.iter().sum(),
        values.len() as u64,
    );
}

#[cfg(test)]
mod tests;
