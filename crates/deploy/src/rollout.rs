//! The rollout model: everything about where one routed service's traffic
//! goes, in one value, changed only by [`Rollout::apply`].
//!
//! `apply` is a pure function `(state, input, now) -> (state, effects, release
//! updates)`. The controller persists the new state together with the release
//! updates in one SQLite transaction, then carries out the effects (intent
//! before effect), and derives the proxy's routing table ([`Rollout::split`])
//! and the runtime's instance roles ([`Rollout::roles`]) from the state. So a
//! daemon killed between any two steps restarts from a state that `history`,
//! routing, `ps` and the served revision all agree on ([`Rollout::recover`]).

use orchestra_manifest::{RouteSpec, Strategy};
pub use orchestra_runtime::status::Role;
use orchestra_state::{ReleaseStatus, ReleaseUpdate};
use serde::{Deserialize, Serialize};

use crate::routes::{self, Split};

/// One revision of the service as the rollout knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rev {
    /// Revision id.
    pub revision: String,
    /// The runtime's instance key.
    pub key: String,
    /// Its route: a route changed in a new revision takes effect with it.
    pub route: Option<RouteSpec>,
}

/// A revision kept running without traffic, for an instant rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warm {
    /// The revision.
    pub rev: Rev,
    /// Until when (ms since the epoch).
    pub until_ms: i64,
}

/// What kind of release moves the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Weighted steps, each verified.
    Canary,
    /// Start beside, switch at once, watch.
    BlueGreen,
    /// Stop the old, start the new.
    Recreate,
    /// Back to a revision that is not warm: started, then switched.
    Rollback,
}

impl Kind {
    /// The release's strategy as history shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Canary => "canary",
            Kind::BlueGreen => "blue-green",
            Kind::Recreate => "recreate",
            Kind::Rollback => "rollback",
        }
    }
}

impl From<Strategy> for Kind {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::Canary => Kind::Canary,
            Strategy::BlueGreen => Kind::BlueGreen,
            Strategy::Recreate => Kind::Recreate,
        }
    }
}

/// The release a phase belongs to, and how it proceeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Release id.
    pub release: i64,
    /// How traffic moves.
    pub kind: Kind,
    /// Canary weights, ending at 100 (see [`routes::steps`]).
    pub steps: Vec<u32>,
    /// How long the replaced revision stays warm (and the new one watched).
    pub keep_warm_ms: i64,
    /// What the final record must say about how it got there (a step passed unverified).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Where the service's rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// All traffic on the stable revision; no release in progress.
    Stable,
    /// A release is starting its candidate: pre hooks (`started: false`),
    /// then the candidate starting, health-gated and smoke tested. No traffic
    /// moved yet (a recreate has stopped the old revision once started).
    Starting {
        /// The release.
        plan: Plan,
        /// The revision being started.
        candidate: Rev,
        /// Pre hooks done and the candidate asked to start.
        started: bool,
    },
    /// A canary takes `plan.steps[step]` percent of the traffic.
    Canary {
        /// The release.
        plan: Plan,
        /// The canary revision.
        candidate: Rev,
        /// Index into `plan.steps`.
        step: usize,
    },
    /// Switched: the new revision is stable; the one it replaced stays warm
    /// while the new one is watched, until `until_ms`.
    Switched {
        /// The release.
        plan: Plan,
        /// The revision it replaced.
        previous: Rev,
        /// When the watch ends (ms since the epoch).
        until_ms: i64,
    },
}

impl Phase {
    /// The phase's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Stable => "stable",
            Phase::Starting { started: false, .. } => "running pre hooks",
            Phase::Starting { .. } => "starting the new revision",
            Phase::Canary { .. } => "canary",
            Phase::Switched { .. } => "switched, watching",
        }
    }

    /// The release this phase belongs to.
    pub fn plan(&self) -> Option<&Plan> {
        match self {
            Phase::Stable => None,
            Phase::Starting { plan, .. }
            | Phase::Canary { plan, .. }
            | Phase::Switched { plan, .. } => Some(plan),
        }
    }
}

/// One routed service's rollout: the single owner of its traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Service.
    pub service: String,
    /// The revision that takes the traffic not given to a canary.
    pub stable: Rev,
    /// What is happening now.
    pub phase: Phase,
    /// Revisions kept warm after a rollback or a superseded watch.
    #[serde(default)]
    pub warm: Vec<Warm>,
    /// Hold requests instead of forwarding them.
    #[serde(default)]
    pub paused: bool,
    /// Answer 503 with this page.
    #[serde(default)]
    pub maintenance: Option<String>,
}

