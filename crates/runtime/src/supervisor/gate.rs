//! The gate: one task per instance waits until its dependencies' conditions
//! are met (or can never be), then runs its replicas.

use std::sync::Arc;

use orchestra_manifest::Service;
use orchestra_plan::{Gate, gate_all};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::EventKind;
use super::publish::now_ms;
use super::replica::replica;
use super::table::Inner;
use crate::status::{FailureReport, Phase, ReplicaStatus};

pub(super) async fn drive(
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
            let t = inner.table.lock();
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
                // Publish only a change: each update wakes every waiter, this
                // task included, which would then spin re-deciding.
                let unchanged = inner.table.lock().entries.get(&key).is_some_and(|e| {
                    e.status.phase == Phase::Waiting
                        && e.status.reason == reason
                        && e.status.waiting_on == waiting
                });
                if !unchanged {
                    inner.update(&key, |s| {
                        s.phase = Phase::Waiting;
                        s.reason = reason.clone();
                        s.waiting_on = waiting.clone();
                    });
                }
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
