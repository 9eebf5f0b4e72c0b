//! The deploy controller: ships a new revision of a service behind the proxy,
//! verifies it on live traffic, and rolls back by itself.
//!
//! The order of a switch is kamal-proxy's: start the new revision → wait for
//! health *outside* any lock → swap the route → persist → drain the old one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orchestra_manifest::{Service, Strategy};
use orchestra_proxy::{Proxy, RevisionStats};
use orchestra_runtime::Runtime;
use orchestra_runtime::status::Settled;
use orchestra_state::{RoutingRecord, StateStore};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::hooks;
use crate::routes::{self, Split};
use crate::verify::{self, Slo, Verdict, Window};

/// Why a deploy command was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No such service.
    #[error("no service `{0}` in this platform")]
    UnknownService(String),
    /// One deploy per service at a time.
    #[error(
        "a deploy of `{service}` is already in progress (release {release}); wait for it, or `orchestra promote|abort {service}`"
    )]
    InProgress {
        /// Service.
        service: String,
        /// The running release.
        release: i64,
    },
    /// Nothing to promote or abort.
    #[error("no deploy of `{0}` is in progress")]
    NothingInProgress(String),
    /// The service has no route, so traffic cannot be shifted.
    #[error(
        "`{0}` has no `route:`; blue-green and canary need one (use `deploy: {{ strategy: recreate }}`)"
    )]
    NoRoute(String),
    /// Rollback target unknown.
    #[error("no revision `{revision}` of `{service}` is known; see `orchestra history {service}`")]
    UnknownRevision {
        /// Service.
        service: String,
        /// Revision asked for.
        revision: String,
    },
    /// Nothing to roll back to.
    #[error("`{0}` has no previous revision to roll back to")]
    NoPrevious(String),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] orchestra_state::StateError),
}

/// A command to a running deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Promote,
    Abort,
}

struct Active {
    release: i64,
    commands: mpsc::UnboundedSender<Command>,
}

/// A revision kept running after it stopped taking traffic.
#[derive(Debug, Clone)]
struct Warm {
    revision: String,
    key: String,
    until: Instant,
}

/// What a deploy started (`deploy` answers with these).
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// Service.
    pub service: String,
    /// Release id, when one was started.
    pub release: Option<i64>,
    /// What happened: `deploying`, `unchanged`, or why refused.
    pub result: String,
}

struct Inner {
    runtime: Runtime,
    proxy: Proxy,
    state: Arc<StateStore>,
    splits: Mutex<BTreeMap<String, Split>>,
    active: Mutex<HashMap<String, Active>>,
    warm: Mutex<HashMap<String, Vec<Warm>>>,
    /// The table last swapped in, to skip swaps that change nothing.
    published: Mutex<Option<Vec<orchestra_proxy::Route>>>,
}

/// The deploy controller. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// How often the verifier looks at a canary within a step, and at a new
/// revision while the old one is kept warm.
const VERIFY_EVERY: Duration = Duration::from_millis(500);
/// Time after a route swap before the old revision's in-flight count is trusted.
const SWAP_SETTLE: Duration = Duration::from_millis(100);

