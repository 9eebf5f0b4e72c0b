//! Start plans: which services run, in what order they may start and stop.
//!
//! Everything here is a pure function over the validated manifest and over
//! observations of the services; the runtime asks and acts on the answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use orchestra_manifest::{Condition, Manifest, ProbeFailure, Restart};

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--profile` named a profile nobody defines.
    #[error("unknown profile `{name}`; known profiles: {known}")]
    UnknownProfile {
        /// The profile asked for.
        name: String,
        /// Profiles that exist, comma-separated (or "none").
        known: String,
    },
    /// A service named on the command line does not exist.
    #[error("unknown service `{name}`; services: {known}")]
    UnknownService {
        /// The name asked for.
        name: String,
        /// Services that exist, comma-separated.
        known: String,
    },
    /// The dependency graph has a cycle (validation normally catches this first).
    #[error("dependency cycle: {0}")]
    Cycle(String),
}

/// One dependency edge of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The service waited on.
    pub service: String,
    /// What must hold.
    pub condition: Condition,
}

/// The services to run and how they depend on each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPlan {
    /// Selected services in a start order: every service after its dependencies,
    /// declaration order among independent ones.
    pub order: Vec<String>,
    /// For each selected service, what it waits on.
    pub deps: BTreeMap<String, Vec<Edge>>,
}

impl StartPlan {
    /// Services in the order they must be stopped: dependents before their dependencies.
    pub fn stop_order(&self) -> Vec<String> {
        self.order.iter().rev().cloned().collect()
    }

    /// Services with no dependencies: they start at once, in parallel.
    pub fn roots(&self) -> Vec<String> {
        self.order
            .iter()
            .filter(|s| self.deps.get(*s).is_none_or(|d| d.is_empty()))
            .cloned()
            .collect()
    }

    /// Services that depend on `service` directly.
    pub fn dependents(&self, service: &str) -> Vec<String> {
        self.order
            .iter()
            .filter(|s| {
                self.deps
                    .get(*s)
                    .is_some_and(|d| d.iter().any(|e| e.service == service))
            })
            .cloned()
            .collect()
    }

    /// The longest chain of `weight`s through the graph: the critical path of a start.
    pub fn critical_path<F: Fn(&str) -> f64>(&self, weight: F) -> f64 {
        let mut finish: HashMap<&str, f64> = HashMap::new();
        for s in &self.order {
            let start = self
                .deps
                .get(s)
                .map(|d| {
                    d.iter()
                        .map(|e| finish.get(e.service.as_str()).copied().unwrap_or(0.0))
                        .fold(0.0, f64::max)
                })
                .unwrap_or(0.0);
            finish.insert(s, start + weight(s));
        }
        finish.values().copied().fold(0.0, f64::max)
    }
}

/// Choose the services to run.
///
/// Without profiles: every service that has no service-level `profiles:`.
/// With profiles: the services a top-level profile lists, the services that
/// name the profile themselves, and — when no top-level list defines it —
/// the always-on services. `only` narrows to named services. Dependencies
/// of anything selected are always added.
pub fn select(
    manifest: &Manifest,
    profiles: &[String],
    only: &[String],
) -> Result<BTreeSet<String>, PlanError> {
    let mut selected = BTreeSet::new();
    for p in profiles {
        let listed_top = manifest.profiles.get(p);
        let listed_by_service: Vec<&str> = manifest
            .services
            .iter()
            .filter(|s| s.profiles.iter().any(|sp| sp == p))
            .map(|s| s.name.as_str())
            .collect();
        if listed_top.is_none() && listed_by_service.is_empty() {
            return Err(PlanError::UnknownProfile {
                name: p.clone(),
                known: known_profiles(manifest),
            });
        }
        if let Some(list) = listed_top {
            selected.extend(list.iter().cloned());
        } else {
            selected.extend(always_on(manifest));
        }
        selected.extend(listed_by_service.into_iter().map(str::to_owned));
    }
    if profiles.is_empty() {
        selected.extend(always_on(manifest));
    }
    if !only.is_empty() {
        for name in only {
            if manifest.service(name).is_none() {
                return Err(PlanError::UnknownService {
                    name: name.clone(),
                    known: manifest
                        .services
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        selected = only.iter().cloned().collect();
    }
    // Close over dependencies: a selected service cannot start without them.
    let mut stack: Vec<String> = selected.iter().cloned().collect();
    while let Some(name) = stack.pop() {
        if let Some(svc) = manifest.service(&name) {
            for d in &svc.depends_on {
                if selected.insert(d.service.clone()) {
                    stack.push(d.service.clone());
                }
            }
        }
    }
    Ok(selected)
}

fn always_on(manifest: &Manifest) -> impl Iterator<Item = String> + '_ {
    manifest
        .services
        .iter()
        .filter(|s| s.profiles.is_empty())
        .map(|s| s.name.clone())
}

fn known_profiles(manifest: &Manifest) -> String {
    let mut names: BTreeSet<&str> = manifest.profiles.keys().map(String::as_str).collect();
    for s in &manifest.services {
        names.extend(s.profiles.iter().map(String::as_str));
    }
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// Build the start plan for the selected services (Kahn's algorithm, stable
/// by declaration order).
pub fn plan(manifest: &Manifest, selected: &BTreeSet<String>) -> Result<StartPlan, PlanError> {
    let names: Vec<&str> = manifest
        .services
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| selected.contains(*n))
        .collect();
    let mut deps: BTreeMap<String, Vec<Edge>> = BTreeMap::new();
    for n in &names {
        let edges = manifest
            .service(n)
            .map(|s| {
                s.depends_on
                    .iter()
                    .filter(|d| selected.contains(&d.service))
                    .map(|d| Edge {
                        service: d.service.clone(),
                        condition: d.condition,
                    })
                    .collect()
            })
            .unwrap_or_default();
        deps.insert((*n).to_owned(), edges);
    }
    let mut order: Vec<String> = Vec::with_capacity(names.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while order.len() < names.len() {
        let next = names.iter().find(|n| {
            !placed.contains(**n)
                && deps
                    .get(**n)
                    .is_none_or(|es| es.iter().all(|e| placed.contains(e.service.as_str())))
        });
        match next {
            Some(n) => {
                placed.insert(n);
                order.push((*n).to_owned());
            }
            None => {
                let left: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !placed.contains(n))
                    .collect();
                return Err(PlanError::Cycle(left.join(", ")));
            }
        }
    }
    Ok(StartPlan { order, deps })
}

/// The selected services `up` need only see running, not healthy: a healthcheck with
/// `on_failure: none` (it reports, never restarts) that no selected service waits on
/// with `condition: healthy`. This is how Compose's `up -d` treats health.
pub fn running_is_enough(manifest: &Manifest, plan: &StartPlan) -> BTreeSet<String> {
    plan.order
        .iter()
        .filter(|n| {
            manifest.service(n).is_some_and(|s| {
                s.healthcheck
                    .as_ref()
                    .is_some_and(|h| h.on_failure == ProbeFailure::None)
            })
        })
        .filter(|n| {
            !plan
                .deps
                .values()
                .flatten()
                .any(|e| e.service == **n && e.condition == Condition::Healthy)
        })
        .cloned()
        .collect()
}

/// What the runtime has observed of one service, as far as dependents care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// Its process (every replica) has been started.
    pub started: bool,
    /// It passed its healthcheck and readiness (or has none and is running).
    pub healthy: bool,
    /// It exited; `Some(0)` is success.
    pub exit_code: Option<i32>,
    /// It will not get any better by itself (failed for good, crash-looping past its limit).
    pub given_up: bool,
}

/// Whether one dependency edge is met, still pending, or can no longer be met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The condition holds.
    Open,
    /// Not yet.
    Waiting,
    /// It never will: the reason.
    Blocked(String),
}

/// Decide one edge. `restart` is the dependency's restart policy: a job that
/// exits non-zero may still be retried, so that is only final once given up.
pub fn gate(edge: &Edge, dep: &Observed, restart: Restart) -> Gate {
    match edge.condition {
        Condition::Started => {
            if dep.started {
                Gate::Open
            } else if dep.given_up {
                Gate::Blocked(format!("`{}` failed to start", edge.service))
            } else {
                Gate::Waiting
            }
        }
        Condition::Healthy => {
            if dep.healthy {
                Gate::Open
            } else if dep.given_up || (dep.exit_code.is_some() && restart == Restart::No) {
                Gate::Blocked(format!("`{}` did not become healthy", edge.service))
            } else {
                Gate::Waiting
            }
        }
        Condition::Completed => match dep.exit_code {
            Some(0) => Gate::Open,
            Some(code) if dep.given_up || restart == Restart::No => Gate::Blocked(format!(
                "`{}` exited with code {code} instead of completing",
                edge.service
            )),
            _ if dep.given_up => Gate::Blocked(format!("`{}` did not complete", edge.service)),
            _ => Gate::Waiting,
        },
    }
}

/// Decide all of a service's dependencies at once: open when every edge is
/// open, blocked as soon as one is, waiting otherwise (with what it waits on).
pub fn gate_all<F>(edges: &[Edge], observe: F) -> (Gate, Vec<&str>)
where
    F: Fn(&str) -> (Observed, Restart),
{
    let mut waiting = Vec::new();
    for e in edges {
        let (obs, restart) = observe(&e.service);
        match gate(e, &obs, restart) {
            Gate::Open => {}
            Gate::Waiting => waiting.push(e.service.as_str()),
            blocked @ Gate::Blocked(_) => return (blocked, waiting),
        }
    }
    if waiting.is_empty() {
        (Gate::Open, waiting)
    } else {
        (Gate::Waiting, waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_manifest::{LoadOptions, load_str};
    use std::path::Path;

    fn manifest(src: &str) -> Manifest {
        load_str(
            src,
            Path::new("/nonexistent/orchestra.yaml"),
            &LoadOptions::default(),
        )
        .expect("valid manifest")
    }

    const PLATFORM: &str = r#"
services:
  migrate: { command: [job] }
  store: { command: [store] }
  api:
    command: [api]
    depends_on: { store: { condition: healthy }, migrate: { condition: completed } }
  worker:
    command: [worker]
    depends_on: [api]
  web:
    command: [web]
    depends_on: { api: { condition: healthy } }
  admin:
    command: [admin]
    profiles: [ops]
profiles:
  insurance_ai: [api]
"#;

    #[test]
    fn order_puts_dependencies_first_and_keeps_declaration_order() {
        let m = manifest(PLATFORM);
        let sel = select(&m, &[], &[]).unwrap();
        let p = plan(&m, &sel).unwrap();
        assert_eq!(p.order, ["migrate", "store", "api", "worker", "web"]);
        assert_eq!(p.roots(), ["migrate", "store"]);
        assert_eq!(p.stop_order(), ["web", "worker", "api", "store", "migrate"]);
        assert_eq!(p.dependents("api"), ["worker", "web"]);
    }

    #[test]
    fn profiles_select_listed_services_and_their_dependencies() {
        let m = manifest(PLATFORM);
        let sel = select(&m, &["insurance_ai".into()], &[]).unwrap();
        assert_eq!(
            sel.into_iter().collect::<Vec<_>>(),
            ["api", "migrate", "store"]
        );
        let ops = select(&m, &["ops".into()], &[]).unwrap();
        assert!(ops.contains("admin") && ops.contains("web"));
        assert!(!select(&m, &[], &[]).unwrap().contains("admin"));
        let err = select(&m, &["nope".into()], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile `nope`; known profiles: insurance_ai, ops"
        );
    }

    #[test]
    fn only_narrows_to_named_services_plus_dependencies() {
        let m = manifest(PLATFORM);
        let sel = select(&m, &[], &["worker".into()]).unwrap();
        assert_eq!(
            sel.into_iter().collect::<Vec<_>>(),
            ["api", "migrate", "store", "worker"]
        );
        assert!(matches!(
            select(&m, &[], &["wrker".into()]),
            Err(PlanError::UnknownService { .. })
        ));
    }

    #[test]
    fn critical_path_is_the_longest_chain() {
        let m = manifest(PLATFORM);
        let p = plan(&m, &select(&m, &[], &[]).unwrap()).unwrap();
        let w = |s: &str| match s {
            "migrate" => 3.0,
            "store" => 1.0,
            "api" => 2.0,
            _ => 0.5,
        };
        assert_eq!(p.critical_path(w), 5.5);
    }

    fn edge(c: Condition) -> Edge {
        Edge {
            service: "dep".into(),
            condition: c,
        }
    }

    #[test]
    fn gates_follow_conditions() {
        let started = Observed {
            started: true,
            ..Default::default()
        };
        let healthy = Observed {
            started: true,
            healthy: true,
            ..Default::default()
        };
        let done = Observed {
            started: true,
            exit_code: Some(0),
            ..Default::default()
        };
        let failed = Observed {
            started: true,
            exit_code: Some(2),
            ..Default::default()
        };
        let r = Restart::OnFailure;
        assert_eq!(gate(&edge(Condition::Started), &started, r), Gate::Open);
        assert_eq!(gate(&edge(Condition::Healthy), &started, r), Gate::Waiting);
        assert_eq!(gate(&edge(Condition::Healthy), &healthy, r), Gate::Open);
        assert_eq!(
            gate(&edge(Condition::Completed), &healthy, r),
            Gate::Waiting
        );
        assert_eq!(gate(&edge(Condition::Completed), &done, r), Gate::Open);
        // A failed job may be retried under on-failure; under `no` it is final.
        assert_eq!(gate(&edge(Condition::Completed), &failed, r), Gate::Waiting);
        assert!(matches!(
            gate(&edge(Condition::Completed), &failed, Restart::No),
            Gate::Blocked(_)
        ));
        let gave_up = Observed {
            given_up: true,
            ..failed
        };
        assert!(matches!(
            gate(&edge(Condition::Healthy), &gave_up, r),
            Gate::Blocked(_)
        ));
    }

    #[test]
    fn up_waits_for_a_check_that_never_restarts_only_where_a_dependent_needs_it() {
        let m = manifest(
            r#"
services:
  cache:
    command: [cache]
    healthcheck: { tcp: true, on_failure: none }
  db:
    command: [db]
    healthcheck: { tcp: true, on_failure: none }
  search:
    command: [search]
    healthcheck: { tcp: true }
  api:
    command: [api]
    depends_on: { db: { condition: healthy }, cache: { condition: started } }
    profiles: [full]
"#,
        );
        let all = select(&m, &["full".into()], &[]).unwrap();
        let p = plan(&m, &all).unwrap();
        assert_eq!(
            running_is_enough(&m, &p).into_iter().collect::<Vec<_>>(),
            ["cache"]
        );
        // Without `api` nothing waits on `db` being healthy.
        let some = select(&m, &[], &[]).unwrap();
        let p = plan(&m, &some).unwrap();
        assert_eq!(
            running_is_enough(&m, &p).into_iter().collect::<Vec<_>>(),
            ["cache", "db"]
        );
    }

    #[test]
    fn gate_all_reports_what_it_waits_on() {
        let edges = vec![
            Edge {
                service: "a".into(),
                condition: Condition::Healthy,
            },
            Edge {
                service: "b".into(),
                condition: Condition::Started,
            },
        ];
        let (g, waiting) = gate_all(&edges, |s| {
            let obs = Observed {
                started: true,
                healthy: s == "b",
                ..Default::default()
            };
            (obs, Restart::OnFailure)
        });
        assert_eq!(g, Gate::Waiting);
        assert_eq!(waiting, ["a"]);
        let (g, _) = gate_all(&edges, |_| {
            (
                Observed {
                    started: true,
                    healthy: true,
                    ..Default::default()
                },
                Restart::OnFailure,
            )
        });
        assert_eq!(g, Gate::Open);
    }
}