/// What changes a rollout.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start a release of `candidate` (a deploy, or a rollback to a cold revision).
    Begin {
        /// The release.
        plan: Plan,
        /// The revision to ship.
        candidate: Rev,
    },
    /// The pre hooks passed: start the candidate.
    PreHooksDone,
    /// The candidate is healthy, ready and passed its smoke tests.
    CandidateUp,
    /// A pre hook failed, or the candidate did not come up.
    CandidateFailed {
        /// Why.
        reason: String,
    },
    /// The canary's current step met its SLO (or its deadline passed under `on_inconclusive: pass`).
    StepPassed {
        /// What the release record should say about how it passed.
        note: String,
    },
    /// The canary's current step failed verification (or stayed inconclusive under `on_inconclusive: fail`).
    StepFailed {
        /// Why, with figures.
        reason: String,
    },
    /// `orchestra promote`: skip the remaining steps.
    Promote,
    /// `orchestra abort`: all traffic back where it was before the release.
    Abort,
    /// The watched revision breached its SLO after the switch.
    WatchBreached {
        /// Why, with figures.
        reason: String,
    },
    /// The watch ended without a breach.
    WatchEnded,
    /// `orchestra rollback` to a revision that still runs (previous or warm),
    /// as release `release`.
    RollbackWarm {
        /// The rollback's own release.
        release: i64,
        /// Instance key of the revision to go back to.
        to: String,
        /// How long the revision rolled away from stays warm.
        keep_warm_ms: i64,
    },
    /// Stop the warm revisions whose time is up.
    ExpireWarm,
    /// `orchestra pause|resume`.
    SetPaused(bool),
    /// Maintenance page on or off.
    SetMaintenance(Option<String>),
}

/// Something the controller carries out after the new state is persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start this revision's instance (health-gated by the controller).
    Start(String),
    /// Stop this instance; `drain` first lets its in-flight requests finish.
    Stop {
        /// Instance key.
        key: String,
        /// Wait for in-flight requests first (it had traffic a moment ago).
        drain: bool,
    },
}

/// The outcome of an accepted input.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The new state.
    pub next: Rollout,
    /// What to do, in order, once it is persisted.
    pub effects: Vec<Effect>,
    /// Release rows to change in the same transaction.
    pub releases: Vec<ReleaseUpdate>,
}

/// Why an input cannot act in the current phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Nothing to promote, abort or continue.
    #[error("no deploy of `{0}` is in progress")]
    NothingInProgress(String),
    /// Another release holds the service.
    #[error(
        "a deploy of `{service}` is already in progress (release {release}, {phase}); wait for it, or `orchestra promote|abort {service}`"
    )]
    InProgress {
        /// Service.
        service: String,
        /// The release in progress.
        release: i64,
        /// Its phase.
        phase: &'static str,
    },
    /// The input does not apply to this phase.
    #[error("`{service}` is {phase}: {why}")]
    WrongPhase {
        /// Service.
        service: String,
        /// The phase it is in.
        phase: &'static str,
        /// What cannot be done and what can.
        why: String,
    },
    /// The revision asked for is already the stable one.
    #[error("{0} is already live")]
    AlreadyLive(String),
}

fn update(id: i64, status: ReleaseStatus, reason: impl Into<String>) -> ReleaseUpdate {
    ReleaseUpdate {
        id,
        status,
        reason: reason.into(),
    }
}

impl Rollout {
    /// A service at rest on `stable`.
    pub fn stable(service: &str, stable: Rev) -> Self {
        Rollout {
            service: service.to_owned(),
            stable,
            phase: Phase::Stable,
            warm: Vec::new(),
            paused: false,
            maintenance: None,
        }
    }

    /// The release in progress (or watched), with its status.
    pub fn release(&self) -> Option<(i64, ReleaseStatus)> {
        match &self.phase {
            Phase::Stable => None,
            Phase::Starting { plan, .. } | Phase::Canary { plan, .. } => {
                Some((plan.release, ReleaseStatus::InProgress))
            }
            Phase::Switched { plan, .. } => Some((plan.release, ReleaseStatus::Live)),
        }
    }

