//! One release's task: it reads its phase from the rollout, does the waiting
//! that phase needs (hooks, health, a verification window, the watch) and
//! answers with the next input. It holds no state of its own: a promote, an
//! abort or a rollback changes the phase under it, and it follows or ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use orchestra_manifest::{OnInconclusive, Service};
use orchestra_proxy::RevisionStats;
use orchestra_runtime::status::Settled;
use serde_json::json;
use tokio::time::Instant;

use super::synthetic::{self, Synthetic};
use super::{DeployError, Deployer, VERIFY_EVERY};
use crate::hooks;
use crate::rollout::{Input, Kind, Phase, Rev, Rollout};
use crate::verify::{self, Slo, Verdict, Window};

impl Deployer {
    /// Who takes the backups `deploy.backup_before` names (the daemon sets it).
    pub fn set_restore_points(&self, taker: Arc<dyn crate::RestorePoints>) {
        *self.inner.restore_points.lock() = Some(taker);
    }

    /// Back up each service of `def.deploy.backup_before`, recording each with the
    /// release as soon as it is taken.
    async fn take_restore_points(&self, release: i64, def: &Service) -> Result<(), String> {
        let taker = self
            .inner
            .restore_points
            .lock()
            .clone()
            .ok_or_else(|| "this daemon cannot take backups".to_owned())?;
        let mut points = Vec::new();
        for name in &def.deploy.backup_before {
            let point = taker
                .take(name.clone(), release)
                .await
                .map_err(|e| format!("backup of {name}: {e}"))?;
            points.push(point);
            if let Err(e) = self
                .inner
                .state
                .release_restore_points(release, &json!(points))
            {
                return Err(format!("cannot record the restore point: {e}"));
            }
        }
        Ok(())
    }

    /// Apply `input` only while `release` still holds the service: a task
    /// that lost its release (aborted, rolled back) must change nothing.
    fn step(&self, service: &str, release: i64, input: Input) -> Result<Rollout, DeployError> {
        match self.rollout(service).and_then(|r| r.release()) {
            Some((id, _)) if id == release => self.apply(service, input),
            _ => Err(DeployError::Refused(
                crate::rollout::Refused::NothingInProgress(service.to_owned()),
            )),
        }
    }

