//! The rendering of a snapshot: families, labels, values.

#![allow(clippy::unwrap_used)]

use super::*;
use orchestra_proxy::{BreakerCounts, Histogram, RevisionStats};
use orchestra_runtime::status::{Phase, ReplicaStatus, Role};
use orchestra_state::{ReleaseRecord, ReleaseStatus};

fn traffic(revision: &str, weight: Option<u32>) -> RevisionTraffic {
    let mut latency = Histogram::default();
    latency.record(Duration::from_millis(3));
    latency.record(Duration::from_millis(30));
    latency.record(Duration::from_secs(20));
    RevisionTraffic {
        service: "api".into(),
        route: "/api".into(),
        revision: revision.into(),
        stats: RevisionStats {
            requests: 3,
            errors: 1,
            latency,
        },
        by_class: [0, 2, 0, 0, 1],
        latency_sum: Duration::from_micros(20_033_000),
        connect_errors: 4,
        timeouts: 1,
        in_flight: 0,
        weight,
        breakers: BreakerCounts {
            closed: 1,
            open: 1,
            half_open: 0,
        },
    }
}

fn instance(revision: &str) -> ServiceStatus {
    let mut r = ReplicaStatus::new(0);
    r.phase = Phase::Healthy;
    r.healthy = true;
    r.ready = true;
    r.restarts = 2;
    r.probes_run = 9;
    r.probe_failures = 3;
    r.pid = Some(4242);
    r.record_probe(orchestra_runtime::probe::ProbeResult {
        at_ms: 0,
        target: "GET http://127.0.0.1:1/health".into(),
        failure: None,
        status: Some(200),
        excerpt: String::new(),
        millis: 12,
    });
    ServiceStatus {
        name: "api".into(),
        kind: "process".into(),
        revision: revision.into(),
        instance: format!("api@{revision}"),
        role: Role::Live,
        phase: Phase::Healthy,
        reason: String::new(),
        waiting_on: vec![],
        replicas: vec![r],
        report: None,
    }
}

fn snapshot() -> Snapshot {
    let mut usage = HashMap::new();
    usage.insert(
        ("api@r1".to_owned(), 0),
        ReplicaUsage {
            cpu_seconds: 1.25,
            rss_bytes: 8_192_000.0,
        },
    );
    let rec = ReleaseRecord {
        id: 1,
        service: "api".into(),
        strategy: "canary".into(),
        from_revision: Some("r0".into()),
        to_revision: "r1".into(),
        status: ReleaseStatus::Succeeded,
        reason: String::new(),
        figures: serde_json::json!({
            "step": 50,
            "canary": {"requests": 40, "errors": 0, "p99": {"secs": 0, "nanos": 5_000_000}},
            "stable": {"requests": 60, "errors": 1, "p99": {"secs": 0, "nanos": 4_000_000}},
            "verdict": {"verdict": "pass"},
        }),
        secrets: serde_json::json!({}),
        restore_points: serde_json::json!([]),
        started_at_ms: 1_000,
        ended_at_ms: Some(13_000),
    };
    Snapshot {
        platform: (2, 1, false),
        traffic: vec![traffic("r1", Some(90)), traffic("r0", None)],
        instances: vec![instance("r1"), {
            let mut warm = instance("r0");
            warm.role = Role::Warm;
            warm
        }],
        usage,
        delivery: Some(delivery::summarize(&[rec])),
    }
}

/// The value of the one line that starts with `series ` exactly.
fn value(body: &str, series: &str) -> f64 {
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.strip_prefix(series).is_some_and(|r| r.starts_with(' ')))
        .collect();
    assert_eq!(lines.len(), 1, "{series} in\n{body}");
    lines[0].rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn every_family_has_help_and_type_before_its_samples_and_appears_once() {
    let body = render(&snapshot());
    let mut seen = std::collections::HashSet::new();
    let mut current = String::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(seen.insert(name.clone()), "{name} twice");
            current = name;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(rest.starts_with(&format!("{current} ")), "{line}");
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| *b == current))
                .unwrap_or(name);
            assert_eq!(base, current, "{line} outside its family");
        }
    }
    for counter in body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter(|l| l.ends_with(" counter"))
    {
        assert!(
            counter.split(' ').next().unwrap().ends_with("_total"),
            "{counter}"
        );
    }
}