    /// Whether a rollback to `key` needs no start: it still runs.
    pub fn is_warm(&self, key: &str) -> bool {
        match &self.phase {
            Phase::Switched { previous, .. } if previous.key == key => true,
            _ => self.warm.iter().any(|w| w.rev.key == key),
        }
    }

    /// The revision a warm key stands for.
    pub fn warm_rev(&self, key: &str) -> Option<&Rev> {
        match &self.phase {
            Phase::Switched { previous, .. } if previous.key == key => Some(previous),
            _ => self.warm.iter().find(|w| w.rev.key == key).map(|w| &w.rev),
        }
    }

    fn refuse_busy(&self) -> Refused {
        match self.phase.plan() {
            Some(p) => Refused::InProgress {
                service: self.service.clone(),
                release: p.release,
                phase: self.phase.name(),
            },
            None => Refused::NothingInProgress(self.service.clone()),
        }
    }

    fn wrong(&self, why: impl Into<String>) -> Refused {
        Refused::WrongPhase {
            service: self.service.clone(),
            phase: self.phase.name(),
            why: why.into(),
        }
    }

    /// Keep `rev` warm until `now + keep_warm`, or stop it (after a drain) when nothing is kept warm.
    fn retire(&mut self, rev: Rev, keep_warm_ms: i64, now_ms: i64, effects: &mut Vec<Effect>) {
        self.warm.retain(|w| w.rev.key != rev.key);
        if keep_warm_ms > 0 {
            self.warm.push(Warm {
                rev,
                until_ms: now_ms.saturating_add(keep_warm_ms),
            });
        } else {
            effects.push(Effect::Stop {
                key: rev.key,
                drain: true,
            });
        }
    }

