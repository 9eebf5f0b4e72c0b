//! Failure reports: what a replica did before it failed, and the likely cause.

use std::time::Duration;

use orchestra_manifest::{Check, Service};
use tokio::time::Instant;

use super::EventKind;
use super::publish::now_ms;
use super::table::Inner;
use crate::backoff::Exit;
use crate::diagnose::{self, Evidence};
use crate::logs::Stream;
use crate::probe::{self, Failure, ProbeResult};
use crate::status::{FailureReport, Phase};

pub(super) async fn fail(
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
pub(super) async fn build_report(
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
    let probes = recent_probes(inner, key, idx);
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

pub(super) async fn report_after_exit(
    inner: &Inner,
    key: &str,
    svc: &Service,
    idx: u32,
    port: u16,
    started: Instant,
    exit: Exit,
) -> FailureReport {
    let probes = recent_probes(inner, key, idx);
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

/// The probe results kept for one replica, oldest first.
fn recent_probes(inner: &Inner, key: &str, idx: u32) -> Vec<ProbeResult> {
    inner
        .replica_status(key, idx, |r| r.probes.iter().cloned().collect())
        .unwrap_or_default()
}
