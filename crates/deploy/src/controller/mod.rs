//! The deploy controller: holds every service's [`Rollout`] behind one lock,
//! applies inputs to it (persisting each new state with its release changes
//! in one transaction before anything happens), carries out the effects in
//! order, and derives the proxy's routing table and the runtime's roles from
//! the states.
//!
//! The order of a switch is kamal-proxy's: start the new revision → wait for
//! health *outside* any lock → swap the route → persist → drain the old one.
//! Here "swap + persist" is one transition: persisted first, then published.

mod effects;
mod release;
mod rollback;
mod synthetic;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use orchestra_manifest::{Service, Strategy};
use orchestra_proxy::RevisionStats;
use orchestra_runtime::Runtime;
use orchestra_state::{NewRelease, StateStore};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::rollout::{self, Input, Kind, Phase, Plan, Refused, Rev, Rollout, Transition};
use crate::routes;
use crate::stored::{self, SecretValues};
use crate::traffic::Traffic;

/// Why a deploy command was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No such service.
    #[error("no service `{0}` in this platform")]
    UnknownService(String),
    /// The rollout cannot take this command in its current phase.
    #[error(transparent)]
    Refused(#[from] Refused),
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
    /// A rollback to a cold revision did not complete; nothing moved.
    #[error("{0}")]
    RollbackFailed(String),
    /// The state database failed; nothing was changed.
    #[error(transparent)]
    State(#[from] orchestra_state::StateError),
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

/// One queued piece of work for a service's effect worker.
enum Work {
    Effect(rollout::Effect),
    /// Answered once everything queued before it is done.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

struct Inner {
    runtime: Runtime,
    proxy: Arc<dyn Traffic>,
    /// Wall time that follows tokio's clock (paused in tests).
    clock: Clock,
    /// Secret values by version, for definitions read back from state.db.
    secrets: Arc<dyn SecretValues>,
    state: Arc<StateStore>,
    /// The one owner of every service's traffic.
    rollouts: Mutex<BTreeMap<String, Rollout>>,
    /// Effects run in transition order, one service at a time.
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Work>>>,
    /// Definitions by instance key, to start what an effect names.
    defs: Mutex<HashMap<String, Arc<Service>>>,
    /// Bumped on every transition: release tasks wake and re-read their phase.
    changed: watch::Sender<u64>,
    /// What was last published, to skip swaps that change nothing and say a
    /// problem once, not on every runtime change.
    published: Mutex<Published>,
    /// Takes the backups `deploy.backup_before` names; unset, such a release fails.
    restore_points: Mutex<Option<Arc<dyn crate::RestorePoints>>>,
}

#[derive(Default)]
struct Published {
    table: Option<Vec<orchestra_proxy::Route>>,
    rejected: BTreeSet<String>,
    waiting: BTreeSet<String>,
}

/// The deploy controller. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<Inner>,
}

/// How often the verifier looks at a canary within a step, and at a new
/// revision while the old one is kept warm.
const VERIFY_EVERY: Duration = Duration::from_millis(500);
/// How often the warm reaper looks.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// Milliseconds since the epoch, read off tokio's clock from a wall-clock
/// anchor: the same as the wall clock in production, and paused with tokio's
/// clock in tests, so keep_warm and watch deadlines pass on virtual time.
struct Clock {
    wall_ms: i64,
    at: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            wall_ms: orchestra_state::now_ms(),
            at: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.wall_ms.saturating_add(ms(self.at.elapsed()))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Deployer {
    /// Take over every service the runtime runs: each gets a rollout at rest
    /// on what runs now (the recovered state, see `crate::recovery`), and the
    /// routing table follows the runtime (a replica that is not ready leaves
    /// the rotation).
    pub fn start(
        runtime: Runtime,
        proxy: Arc<dyn Traffic>,
        state: Arc<StateStore>,
        secrets: Arc<dyn SecretValues>,
    ) -> Deployer {
        let mut rollouts = BTreeMap::new();
        let mut defs = HashMap::new();
        for svc in &runtime.manifest().services {
            let Some(key) = runtime.live_key(&svc.name) else {
                continue;
            };
            let def = runtime
                .instance_def(&key)
                .unwrap_or_else(|| Arc::new(svc.clone()));
            let r = Rollout::stable(
                &svc.name,
                Rev {
                    revision: def.revision(),
                    key: key.clone(),
                    route: def.route.clone(),
                },
            );
            rollouts.insert(svc.name.clone(), r);
            defs.insert(key, def);
        }
        // One transaction for all: this is on the way to `up`'s first start.
        let rows: Vec<(String, String)> = rollouts
            .iter()
            .map(|(svc, r)| (svc.clone(), state_json(r)))
            .collect();
        if let Err(e) = state.save_rollouts(&rows) {
            tracing::error!("cannot persist the rollouts: {e}");
        }
        let d = Deployer {
            inner: Arc::new(Inner {
                runtime,
                proxy,
                state,
                clock: Clock::new(),
                secrets,
                rollouts: Mutex::new(rollouts),
                queues: Mutex::new(HashMap::new()),
                defs: Mutex::new(defs),
                changed: watch::channel(0).0,
                published: Mutex::new(Published::default()),
                restore_points: Mutex::new(None),
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
                tokio::time::sleep(REAP_EVERY).await;
                let services: Vec<String> = reaper.inner.rollouts.lock().keys().cloned().collect();
                for s in services {
                    let due = reaper.inner.rollouts.lock().get(&s).is_some_and(|r| {
                        r.warm
                            .iter()
                            .any(|w| w.until_ms <= reaper.inner.clock.now_ms())
                    });
                    if due {
                        let _ = reaper.apply(&s, Input::ExpireWarm);
                    }
                }
            }
        });
        d
    }

    /// A copy of a service's rollout state.
    pub fn rollout(&self, service: &str) -> Option<Rollout> {
        self.inner.rollouts.lock().get(service).cloned()
    }

    /// Recompute the routing table from the rollouts and the runtime, and swap it in.
    pub fn publish(&self) {
        // Held while the table is computed: two publishes racing must not
        // install the older table last.
        let mut last = self.inner.published.lock();
        let splits: BTreeMap<String, routes::Split> = self
            .inner
            .rollouts
            .lock()
            .iter()
            .filter_map(|(svc, r)| r.split().map(|s| (svc.clone(), s)))
            .collect();
        let rt = &self.inner.runtime;
        let table = routes::table(&splits, |key| rt.ready_addrs(key), |key| rt.site_root(key));
        // The runtime changes often (probes, restarts elsewhere); most changes
        // leave the table as it is.
        if last.table.as_ref() == Some(&table) {
            return;
        }
        // A route whose revision has no ready replica yet answers 503: normal
        // while it starts, said once when it begins.
        let waiting: BTreeSet<String> = table
            .iter()
            .filter(|r| {
                r.targets
                    .iter()
                    .all(|t| t.upstreams.is_empty() && t.site.is_none())
            })
            .map(|r| r.service.clone())
            .collect();
        for s in waiting.difference(&last.waiting) {
            tracing::info!("{s}: no ready replica yet; its route answers 503 until one is");
        }
        let rejected = self.inner.proxy.apply_routes(table.clone());
        let names: BTreeSet<String> = rejected.iter().map(|r| r.service.clone()).collect();
        for r in &rejected {
            if !last.rejected.contains(&r.service) {
                tracing::error!(
                    "route of {} left out of the routing table: {}",
                    r.service,
                    r.reason
                );
            }
        }
        last.waiting = waiting;
        last.rejected = names;
        last.table = Some(table);
    }

    /// Apply `input` to `service`'s rollout: persist, then derive, then act.
    fn apply(&self, service: &str, input: Input) -> Result<Rollout, DeployError> {
        let all = self.inner.rollouts.lock();
        let r = all
            .get(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_owned()))?;
        let t = r.apply(input, self.inner.clock.now_ms())?;
        self.inner
            .state
            .save_rollout(service, &state_json(&t.next), &t.releases)?;
        self.install(all, service, &t)?;
        Ok(t.next)
    }

    /// Make a persisted transition current, then derive and act.
    fn install(
        &self,
        mut all: MutexGuard<'_, BTreeMap<String, Rollout>>,
        service: &str,
        t: &Transition,
    ) -> Result<(), DeployError> {
        let slot = all
            .get_mut(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_owned()))?;
        let before = std::mem::replace(slot, t.next.clone());
        // Queued under the lock: effects run in transition order.
        self.enqueue(service, t);
        drop(all);
        self.after(service, &before, t);
        Ok(())
    }

    /// Start a release: the release row and the state carrying it are
    /// written in one transaction. `input` builds the input from the new id.
    fn begin(
        &self,
        new: &NewRelease<'_>,
        input: impl FnOnce(i64) -> Input,
    ) -> Result<(i64, Rollout), DeployError> {
        let service = new.service;
        let all = self.inner.rollouts.lock();
        let r = all
            .get(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_owned()))?;
        // A refused input rolls the new release row back with the transaction.
        let mut outcome: Option<Result<Transition, Refused>> = None;
        let id = self.inner.state.begin_rollout(new, |id| {
            let t = r.apply(input(id), self.inner.clock.now_ms());
            let out = t
                .as_ref()
                .ok()
                .map(|t| (state_json(&t.next), t.releases.clone()));
            outcome = Some(t);
            out
        })?;
        let (id, t) = match (id, outcome) {
            (Some(id), Some(Ok(t))) => (id, t),
            (_, Some(Err(refused))) => return Err(refused.into()),
            _ => {
                return Err(DeployError::Refused(Refused::NothingInProgress(
                    service.to_owned(),
                )));
            }
        };
        self.install(all, service, &t)?;
        Ok((id, t.next))
    }

    /// Derived state and the event log, after a transition was persisted.
    fn after(&self, service: &str, before: &Rollout, t: &Transition) {
        self.sync_roles(service);
        self.publish();
        self.inner.changed.send_modify(|n| *n += 1);
        for line in describe(before, &t.next) {
            self.event(service, line.0, &line.1);
        }
        for u in &t.releases {
            self.event(
                service,
                &format!("release-{}", u.status),
                &format!("release {}: {}", u.id, u.reason),
            );
        }
    }

    /// The runtime's live instance and roles, from the rollout.
    fn sync_roles(&self, service: &str) {
        let Some(r) = self.rollout(service) else {
            return;
        };
        let rt = &self.inner.runtime;
        if rt.instance(&r.stable.key).is_some()
            && rt.live_key(service).as_deref() != Some(&r.stable.key)
        {
            rt.set_live(&r.stable.key);
        }
        for (key, role) in r.roles() {
            rt.set_role(&key, role);
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
                at_ms: self.inner.clock.now_ms(),
                service: service.to_owned(),
                replica: 0,
                stream: orchestra_runtime::logs::Stream::Orchestra,
                text: format!("{kind}: {reason}"),
            });
    }

    fn remember(&self, def: &Service) -> (String, Arc<Service>) {
        let key = orchestra_runtime::instance_key(&def.name, &def.revision());
        let def = Arc::new(def.clone());
        self.inner.defs.lock().insert(key.clone(), def.clone());
        (key, def)
    }

    /// The definition of an instance: running, deployed in this run, or recorded.
    fn definition(&self, service: &str, key: &str) -> Option<Arc<Service>> {
        if let Some(d) = self.inner.defs.lock().get(key) {
            return Some(d.clone());
        }
        if let Some(d) = self.inner.runtime.instance_def(key) {
            return Some(d);
        }
        let rev = key.rsplit('@').next()?;
        let json = self.inner.state.revision_definition(service, rev).ok()??;
        let current = self.inner.runtime.manifest().service(service);
        let (def, _missing) = stored::decode(&json, current, self.inner.secrets.as_ref())?;
        // A value taken from today's manifest that changed gives another revision:
        // that is not the one asked for.
        (def.revision() == rev).then(|| self.remember(&def).1)
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
        let current = self
            .rollout(&def.name)
            .ok_or_else(|| DeployError::UnknownService(def.name.clone()))?;
        let revision = def.revision();
        if current.stable.revision == revision && current.phase.plan().is_none() {
            return Ok(None);
        }
        let kind = Kind::from(strategy.unwrap_or(def.deploy.strategy));
        if kind != Kind::Recreate && (def.route.is_none() || current.stable.route.is_none()) {
            return Err(DeployError::NoRoute(def.name.clone()));
        }
        let (key, def) = self.remember(&def);
        let snapshot = stored::encode(&def);
        let _ = self
            .inner
            .state
            .record_revision(&def.name, &revision, &snapshot);
        let plan = |release| Plan {
            release,
            kind,
            steps: rollout::plan_steps(kind, &def.deploy.steps),
            keep_warm_ms: ms(def.deploy.keep_warm),
            note: String::new(),
        };
        let candidate = Rev {
            revision: revision.clone(),
            key,
            route: def.route.clone(),
        };
        let (release, _) = self.begin(
            &NewRelease {
                service: &def.name,
                strategy: kind.as_str(),
                from: Some(&current.stable.revision),
                to: &revision,
                manifest: &snapshot,
                secrets: &serde_json::to_string(&def.secret_versions).unwrap_or_default(),
            },
            |id| Input::Begin {
                plan: plan(id),
                candidate: candidate.clone(),
            },
        )?;
        let me = self.clone();
        tokio::spawn(async move { me.drive(release, def).await });
        Ok(Some(release))
    }

    /// `orchestra promote`: skip the remaining canary steps.
    pub fn promote(&self, service: &str) -> Result<i64, DeployError> {
        let release = self.release_of(service)?;
        self.apply(service, Input::Promote)?;
        Ok(release)
    }

    /// `orchestra abort`: stop the release in progress, whatever its strategy
    /// or phase; all traffic back on the revision it replaced.
    pub fn abort(&self, service: &str) -> Result<i64, DeployError> {
        let release = self.release_of(service)?;
        self.apply(service, Input::Abort)?;
        Ok(release)
    }

    fn release_of(&self, service: &str) -> Result<i64, DeployError> {
        self.rollout(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_owned()))?
            .release()
            .map(|(id, _)| id)
            .ok_or_else(|| DeployError::Refused(Refused::NothingInProgress(service.to_owned())))
    }

    /// `orchestra pause|resume`: hold requests (up to the proxy's bound) instead of failing them.
    pub fn set_paused(&self, service: &str, paused: bool) -> Result<(), DeployError> {
        self.routed(service)?;
        self.apply(service, Input::SetPaused(paused)).map(|_| ())
    }

    /// Maintenance page on (`Some(body)`) or off.
    pub fn set_maintenance(&self, service: &str, page: Option<String>) -> Result<(), DeployError> {
        self.routed(service)?;
        self.apply(service, Input::SetMaintenance(page)).map(|_| ())
    }

    fn routed(&self, service: &str) -> Result<(), DeployError> {
        match self.rollout(service) {
            None => Err(DeployError::UnknownService(service.to_owned())),
            Some(r) if r.split().is_none() => Err(DeployError::NoRoute(service.to_owned())),
            Some(_) => Ok(()),
        }
    }

    /// The live split of every routed service, for status displays.
    pub fn splits(&self) -> Vec<serde_json::Value> {
        let all = self.inner.rollouts.lock().clone();
        all.iter()
            .filter_map(|(svc, r)| r.split().map(|s| (svc, r, s)))
            .map(|(svc, r, s)| {
                json!({
                    "service": svc,
                    "path": s.spec.path,
                    "stable": s.stable.0,
                    "canary": s.canary.as_ref().map(|c| json!({"revision": c.0, "weight": c.2})),
                    "phase": r.phase.name(),
                    "release": r.release().map(|x| x.0),
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

fn state_json(r: &Rollout) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

/// Event-log lines for a phase change.
fn describe(before: &Rollout, after: &Rollout) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match (&before.phase, &after.phase) {
        (
            Phase::Stable | Phase::Switched { .. },
            Phase::Starting {
                plan, candidate, ..
            },
        ) => {
            out.push((
                "deploying",
                format!(
                    "release {}: {} -> {} ({})",
                    plan.release,
                    before.stable.revision,
                    candidate.revision,
                    plan.kind.as_str()
                ),
            ));
            if plan.kind == Kind::Recreate {
                out.push((
                    "downtime",
                    "recreate: the old revision stops before the new one starts".to_owned(),
                ));
            }
        }
        (
            _,
            Phase::Canary {
                plan,
                candidate,
                step,
            },
        ) => {
            let w = plan.steps.get(*step).copied().unwrap_or(0);
            out.push(("canary-step", format!("{w}% to {}", candidate.revision)));
        }
        (Phase::Starting { .. } | Phase::Canary { .. }, Phase::Switched { .. }) => {
            out.push(("switched", format!("100% to {}", after.stable.revision)));
        }
        _ => {}
    }
    out
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