    /// Resolves once the service's phase is no longer `phase`.
    async fn moved(&self, service: &str, phase: &Phase) {
        let mut rx = self.inner.changed.subscribe();
        loop {
            if self.rollout(service).is_none_or(|r| r.phase != *phase) {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    fn figures(&self, release: i64, figures: &serde_json::Value) {
        if let Err(e) = self.inner.state.release_figures(release, figures) {
            tracing::warn!("cannot record the figures of release {release}: {e}");
        }
    }

    /// Drive release `release` of `def` from its start to a settled state.
    pub(super) async fn drive(&self, release: i64, def: Arc<Service>) {
        let service = def.name.clone();
        let Some(Phase::Starting {
            plan, candidate, ..
        }) = self.rollout(&service).map(|r| r.phase)
        else {
            return;
        };
        let hooks_run = plan.kind != Kind::Rollback;
        let dir = self.inner.runtime.manifest().dir.clone();
        if hooks_run
            && !def.deploy.backup_before.is_empty()
            && let Err(e) = self.take_restore_points(release, &def).await
        {
            let reason = format!("restore point failed, nothing changed: {e}");
            let _ = self.step(&service, release, Input::CandidateFailed { reason });
            return;
        }
        if hooks_run {
            for cmd in &def.deploy.hooks.pre {
                if let Err(e) = hooks::run(cmd, &dir, &def.env, None).await {
                    let reason = format!("pre hook failed, nothing changed: {e}");
                    let _ = self.step(&service, release, Input::CandidateFailed { reason });
                    return;
                }
            }
        }
        let Ok(r) = self.step(&service, release, Input::PreHooksDone) else {
            return;
        };
        self.flush(&service).await;
        let rt = self.inner.runtime.clone();
        let settled = tokio::select! {
            s = rt.instance_settled(&candidate.key) => s,
            _ = self.moved(&service, &r.phase) => return,
        };
        if settled != Settled::Up {
            let report = rt.instance(&candidate.key).and_then(|s| s.report);
            let text = report.as_ref().map(|r| r.render()).unwrap_or_default();
            self.figures(release, &json!({ "report": report }));
            let reason = format!(
                "revision {} did not become healthy; it never got traffic\n{text}",
                candidate.revision
            );
            let _ = self.step(&service, release, Input::CandidateFailed { reason });
            return;
        }
        let addr = rt
            .ready_addrs(&candidate.key)
            .first()
            .map(|a| format!("http://{a}"));
        if hooks_run {
            for cmd in &def.deploy.hooks.smoke {
                if let Err(e) = hooks::run(cmd, &dir, &def.env, addr.as_deref()).await {
                    let reason = format!(
                        "smoke test failed against {}, it never got traffic: {e}",
                        candidate.revision
                    );
                    let _ = self.step(&service, release, Input::CandidateFailed { reason });
                    return;
                }
            }
        }
        let t0 = Instant::now();
        if self.step(&service, release, Input::CandidateUp).is_err() {
            return;
        }
        if plan.kind == Kind::BlueGreen {
            let switch_ms = t0.elapsed().as_secs_f64() * 1000.0;
            self.figures(release, &json!({ "switch_ms": switch_ms }));
        }
        let mut post_hooks_done = !hooks_run;
        loop {
            let Some(r) = self.rollout(&service) else {
                return;
            };
            if r.release().map(|x| x.0) != Some(release) {
                return;
            }
            let next = match &r.phase {
                Phase::Canary {
                    plan,
                    candidate,
                    step,
                } => {
                    let weight = plan.steps.get(*step).copied().unwrap_or(100);
                    self.canary_step(&def, release, &r, candidate, weight).await
                }
                Phase::Switched { until_ms, .. } => {
                    if !post_hooks_done {
                        post_hooks_done = true;
                        for cmd in &def.deploy.hooks.post {
                            if let Err(e) = hooks::run(cmd, &dir, &def.env, addr.as_deref()).await {
                                tracing::warn!("post hook of {service} failed: {e}");
                            }
                        }
                    }
                    self.watch(&def, release, &r, *until_ms).await
                }
                _ => return,
            };
            if let Some(input) = next {
                let _ = self.step(&service, release, input);
            }
        }
    }

    /// One canary step: the verdict of its window, held while inconclusive
    /// until the deadline. `None` when someone else moved the phase.
    async fn canary_step(
        &self,
        def: &Service,
        release: i64,
        r: &Rollout,
        candidate: &Rev,
        weight: u32,
    ) -> Option<Input> {
        let proxy = &self.inner.proxy;
        let slo = slo_of(def);
        let verify = &def.deploy.verify;
        let start_c = proxy.stats(&candidate.revision);
        // Probe traffic while live traffic is short of min_requests.
        let short = Arc::new(AtomicBool::new(true));
        let synthetic = verify.synthetic.as_ref().map(|sy| {
            let rt = self.inner.runtime.clone();
            let key = candidate.key.clone();
            let s = short.clone();
            Synthetic::start(
                sy.path.clone(),
                sy.rate,
                move || rt.ready_addrs(&key),
                move || s.load(Ordering::Relaxed),
            )
        });
        let start_s = proxy.stats(&r.stable.revision);
        let begun = Instant::now();
        let step_end = begun + def.deploy.step_interval;
        let deadline = begun + def.deploy.step_interval.max(verify.deadline);
        let moved = self.moved(&r.service, &r.phase);
        tokio::pin!(moved);
        loop {
            let now = Instant::now();
            let wait = if now < step_end {
                (step_end - now).min(VERIFY_EVERY)
            } else {
                VERIFY_EVERY.min(
                    deadline
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                )
            };
            tokio::select! {
                _ = &mut moved => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            let live = window(&proxy.stats(&candidate.revision), &start_c);
            short.store(live.requests < slo.min_requests, Ordering::Relaxed);
            let probes = synthetic.as_ref().map(Synthetic::window);
            let canary = probes
                .as_ref()
                .map_or(live, |p| synthetic::combined(&live, p));
            let stable = window(&proxy.stats(&r.stable.revision), &start_s);
            let verdict = verify::judge(&canary, Some(&stable), &slo);
            let now = Instant::now();
            let holding = now >= step_end && matches!(verdict, Verdict::Inconclusive(_));
            let mut figures = json!({
                "step": weight, "canary": canary, "stable": stable, "verdict": verdict,
                "holding": holding,
            });
            if let Some(p) = &probes {
                figures["live"] = json!(live);
                figures["synthetic"] = json!(p);
            }
            match verdict {
                Verdict::Fail(reasons) => {
                    // Keep the evidence before the canary is stopped.
                    figures["probes"] = json!(self.probe_summaries(&candidate.key));
                    figures["logs"] = json!(self.log_tail(&r.service));
                    self.figures(release, &figures);
                    return Some(Input::StepFailed {
                        reason: format!(
                            "canary {} failed verification at {weight}%: {}",
                            candidate.revision,
                            reasons.join("; ")
                        ),
                    });
                }
                Verdict::Pass if now >= step_end => {
                    self.figures(release, &figures);
                    return Some(Input::StepPassed {
                        note: String::new(),
                    });
                }
                Verdict::Inconclusive(reasons) if now >= deadline => {
                    figures["inconclusive"] = json!(verify.on_inconclusive);
                    self.figures(release, &figures);
                    let why = format!(
                        "{} by its {}s deadline",
                        reasons.join("; "),
                        verify.deadline.as_secs_f64()
                    );
                    return Some(match verify.on_inconclusive {
                        OnInconclusive::Pass => Input::StepPassed {
                            note: format!(
                                " (the step at {weight}% stayed inconclusive: {why}; on_inconclusive: pass)"
                            ),
                        },
                        OnInconclusive::Fail => Input::StepFailed {
                            reason: format!(
                                "canary {} could not be verified at {weight}%: {why} (on_inconclusive: fail); traffic is back on {}",
                                candidate.revision, r.stable.revision
                            ),
                        },
                    });
                }
                _ => self.figures(release, &figures),
            }
        }
    }

    /// Watch the new stable revision while the old one is warm: a breach
    /// switches back. `None` when someone else moved the phase.
    async fn watch(
        &self,
        def: &Service,
        release: i64,
        r: &Rollout,
        until_ms: i64,
    ) -> Option<Input> {
        let Phase::Switched { previous, .. } = &r.phase else {
            return None;
        };
        let slo = slo_of(def);
        let start = self.inner.proxy.stats(&r.stable.revision);
        let moved = self.moved(&r.service, &r.phase);
        tokio::pin!(moved);
        loop {
            let left = until_ms.saturating_sub(self.inner.clock.now_ms());
            if left <= 0 {
                return Some(Input::WatchEnded);
            }
            let wait = Duration::from_millis(u64::try_from(left).unwrap_or(0)).min(VERIFY_EVERY);
            tokio::select! {
                _ = &mut moved => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            let w = window(&self.inner.proxy.stats(&r.stable.revision), &start);
            if let Verdict::Fail(reasons) = verify::judge(&w, None, &slo) {
                self.figures(
                    release,
                    &json!({"after_switch": w, "verdict": Verdict::Fail(reasons.clone())}),
                );
                return Some(Input::WatchBreached {
                    reason: format!(
                        "{} breached its SLO after the switch: {}; traffic is back on {}",
                        r.stable.revision,
                        reasons.join("; "),
                        previous.revision
                    ),
                });
            }
        }
    }

    fn probe_summaries(&self, key: &str) -> Vec<String> {
        self.inner
            .runtime
            .instance(key)
            .map(|s| {
                s.replicas
                    .iter()
                    .flat_map(|r| r.probes.iter().map(|p| p.summary()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn log_tail(&self, service: &str) -> Vec<String> {
        self.inner
            .runtime
            .logs()
            .tail(Some(service), 20)
            .iter()
            .map(|l| l.render())
            .collect()
    }
}

fn window(now: &RevisionStats, start: &RevisionStats) -> Window {
    let w = now.since(start);
    Window {
        requests: w.requests,
        errors: w.errors,
        p99: w.latency.quantile(0.99),
    }
}

pub(super) fn slo_of(def: &Service) -> Slo {
    Slo {
        max_error_rate: def.deploy.verify.max_error_rate,
        max_p99: def.deploy.verify.max_p99,
        min_requests: def.deploy.verify.min_requests,
    }
}