    /// Apply one input at `now_ms`. A refused input changes nothing.
    pub fn apply(&self, input: Input, now_ms: i64) -> Result<Transition, Refused> {
        let mut next = self.clone();
        let mut effects = Vec::new();
        let mut releases = Vec::new();
        match (input, &self.phase) {
            (Input::Begin { plan, candidate }, Phase::Stable | Phase::Switched { .. }) => {
                if candidate.key == self.stable.key {
                    return Err(Refused::AlreadyLive(candidate.revision));
                }
                if let Phase::Switched {
                    plan: watched,
                    previous,
                    until_ms,
                } = &self.phase
                {
                    // The watch ends here; what it kept warm stays warm as long as it would have.
                    releases.push(update(
                        watched.release,
                        ReleaseStatus::Superseded,
                        format!(
                            "{} was live; a later release replaced it while {} was warm",
                            self.stable.revision, previous.revision
                        ),
                    ));
                    next.warm.push(Warm {
                        rev: previous.clone(),
                        until_ms: *until_ms,
                    });
                }
                next.phase = Phase::Starting {
                    plan,
                    candidate,
                    started: false,
                };
            }
            (Input::Begin { .. }, _) => return Err(self.refuse_busy()),

            (
                Input::PreHooksDone,
                Phase::Starting {
                    plan,
                    candidate,
                    started: false,
                },
            ) => {
                if plan.kind == Kind::Recreate {
                    effects.push(Effect::Stop {
                        key: self.stable.key.clone(),
                        drain: true,
                    });
                }
                effects.push(Effect::Start(candidate.key.clone()));
                // A warm revision deployed again is the candidate's now, not the reaper's.
                next.warm.retain(|w| w.rev.key != candidate.key);
                next.phase = Phase::Starting {
                    plan: plan.clone(),
                    candidate: candidate.clone(),
                    started: true,
                };
            }
            (Input::PreHooksDone, _) => return Err(self.wrong("pre hooks are not running")),

            (
                Input::CandidateUp,
                Phase::Starting {
                    plan,
                    candidate,
                    started: true,
                },
            ) => {
                let old = self.stable.clone();
                match plan.kind {
                    Kind::Recreate => {
                        next.stable = candidate.clone();
                        next.phase = Phase::Stable;
                        releases.push(update(
                            plan.release,
                            ReleaseStatus::Succeeded,
                            format!("{} is live (recreated)", candidate.revision),
                        ));
                    }
                    Kind::Rollback => {
                        next.stable = candidate.clone();
                        next.phase = Phase::Stable;
                        next.retire(old.clone(), plan.keep_warm_ms, now_ms, &mut effects);
                        releases.push(update(
                            plan.release,
                            ReleaseStatus::Succeeded,
                            format!(
                                "rolled back to cold revision {} (started, then switched); {} {}",
                                candidate.revision,
                                old.revision,
                                if plan.keep_warm_ms > 0 {
                                    "is warm"
                                } else {
                                    "is stopped"
                                }
                            ),
                        ));
                    }
                    Kind::Canary if plan.steps.first().is_some_and(|w| *w < 100) => {
                        next.phase = Phase::Canary {
                            plan: plan.clone(),
                            candidate: candidate.clone(),
                            step: 0,
                        };
                    }
                    Kind::Canary | Kind::BlueGreen => {
                        next.switch_to(plan, candidate, now_ms);
                        releases.push(update(
                            plan.release,
                            ReleaseStatus::Live,
                            format!(
                                "switched to {}; watching while {} is warm",
                                candidate.revision, old.revision
                            ),
                        ));
                    }
                }
            }
            (Input::CandidateUp, _) => return Err(self.wrong("no candidate is starting")),

            (
                Input::CandidateFailed { reason },
                Phase::Starting {
                    plan,
                    candidate,
                    started,
                },
            ) => {
                self.undo_start(plan, candidate, *started, &mut effects);
                next.phase = Phase::Stable;
                releases.push(update(plan.release, ReleaseStatus::Failed, reason));
            }
            (
                Input::CandidateFailed { reason } | Input::StepFailed { reason },
                Phase::Canary {
                    plan, candidate, ..
                },
            ) => {
                next.end_canary(candidate, &mut effects);
                releases.push(update(plan.release, ReleaseStatus::Failed, reason));
            }
            (Input::CandidateFailed { .. }, _) => {
                return Err(self.wrong("no candidate is starting"));
            }
            (Input::StepFailed { .. }, _) => return Err(self.wrong("no canary step is running")),

            (
                Input::StepPassed { note },
                Phase::Canary {
                    plan,
                    candidate,
                    step,
                },
            ) => {
                let mut plan = plan.clone();
                plan.note.push_str(&note);
                match plan.steps.get(step + 1) {
                    Some(w) if *w < 100 => {
                        next.phase = Phase::Canary {
                            plan,
                            candidate: candidate.clone(),
                            step: step + 1,
                        };
                    }
                    _ => {
                        let old = self.stable.revision.clone();
                        next.switch_to(&plan, candidate, now_ms);
                        releases.push(update(
                            plan.release,
                            ReleaseStatus::Live,
                            format!(
                                "promoted {} after {} step(s){}; watching while {old} is warm",
                                candidate.revision,
                                step + 1,
                                plan.note
                            ),
                        ));
                    }
                }
            }
            (Input::StepPassed { .. }, _) => return Err(self.wrong("no canary step is running")),

            (
                Input::Promote,
                Phase::Canary {
                    plan, candidate, ..
                },
            ) => {
                let old = self.stable.revision.clone();
                next.switch_to(plan, candidate, now_ms);
                releases.push(update(
                    plan.release,
                    ReleaseStatus::Live,
                    format!(
                        "promoted {} by request; watching while {old} is warm",
                        candidate.revision
                    ),
                ));
            }
            (Input::Promote, Phase::Starting { .. }) => {
                return Err(self.wrong(
                    "the new revision is not taking traffic yet; promote once the canary runs, or `orchestra abort`",
                ));
            }
            (Input::Promote, Phase::Switched { .. }) => {
                return Err(
                    self.wrong("all traffic is already on the new revision; nothing to promote")
                );
            }
            (Input::Promote, Phase::Stable) => {
                return Err(Refused::NothingInProgress(self.service.clone()));
            }

            (
                Input::Abort,
                Phase::Starting {
                    plan,
                    candidate,
                    started,
                },
            ) => {
                self.undo_start(plan, candidate, *started, &mut effects);
                next.phase = Phase::Stable;
                releases.push(update(
                    plan.release,
                    ReleaseStatus::Aborted,
                    format!(
                        "aborted by request before {} got traffic; {} stays live",
                        candidate.revision, self.stable.revision
                    ),
                ));
            }
            (
                Input::Abort,
                Phase::Canary {
                    plan, candidate, ..
                },
            ) => {
                next.end_canary(candidate, &mut effects);
                releases.push(update(
                    plan.release,
                    ReleaseStatus::Aborted,
                    format!(
                        "aborted by request; all traffic back on {}",
                        self.stable.revision
                    ),
                ));
            }
            (Input::Abort, Phase::Switched { plan, previous, .. }) => {
                effects.push(Effect::Stop {
                    key: self.stable.key.clone(),
                    drain: true,
                });
                releases.push(update(
                    plan.release,
                    ReleaseStatus::Aborted,
                    format!(
                        "aborted by request after the switch; traffic is back on {}",
                        previous.revision
                    ),
                ));
                next.stable = previous.clone();
                next.phase = Phase::Stable;
            }
            (Input::Abort, Phase::Stable) => {
                return Err(Refused::NothingInProgress(self.service.clone()));
            }

            (Input::WatchBreached { reason }, Phase::Switched { plan, previous, .. }) => {
                effects.push(Effect::Stop {
                    key: self.stable.key.clone(),
                    drain: true,
                });
                releases.push(update(plan.release, ReleaseStatus::RolledBack, reason));
                next.stable = previous.clone();
                next.phase = Phase::Stable;
            }
            (Input::WatchEnded, Phase::Switched { plan, previous, .. }) => {
                // With no keep_warm the watch ends at the switch: requests may still be in flight.
                effects.push(Effect::Stop {
                    key: previous.key.clone(),
                    drain: true,
                });
                releases.push(update(
                    plan.release,
                    ReleaseStatus::Succeeded,
                    format!("{} is live{}", self.stable.revision, plan.note),
                ));
                next.phase = Phase::Stable;
            }
            (Input::WatchBreached { .. } | Input::WatchEnded, _) => {
                return Err(self.wrong("nothing is being watched"));
            }

            (
                Input::RollbackWarm {
                    release,
                    to,
                    keep_warm_ms,
                },
                Phase::Stable | Phase::Switched { .. },
            ) => {
                if to == self.stable.key {
                    return Err(Refused::AlreadyLive(self.stable.revision.clone()));
                }
                let Some(target) = self.warm_rev(&to).cloned() else {
                    return Err(self.wrong(format!("{to} is not warm; it must be started first")));
                };
                let old = self.stable.clone();
                if let Phase::Switched { plan, previous, .. } = &self.phase {
                    releases.push(update(
                        plan.release,
                        ReleaseStatus::RolledBack,
                        format!("rolled back by request to {}", target.revision),
                    ));
                    if previous.key != target.key {
                        // A warm one was chosen instead; the previous was kept for the watch only.
                        effects.push(Effect::Stop {
                            key: previous.key.clone(),
                            drain: false,
                        });
                    }
                }
                next.warm.retain(|w| w.rev.key != target.key);
                next.stable = target.clone();
                next.phase = Phase::Stable;
                next.retire(old.clone(), keep_warm_ms, now_ms, &mut effects);
                releases.push(update(
                    release,
                    ReleaseStatus::Succeeded,
                    format!("rolled back to warm revision {}", target.revision),
                ));
            }
            (Input::RollbackWarm { .. }, _) => return Err(self.refuse_busy()),

            (Input::ExpireWarm, _) => {
                let (gone, keep): (Vec<Warm>, Vec<Warm>) = self
                    .warm
                    .iter()
                    .cloned()
                    .partition(|w| w.until_ms <= now_ms);
                next.warm = keep;
                effects.extend(gone.into_iter().map(|w| Effect::Stop {
                    key: w.rev.key,
                    drain: false,
                }));
            }
            (Input::SetPaused(p), _) => next.paused = p,
            (Input::SetMaintenance(m), _) => next.maintenance = m,
        }
        Ok(Transition {
            next,
            effects,
            releases,
        })
    }

