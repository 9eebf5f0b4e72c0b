//! Health: the startup probe (fast while a replica comes up), then
//! liveness, with readiness alongside.

use std::time::Duration;

use orchestra_manifest::{Check, Probe, ProbeFailure, Service};
use tokio::time::Instant;

use super::EventKind;
use super::table::Inner;
use crate::diagnose;
use crate::logs::Stream;
use crate::probe::{self, ExecContext};
use crate::status::Phase;

/// Until the first success, HTTP and TCP probes run this often, so that a
/// dependent starts as soon as its dependency is up (a refused connect costs
/// microseconds)...
const FAST_PROBE: Duration = Duration::from_millis(5);
/// ...for this long after the start; slower starters are probed less eagerly.
const FAST_PROBE_FOR: Duration = Duration::from_secs(2);
const SLOW_START_PROBE: Duration = Duration::from_millis(25);
/// Same for exec probes, which cost a process each.
const FAST_EXEC_PROBE: Duration = Duration::from_millis(200);

/// Startup, then liveness, with readiness alongside. Only resolves when the
/// replica must be restarted: with the reason.
pub(super) async fn watch_health(
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
                failures_after_grace = failures_after_grace.saturating_add(1);
                if failures_after_grace >= p.retries {
                    let why = format!(
                        "did not become healthy within start_period {} and {} more probe(s): {summary}",
                        diagnose::human(p.start_period),
                        p.retries
                    );
                    if p.on_failure == ProbeFailure::Restart {
                        return why;
                    }
                    if failures_after_grace == p.retries {
                        keep_unhealthy(inner, key, name, idx, why);
                    }
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
                    let back = consecutive >= p.retries;
                    inner.update_replica(key, idx, |rs| {
                        rs.healthy = true;
                        rs.phase = Phase::Healthy;
                        rs.reason = "healthy again".into();
                    });
                    if back {
                        inner.emit(key, name, Some(idx), EventKind::Healthy, "healthy again");
                    }
                }
                consecutive = 0;
            } else {
                consecutive = consecutive.saturating_add(1);
                if consecutive >= p.retries {
                    let why = format!("healthcheck failed {consecutive} times in a row: {summary}");
                    if p.on_failure == ProbeFailure::Restart {
                        return why;
                    }
                    if consecutive == p.retries {
                        keep_unhealthy(inner, key, name, idx, why);
                    }
                }
            }
        }
    };
    tokio::select! {
        h = health => h,
        _ = readiness => String::new(),
    }
}

/// `on_failure: none`: the replica is unhealthy, and keeps running and being probed;
/// the next success makes it healthy again.
fn keep_unhealthy(inner: &Inner, key: &str, name: &str, idx: u32, why: String) {
    let reason = format!("{why} (kept running: on_failure is none)");
    inner.update_replica(key, idx, |rs| {
        // `ready` stays the readiness probe's; routing and gates also need `healthy`.
        rs.healthy = false;
        rs.phase = Phase::Unhealthy;
        rs.reason = reason.clone();
    });
    inner.emit(key, name, Some(idx), EventKind::Unhealthy, reason);
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