impl Deployer {
    /// Take over routing for every service with a `route:`; the table follows
    /// the runtime (a replica that is not ready leaves the rotation).
    pub fn start(runtime: Runtime, proxy: Proxy, state: Arc<StateStore>) -> Deployer {
        let mut splits = BTreeMap::new();
        for svc in &runtime.manifest().services {
            if let (Some(spec), Some(key)) = (&svc.route, runtime.live_key(&svc.name)) {
                let rev = runtime
                    .instance(&key)
                    .map(|s| s.revision)
                    .unwrap_or_default();
                splits.insert(
                    svc.name.clone(),
                    Split {
                        spec: spec.clone(),
                        stable: (rev, key),
                        canary: None,
                        paused: false,
                        maintenance: None,
                    },
                );
            }
        }
        let d = Deployer {
            inner: Arc::new(Inner {
                runtime,
                proxy,
                state,
                splits: Mutex::new(splits),
                active: Mutex::new(HashMap::new()),
                warm: Mutex::new(HashMap::new()),
                published: Mutex::new(None),
            }),
        };
        d.publish();
        let follower = d.clone();
        tokio::spawn(async move {
            let mut rx = follower.inner.runtime.subscribe();
            while rx.changed().await.is_ok() {
                follower.publish();
            }
        });
        let reaper = d.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                reaper.expire_warm().await;
            }
        });
        d
    }

    /// The proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.inner.proxy
    }

    /// Recompute the routing table from the splits and the runtime, and swap it in.
    pub fn publish(&self) {
        let table = {
            let splits = lock(&self.inner.splits);
            routes::table(&splits, |key| self.inner.runtime.ready_addrs(key))
        };
        // The runtime changes often (probes, restarts elsewhere); most changes
        // leave the table as it is.
        let mut last = lock(&self.inner.published);
        if last.as_ref() == Some(&table) {
            return;
        }
        match self.inner.proxy.set_routes(table.clone()) {
            Ok(()) => *last = Some(table),
            Err(e) => tracing::error!("routing table rejected: {e}"),
        }
    }

    fn persist(&self, service: &str, release: Option<i64>) {
        let rec = lock(&self.inner.splits)
            .get(service)
            .map(|s| RoutingRecord {
                service: service.to_owned(),
                stable_revision: s.stable.0.clone(),
                canary_revision: s.canary.as_ref().map(|c| c.0.clone()),
                canary_weight: s.canary.as_ref().map(|c| c.2).unwrap_or(0),
                release_id: release,
            });
        if let Some(r) = rec
            && let Err(e) = self.inner.state.set_routing(&r)
        {
            tracing::error!("cannot persist routing of {service}: {e}");
        }
    }

    fn event(&self, service: &str, kind: &str, reason: &str) {
        let _ = self
            .inner
            .state
            .record_event(None, Some(service), None, kind, reason);
        self.inner
            .runtime
            .logs()
            .push(orchestra_runtime::logs::LogLine {
                at_ms: orchestra_state::now_ms(),
                service: service.to_owned(),
                replica: 0,
                stream: orchestra_runtime::logs::Stream::Orchestra,
                text: format!("{kind}: {reason}"),
            });
    }

    /// Deploy these definitions: each whose revision differs from the live
    /// one starts a release. `strategy` overrides the manifest's.
    pub fn deploy(&self, defs: Vec<Service>, strategy: Option<Strategy>) -> Vec<Started> {
        defs.into_iter()
            .map(|def| {
                let service = def.name.clone();
                match self.deploy_one(def, strategy) {
                    Ok(Some(release)) => Started {
                        service,
                        release: Some(release),
                        result: "deploying".into(),
                    },
                    Ok(None) => Started {
                        service,
                        release: None,
                        result: "unchanged".into(),
                    },
                    Err(e) => Started {
                        service,
                        release: None,
                        result: e.to_string(),
                    },
                }
            })
            .collect()
    }

    fn deploy_one(
        &self,
        def: Service,
        strategy: Option<Strategy>,
    ) -> Result<Option<i64>, DeployError> {
        let rt = &self.inner.runtime;
        let live_key = rt
            .live_key(&def.name)
            .ok_or_else(|| DeployError::UnknownService(def.name.clone()))?;
        let live = rt.instance(&live_key);
        let from = live.as_ref().map(|s| s.revision.clone());
        if from.as_deref() == Some(def.revision().as_str()) {
            return Ok(None);
        }
        let strategy = strategy.unwrap_or(def.deploy.strategy);
        if strategy != Strategy::Recreate && def.route.is_none() {
            return Err(DeployError::NoRoute(def.name.clone()));
        }
        let mut active = lock(&self.inner.active);
        if let Some(a) = active.get(&def.name) {
            return Err(DeployError::InProgress {
                service: def.name.clone(),
                release: a.release,
            });
        }
        let snapshot = serde_json::to_string(&def).unwrap_or_default();
        let release = self.inner.state.begin_release(
            &def.name,
            strategy_name(strategy),
            from.as_deref(),
            &def.revision(),
            &snapshot,
        )?;
        let (tx, rx) = mpsc::unbounded_channel();
        active.insert(
            def.name.clone(),
            Active {
                release,
                commands: tx,
            },
        );
        drop(active);
        self.event(
            &def.name,
            "deploying",
            &format!(
                "release {release}: {} -> {} ({})",
                from.as_deref().unwrap_or("-"),
                def.revision(),
                strategy_name(strategy)
            ),
        );
        let me = self.clone();
        tokio::spawn(async move {
            let service = def.name.clone();
            let outcome = me.run(release, def, live_key, strategy, rx).await;
            me.release_lock(&service, release);
            let (status, reason) = match &outcome {
                Ok(r) => ("succeeded", r.clone()),
                Err(Ended { status, reason }) => (*status, reason.clone()),
            };
            if let Err(e) = me.inner.state.end_release(release, status, &reason) {
                tracing::error!("cannot record the end of release {release}: {e}");
            }
            me.event(
                &service,
                &format!("release-{status}"),
                &format!("release {release}: {reason}"),
            );
        });
        Ok(Some(release))
    }

    async fn run(
        &self,
        release: i64,
        def: Service,
        old_key: String,
        strategy: Strategy,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> Result<String, Ended> {
        let rt = self.inner.runtime.clone();
        let service = def.name.clone();
        let dir = rt.manifest().dir.clone();
        for cmd in &def.deploy.hooks.pre {
            hooks::run(cmd, &dir, &def.env, None)
                .await
                .map_err(|e| Ended::failed(format!("pre hook failed, nothing changed: {e}")))?;
        }
        if strategy == Strategy::Recreate {
            self.event(
                &service,
                "downtime",
                "recreate: the old revision stops before the new one starts",
            );
            rt.remove_instance(&old_key).await;
        }
        let key = rt.start_revision(&def, "candidate");
        let new_rev = def.revision();
        match rt.instance_settled(&key).await {
            Settled::Up => {}
            _ => {
                let report = rt.instance(&key).and_then(|s| s.report);
                let text = report.as_ref().map(|r| r.render()).unwrap_or_default();
                let _ = self
                    .inner
                    .state
                    .release_figures(release, &json!({ "report": report }));
                rt.remove_instance(&key).await;
                if strategy == Strategy::Recreate {
                    // The old one is gone: bring it back so the service is not left down.
                    if let Some(old) = self.definition(&service, &old_key) {
                        let k = rt.start_revision(&old, "live");
                        rt.set_live(&k);
                    }
                }
                return Err(Ended::failed(format!(
                    "revision {new_rev} did not become healthy; it never got traffic\n{text}"
                )));
            }
        }
        let addr = rt.ready_addrs(&key).first().map(|a| format!("http://{a}"));
        for cmd in &def.deploy.hooks.smoke {
            if let Err(e) = hooks::run(cmd, &dir, &def.env, addr.as_deref()).await {
                rt.remove_instance(&key).await;
                return Err(Ended::failed(format!(
                    "smoke test failed against {new_rev}, it never got traffic: {e}"
                )));
            }
        }
        let old_rev = rt
            .instance(&old_key)
            .map(|s| s.revision)
            .unwrap_or_default();
        let slo = slo_of(&def);
        match strategy {
            Strategy::Recreate => {
                rt.set_live(&key);
                self.set_stable(&service, &new_rev, &key, Some(release));
            }
            Strategy::BlueGreen => {
                let t = Instant::now();
                self.switch(&service, &new_rev, &key, Some(release));
                let switch_ms = t.elapsed().as_secs_f64() * 1000.0;
                let _ = self
                    .inner
                    .state
                    .release_figures(release, &json!({ "switch_ms": switch_ms }));
                self.event(
                    &service,
                    "switched",
                    &format!("100% to {new_rev} in {switch_ms:.2}ms"),
                );
                self.drain_and_keep_warm(
                    &service,
                    &old_rev,
                    &old_key,
                    def.deploy.drain_timeout,
                    def.deploy.keep_warm,
                )
                .await;
            }
            Strategy::Canary => {
                let mut promoted = false;
                for weight in routes::steps(&def.deploy.steps) {
                    if weight == 100 || promoted {
                        break;
                    }
                    self.set_canary(&service, &new_rev, &key, weight, release);
                    self.event(&service, "canary-step", &format!("{weight}% to {new_rev}"));
                    let start_c = self.inner.proxy.stats(&new_rev);
                    let start_s = self.inner.proxy.stats(&old_rev);
                    let step_end = Instant::now() + def.deploy.step_interval;
                    loop {
                        let wait = step_end
                            .saturating_duration_since(Instant::now())
                            .min(VERIFY_EVERY);
                        tokio::select! {
                            c = commands.recv() => match c {
                                Some(Command::Promote) => { promoted = true; break; }
                                Some(Command::Abort) | None => {
                                    self.abort_canary(&service, &old_rev, &old_key, &key, release).await;
                                    return Err(Ended::aborted("aborted by request; all traffic back on the stable revision".into()));
                                }
                            },
                            _ = tokio::time::sleep(wait) => {}
                        }
                        let canary = window(&self.inner.proxy.stats(&new_rev), &start_c);
                        let stable = window(&self.inner.proxy.stats(&old_rev), &start_s);
                        let verdict = verify::judge(&canary, Some(&stable), &slo);
                        let figures = json!({"step": weight, "canary": canary, "stable": stable, "verdict": verdict});
                        let _ = self.inner.state.release_figures(release, &figures);
                        if let Verdict::Fail(reasons) = verdict {
                            // Keep the evidence before the canary is stopped.
                            let mut figures = figures;
                            figures["probes"] = json!(
                                rt.instance(&key)
                                    .map(|s| s
                                        .replicas
                                        .iter()
                                        .flat_map(|r| r.probes.iter().map(|p| p.summary()))
                                        .collect::<Vec<_>>())
                                    .unwrap_or_default()
                            );
                            figures["logs"] = json!(
                                rt.logs()
                                    .tail(Some(&service), 20)
                                    .iter()
                                    .map(|l| l.render())
                                    .collect::<Vec<_>>()
                            );
                            let _ = self.inner.state.release_figures(release, &figures);
                            self.abort_canary(&service, &old_rev, &old_key, &key, release)
                                .await;
                            return Err(Ended::failed(format!(
                                "canary {new_rev} failed verification at {weight}%: {}",
                                reasons.join("; ")
                            )));
                        }
                        if Instant::now() >= step_end {
                            break;
                        }
                    }
                }
                self.switch(&service, &new_rev, &key, Some(release));
                self.event(&service, "promoted", &format!("100% to {new_rev}"));
                self.drain_and_keep_warm(
                    &service,
                    &old_rev,
                    &old_key,
                    def.deploy.drain_timeout,
                    def.deploy.keep_warm,
                )
                .await;
            }
        }
        for cmd in &def.deploy.hooks.post {
            if let Err(e) = hooks::run(cmd, &dir, &def.env, addr.as_deref()).await {
                tracing::warn!("post hook of {service} failed: {e}");
            }
        }
        // The switch is done: another deploy or a rollback may start now.
        self.release_lock(&service, release);
        // Watch the new revision while the old one is warm: a breach switches back.
        if strategy != Strategy::Recreate {
            self.watch(
                release,
                &service,
                &new_rev,
                &key,
                &old_rev,
                &old_key,
                &slo,
                def.deploy.keep_warm,
            )
            .await?;
        }
        Ok(format!("{new_rev} is live"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn watch(
        &self,
        release: i64,
        service: &str,
        new_rev: &str,
        key: &str,
        old_rev: &str,
        old_key: &str,
        slo: &Slo,
        keep_warm: Duration,
    ) -> Result<(), Ended> {
        let start = self.inner.proxy.stats(new_rev);
        let until = Instant::now() + keep_warm;
        let _ = self.inner.state.end_release(
            release,
            "live",
            "live; watching while the old revision is warm",
        );
        while Instant::now() < until {
            tokio::time::sleep(VERIFY_EVERY).await;
            // Someone else moved traffic (rollback, another deploy): stop watching.
            let stable = lock(&self.inner.splits)
                .get(service)
                .map(|s| s.stable.0.clone());
            if stable.as_deref() != Some(new_rev) {
                return Err(if stable.as_deref() == Some(old_rev) {
                    Ended {
                        status: "rolled-back",
                        reason: format!("rolled back by request to {old_rev}"),
                    }
                } else {
                    Ended {
                        status: "superseded",
                        reason: format!("a later release replaced {new_rev}"),
                    }
                });
            }
            let w = window(&self.inner.proxy.stats(new_rev), &start);
            if let Verdict::Fail(reasons) = verify::judge(&w, None, slo) {
                let old_running = self
                    .inner
                    .runtime
                    .instance(old_key)
                    .is_some_and(|s| s.phase.is_good());
                if old_running {
                    self.switch(service, old_rev, old_key, Some(release));
                    let _ = self.inner.state.release_figures(
                        release,
                        &json!({"after_switch": w, "verdict": Verdict::Fail(reasons.clone())}),
                    );
                    self.inner.runtime.remove_instance(key).await;
                    return Err(Ended {
                        status: "rolled-back",
                        reason: format!(
                            "{new_rev} breached its SLO after the switch: {}; traffic is back on {old_rev}",
                            reasons.join("; ")
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn release_lock(&self, service: &str, release: i64) {
        let mut active = lock(&self.inner.active);
        if active.get(service).is_some_and(|a| a.release == release) {
            active.remove(service);
        }
    }

    fn definition(&self, service: &str, key: &str) -> Option<Service> {
        self.inner
            .runtime
            .instance_def(key)
            .map(|d| (*d).clone())
            .or_else(|| {
                let rev = key.rsplit('@').next()?;
                let json = self.inner.state.revision_definition(service, rev).ok()??;
                serde_json::from_str(&json).ok()
            })
    }

    fn set_stable(&self, service: &str, rev: &str, key: &str, release: Option<i64>) {
        if let Some(s) = lock(&self.inner.splits).get_mut(service) {
            s.stable = (rev.to_owned(), key.to_owned());
            s.canary = None;
        }
        self.publish();
        self.persist(service, release);
    }

    /// Move all traffic to `key` at once and make it the live revision.
    fn switch(&self, service: &str, rev: &str, key: &str, release: Option<i64>) {
        self.inner.runtime.set_live(key);
        self.set_stable(service, rev, key, release);
    }

    fn set_canary(&self, service: &str, rev: &str, key: &str, weight: u32, release: i64) {
        self.inner
            .runtime
            .set_role(key, &format!("canary {weight}%"));
        if let Some(s) = lock(&self.inner.splits).get_mut(service) {
            s.canary = Some((rev.to_owned(), key.to_owned(), weight));
        }
        self.publish();
        self.persist(service, Some(release));
    }

    async fn abort_canary(
        &self,
        service: &str,
        old_rev: &str,
        old_key: &str,
        key: &str,
        release: i64,
    ) {
        self.set_stable(service, old_rev, old_key, Some(release));
        self.inner.runtime.remove_instance(key).await;
    }

    async fn drain_and_keep_warm(
        &self,
        service: &str,
        old_rev: &str,
        old_key: &str,
        drain: Duration,
        keep_warm: Duration,
    ) {
        // A request that picked the old table just before the swap registers
        // as in flight a moment later: let those land before counting.
        tokio::time::sleep(SWAP_SETTLE).await;
        let deadline = Instant::now() + drain;
        while self.inner.proxy.in_flight(old_rev) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if keep_warm.is_zero() {
            self.inner.runtime.remove_instance(old_key).await;
            return;
        }
        self.inner.runtime.set_role(old_key, "warm");
        lock(&self.inner.warm)
            .entry(service.to_owned())
            .or_default()
            .push(Warm {
                revision: old_rev.to_owned(),
                key: old_key.to_owned(),
                until: Instant::now() + keep_warm,
            });
    }

    async fn expire_warm(&self) {
        let expired: Vec<Warm> = {
            let mut warm = lock(&self.inner.warm);
            let now = Instant::now();
            let mut out = Vec::new();
            for list in warm.values_mut() {
                let (gone, keep): (Vec<Warm>, Vec<Warm>) =
                    list.drain(..).partition(|w| w.until <= now);
                *list = keep;
                out.extend(gone);
            }
            out
        };
        for w in expired {
            let live = self
                .inner
                .runtime
                .instances(w.key.split('@').next().unwrap_or_default());
            let is_live = live
                .first()
                .is_some_and(|s| s.instance == w.key && s.role == "live");
            if !is_live {
                self.inner.runtime.remove_instance(&w.key).await;
            }
        }
    }

    /// `orchestra promote`: skip the remaining canary steps.
    pub fn promote(&self, service: &str) -> Result<i64, DeployError> {
        self.command(service, Command::Promote)
    }

    /// `orchestra abort`: stop the canary, all traffic back to stable.
    pub fn abort(&self, service: &str) -> Result<i64, DeployError> {
        self.command(service, Command::Abort)
    }

    fn command(&self, service: &str, c: Command) -> Result<i64, DeployError> {
        let active = lock(&self.inner.active);
        let a = active
            .get(service)
            .ok_or_else(|| DeployError::NothingInProgress(service.to_owned()))?;
        let _ = a.commands.send(c);
        Ok(a.release)
    }

    /// `orchestra rollback SERVICE [--to REV]`: to a warm revision at once;
    /// to a cold one after starting it and gating on its health.
    pub async fn rollback(&self, service: &str, to: Option<&str>) -> Result<String, DeployError> {
        let rt = &self.inner.runtime;
        let live_key = rt
            .live_key(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_owned()))?;
        if lock(&self.inner.active).contains_key(service) {
            self.abort(service)?;
            return Ok("the deploy in progress was aborted".into());
        }
        let current = rt
            .instance(&live_key)
            .map(|s| s.revision)
            .unwrap_or_default();
        let target = match to {
            Some(r) => r.to_owned(),
            None => self
                .inner
                .state
                .releases(Some(service), 50)?
                .into_iter()
                .filter(|r| r.to_revision == current && r.status != "failed")
                .find_map(|r| r.from_revision)
                .ok_or_else(|| DeployError::NoPrevious(service.to_owned()))?,
        };
        if target == current {
            return Ok(format!("{target} is already live"));
        }
        let key = orchestra_runtime::instance_key(service, &target);
        let warm = rt.instance(&key).is_some_and(|s| s.phase.is_good());
        let release =
            self.inner
                .state
                .begin_release(service, "rollback", Some(&current), &target, "")?;
        if !warm {
            let def =
                self.definition(service, &key)
                    .ok_or_else(|| DeployError::UnknownRevision {
                        service: service.to_owned(),
                        revision: target.clone(),
                    })?;
            rt.start_revision(&def, "candidate");
            if rt.instance_settled(&key).await != Settled::Up {
                rt.remove_instance(&key).await;
                self.inner.state.end_release(
                    release,
                    "failed",
                    &format!("{target} did not become healthy; nothing changed"),
                )?;
                return Ok(format!(
                    "rollback failed: {target} did not become healthy; {current} stays live"
                ));
            }
        }
        let t0 = Instant::now();
        if lock(&self.inner.splits).contains_key(service) {
            self.switch(service, &target, &key, Some(release));
        } else {
            rt.set_live(&key);
        }
        let took = t0.elapsed();
        lock(&self.inner.warm)
            .entry(service.to_owned())
            .or_default()
            .retain(|w| w.revision != target);
        let me = self.clone();
        let (svc, cur_rev, cur_key) = (service.to_owned(), current.clone(), live_key.clone());
        let keep_warm = rt
            .instance_def(&live_key)
            .map(|d| d.deploy.keep_warm)
            .unwrap_or_default();
        let drain = rt
            .instance_def(&live_key)
            .map(|d| d.deploy.drain_timeout)
            .unwrap_or(Duration::from_secs(30));
        tokio::spawn(async move {
            me.drain_and_keep_warm(&svc, &cur_rev, &cur_key, drain, keep_warm)
                .await;
        });
        let how = if warm { "warm" } else { "cold" };
        let reason = format!(
            "rolled back to {how} revision {target}; traffic switched in {:.1}ms",
            took.as_secs_f64() * 1000.0
        );
        self.inner.state.release_figures(
            release,
            &json!({"switch_ms": took.as_secs_f64() * 1000.0, "warm": warm}),
        )?;
        self.inner
            .state
            .end_release(release, "succeeded", &reason)?;
        self.event(service, "rolled-back", &reason);
        Ok(reason)
    }

    /// `orchestra pause|resume`: hold requests (up to the proxy's bound) instead of failing them.
    pub fn set_paused(&self, service: &str, paused: bool) -> Result<(), DeployError> {
        self.edit(service, |s| s.paused = paused)
    }

    /// Maintenance page on (`Some(body)`) or off.
    pub fn set_maintenance(&self, service: &str, page: Option<String>) -> Result<(), DeployError> {
        self.edit(service, |s| s.maintenance = page)
    }

    fn edit(&self, service: &str, f: impl FnOnce(&mut Split)) -> Result<(), DeployError> {
        {
            let mut splits = lock(&self.inner.splits);
            let s = splits
                .get_mut(service)
                .ok_or_else(|| DeployError::NoRoute(service.to_owned()))?;
            f(s);
        }
        self.publish();
        Ok(())
    }

    /// The live split of every routed service, for status displays.
    pub fn splits(&self) -> Vec<serde_json::Value> {
        lock(&self.inner.splits)
            .iter()
            .map(|(svc, s)| {
                json!({
                    "service": svc,
                    "path": s.spec.path,
                    "stable": s.stable.0,
                    "canary": s.canary.as_ref().map(|c| json!({"revision": c.0, "weight": c.2})),
                    "paused": s.paused,
                    "maintenance": s.maintenance.is_some(),
                    "stats": {
                        "stable": stats_json(&self.inner.proxy.stats(&s.stable.0)),
                        "canary": s.canary.as_ref().map(|c| stats_json(&self.inner.proxy.stats(&c.0))),
                    }
                })
            })
            .collect()
    }
}

fn stats_json(s: &RevisionStats) -> serde_json::Value {
    json!({
        "requests": s.requests,
        "errors": s.errors,
        "p50_ms": s.latency.quantile(0.5).as_secs_f64() * 1000.0,
        "p95_ms": s.latency.quantile(0.95).as_secs_f64() * 1000.0,
        "p99_ms": s.latency.quantile(0.99).as_secs_f64() * 1000.0,
    })
}

fn window(now: &RevisionStats, start: &RevisionStats) -> Window {
    let w = now.since(start);
    Window {
        requests: w.requests,
        errors: w.errors,
        p99: w.latency.quantile(0.99),
    }
}

fn slo_of(def: &Service) -> Slo {
    Slo {
        max_error_rate: def.deploy.verify.max_error_rate,
        max_p99: def.deploy.verify.max_p99,
        min_requests: def.deploy.verify.min_requests,
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Canary => "canary",
        Strategy::BlueGreen => "blue-green",
        Strategy::Recreate => "recreate",
    }
}

/// How a release ended when it did not succeed.
#[derive(Debug)]
struct Ended {
    status: &'static str,
    reason: String,
}

impl Ended {
    fn failed(reason: String) -> Self {
        Self {
            status: "failed",
            reason,
        }
    }

    fn aborted(reason: String) -> Self {
        Self {
            status: "aborted",
            reason,
        }
    }
}