#[test]
fn proxy_figures_per_route_service_and_revision() {
    let body = render(&snapshot());
    let l = "service=\"api\",revision=\"r1\"";
    assert_eq!(
        value(
            &body,
            &format!("orchestra_proxy_requests_total{{{l},status_class=\"2xx\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &body,
            &format!("orchestra_proxy_requests_total{{{l},status_class=\"5xx\"}}")
        ),
        1.0
    );
    // Classes never seen are left out, except 2xx and 5xx.
    assert!(!body.contains("status_class=\"4xx\""));
    let h = "http_server_request_duration_seconds";
    assert_eq!(
        value(&body, &format!("{h}_bucket{{{l},le=\"0.005\"}}")),
        1.0
    );
    assert_eq!(value(&body, &format!("{h}_bucket{{{l},le=\"0.05\"}}")), 2.0);
    assert_eq!(value(&body, &format!("{h}_bucket{{{l},le=\"10\"}}")), 2.0);
    assert_eq!(value(&body, &format!("{h}_bucket{{{l},le=\"+Inf\"}}")), 3.0);
    assert_eq!(value(&body, &format!("{h}_count{{{l}}}")), 3.0);
    assert!((value(&body, &format!("{h}_sum{{{l}}}")) - 20.033).abs() < 1e-9);
    assert_eq!(body.matches(&format!("{h}_bucket{{{l},")).count(), 15);
    assert_eq!(
        value(
            &body,
            &format!("orchestra_proxy_upstream_connect_errors_total{{{l}}}")
        ),
        4.0
    );
    assert_eq!(
        value(
            &body,
            &format!("orchestra_proxy_upstream_timeouts_total{{{l}}}")
        ),
        1.0
    );
    assert_eq!(
        value(&body, &format!("orchestra_proxy_breakers_open{{{l}}}")),
        1.0
    );
    assert_eq!(
        value(
            &body,
            &format!("orchestra_proxy_traffic_weight_ratio{{{l}}}")
        ),
        0.9
    );
    assert_eq!(
        value(&body, &format!("http_server_active_requests{{{l}}}")),
        0.0
    );
    // A revision out of the table (warm) keeps its counters, not its histogram or weight.
    let warm = "service=\"api\",revision=\"r0\"";
    assert_eq!(
        value(
            &body,
            &format!("orchestra_proxy_requests_total{{{warm},status_class=\"2xx\"}}")
        ),
        2.0
    );
    assert!(!body.contains(&format!("{h}_count{{{warm}}}")));
    assert!(!body.contains(&format!("orchestra_proxy_traffic_weight_ratio{{{warm}}}")));
    assert!(!body.contains(&format!("orchestra_proxy_breakers_open{{{warm}}}")));
    assert!(!body.contains(&format!(
        "orchestra_proxy_upstream_timeouts_total{{{warm}}}"
    )));
    assert_eq!(
        value(
            &body,
            "orchestra_route_info{route=\"/api\",service=\"api\"}"
        ),
        1.0
    );
}

#[test]
fn replica_figures_per_service_revision_and_replica() {
    let body = render(&snapshot());
    let l = "service=\"api\",revision=\"r1\",replica=\"0\"";
    assert_eq!(
        value(&body, &format!("orchestra_replica_healthy{{{l}}}")),
        1.0
    );
    assert_eq!(
        value(&body, &format!("orchestra_replica_restarts_total{{{l}}}")),
        2.0
    );
    // 9 set by hand, one recorded.
    assert_eq!(
        value(&body, &format!("orchestra_replica_probes_total{{{l}}}")),
        10.0
    );
    assert_eq!(
        value(
            &body,
            &format!("orchestra_replica_probe_failures_total{{{l}}}")
        ),
        3.0
    );
    assert_eq!(
        value(
            &body,
            &format!("orchestra_replica_probe_duration_seconds{{{l}}}")
        ),
        0.012
    );
    assert_eq!(
        value(
            &body,
            &format!("orchestra_replica_cpu_seconds_total{{{l}}}")
        ),
        1.25
    );
    assert_eq!(
        value(
            &body,
            &format!("orchestra_replica_resident_memory_bytes{{{l}}}")
        ),
        8_192_000.0
    );
    // A warm revision's replica: health and usage, no probe detail.
    let w = "service=\"api\",revision=\"r0\",replica=\"0\"";
    assert_eq!(
        value(&body, &format!("orchestra_replica_healthy{{{w}}}")),
        1.0
    );
    assert!(!body.contains(&format!("orchestra_replica_probes_total{{{w}}}")));
    assert_eq!(value(&body, "orchestra_services"), 2.0);
    assert_eq!(value(&body, "orchestra_services_healthy"), 1.0);
    assert_eq!(value(&body, "orchestra_health_ok"), 0.0);
}

#[test]
fn release_figures_from_state() {
    let body = render(&snapshot());
    assert_eq!(
        value(
            &body,
            "orchestra_deploys_total{service=\"api\",strategy=\"canary\",outcome=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(value(&body, "orchestra_deploy_change_failure_ratio"), 0.0);
    assert_eq!(
        value(
            &body,
            "orchestra_deploy_duration_seconds_bucket{strategy=\"canary\",le=\"10\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            &body,
            "orchestra_deploy_duration_seconds_bucket{strategy=\"canary\",le=\"30\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&body, "orchestra_deploy_time_to_restore_seconds_count"),
        0.0
    );
    assert_eq!(
        value(
            &body,
            "orchestra_verify_window_requests{service=\"api\",window=\"canary\"}"
        ),
        40.0
    );
    assert_eq!(
        value(
            &body,
            "orchestra_verify_window_p99_seconds{service=\"api\",window=\"stable\"}"
        ),
        0.004
    );
    assert_eq!(
        value(&body, "orchestra_verify_step_weight_ratio{service=\"api\"}"),
        0.5
    );
    assert_eq!(
        value(
            &body,
            "orchestra_verify_decision{service=\"api\",decision=\"pass\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &body,
            "orchestra_verify_decision{service=\"api\",decision=\"fail\"}"
        ),
        0.0
    );
    assert_eq!(value(&body, "orchestra_state_readable"), 1.0);
}

#[test]
fn an_unreadable_state_says_so_and_keeps_the_families() {
    let mut s = snapshot();
    s.delivery = None;
    let body = render(&s);
    assert_eq!(value(&body, "orchestra_state_readable"), 0.0);
    assert!(body.contains("# TYPE orchestra_deploys_total counter"));
    assert!(!body.contains("orchestra_deploys_total{"));
}