    /// All traffic back on stable; the canary stops once its requests are done.
    fn end_canary(&mut self, candidate: &Rev, effects: &mut Vec<Effect>) {
        effects.push(Effect::Stop {
            key: candidate.key.clone(),
            drain: true,
        });
        self.phase = Phase::Stable;
    }

    /// Effects that take back a start that got no traffic.
    fn undo_start(&self, plan: &Plan, candidate: &Rev, started: bool, effects: &mut Vec<Effect>) {
        if !started {
            return;
        }
        effects.push(Effect::Stop {
            key: candidate.key.clone(),
            drain: false,
        });
        if plan.kind == Kind::Recreate {
            // The old one is gone: bring it back so the service is not left down.
            effects.push(Effect::Start(self.stable.key.clone()));
        }
    }

    fn switch_to(&mut self, plan: &Plan, candidate: &Rev, now_ms: i64) {
        let previous = std::mem::replace(&mut self.stable, candidate.clone());
        self.phase = Phase::Switched {
            plan: plan.clone(),
            previous,
            until_ms: now_ms.saturating_add(plan.keep_warm_ms),
        };
    }

    /// How the proxy splits this service's traffic now; `None` when the
    /// revision taking the traffic has no route.
    pub fn split(&self) -> Option<Split> {
        let (main, canary) = match &self.phase {
            Phase::Canary {
                plan,
                candidate,
                step,
            } => {
                let w = plan.steps.get(*step).copied().unwrap_or(100).min(100);
                (&self.stable, Some((candidate, w)))
            }
            // A recreate has stopped the old revision: what comes up next is the candidate.
            Phase::Starting {
                plan,
                candidate,
                started: true,
            } if plan.kind == Kind::Recreate => (candidate, None),
            _ => (&self.stable, None),
        };
        let spec = main.route.clone()?;
        Some(Split {
            spec,
            stable: (main.revision.clone(), main.key.clone()),
            canary: canary.map(|(c, w)| (c.revision.clone(), c.key.clone(), w)),
            paused: self.paused,
            maintenance: self.maintenance.clone(),
        })
    }

    /// The role of each instance this rollout keeps running.
    pub fn roles(&self) -> Vec<(String, Role)> {
        let mut out = Vec::new();
        match &self.phase {
            Phase::Starting {
                plan,
                candidate,
                started,
            } => {
                if !(plan.kind == Kind::Recreate && *started) {
                    out.push((self.stable.key.clone(), Role::Live));
                }
                if *started {
                    out.push((candidate.key.clone(), Role::Candidate));
                }
            }
            Phase::Canary {
                plan,
                candidate,
                step,
            } => {
                out.push((self.stable.key.clone(), Role::Live));
                let w = plan.steps.get(*step).copied().unwrap_or(100);
                out.push((candidate.key.clone(), Role::Canary(w)));
            }
            Phase::Switched { previous, .. } => {
                out.push((self.stable.key.clone(), Role::Live));
                out.push((previous.key.clone(), Role::Warm));
            }
            Phase::Stable => out.push((self.stable.key.clone(), Role::Live)),
        }
        out.extend(self.warm.iter().map(|w| (w.rev.key.clone(), Role::Warm)));
        out
    }

    /// The state a daemon restarted after a crash resumes from: nothing left
    /// in progress. A release that had not switched is rolled back (its
    /// traffic never left the stable revision, or goes back to it); one that
    /// had switched is the answer. Warm revisions died with the daemon.
    pub fn recover(&self) -> (Rollout, Vec<ReleaseUpdate>, Option<String>) {
        let mut next = self.clone();
        next.warm.clear();
        next.phase = Phase::Stable;
        let (updates, note) = match &self.phase {
            Phase::Stable => (Vec::new(), None),
            Phase::Starting {
                plan, candidate, ..
            } => {
                let why = format!(
                    "the daemon stopped before {} got traffic; {} stays live",
                    candidate.revision, self.stable.revision
                );
                (
                    vec![update(plan.release, ReleaseStatus::RolledBack, &why)],
                    Some(format!("release {} rolled back: {why}", plan.release)),
                )
            }
            Phase::Canary {
                plan,
                candidate,
                step,
            } => {
                let w = plan.steps.get(*step).copied().unwrap_or(0);
                let why = format!(
                    "the daemon stopped during the canary of {} at {w}%; traffic is back on {}",
                    candidate.revision, self.stable.revision
                );
                (
                    vec![update(plan.release, ReleaseStatus::RolledBack, &why)],
                    Some(format!("release {} rolled back: {why}", plan.release)),
                )
            }
            Phase::Switched { plan, previous, .. } => {
                let why = format!(
                    "{} is live{}; the daemon stopped while {} was warm",
                    self.stable.revision, plan.note, previous.revision
                );
                (
                    vec![update(plan.release, ReleaseStatus::Succeeded, &why)],
                    Some(format!("release {} succeeded: {why}", plan.release)),
                )
            }
        };
        (next, updates, note)
    }
}

/// The canary weights of a release, from the manifest's steps.
pub fn plan_steps(kind: Kind, spec: &[u32]) -> Vec<u32> {
    match kind {
        Kind::Canary => routes::steps(spec),
        _ => vec![100],
    }
}

#[cfg(test)]
mod tests;
