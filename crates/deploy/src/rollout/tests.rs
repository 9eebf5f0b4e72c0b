use std::collections::{BTreeMap, BTreeSet};

use orchestra_manifest::{Balance, RouteSpec};
use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

use super::*;

fn route(path: &str) -> Option<RouteSpec> {
    Some(RouteSpec {
        path: path.into(),
        host: None,
        strip_prefix: false,
        sticky: None,
        balance: Balance::RoundRobin,
        spa: false,
    })
}

fn rev(r: &str) -> Rev {
    Rev {
        revision: r.into(),
        key: format!("api@{r}"),
        route: route("/api"),
    }
}

fn plan(release: i64, kind: Kind, steps: &[u32], keep_warm_ms: i64) -> Plan {
    Plan {
        release,
        kind,
        steps: plan_steps(kind, steps),
        keep_warm_ms,
        note: String::new(),
    }
}

fn begin(r: &Rollout, p: Plan, to: &str) -> Transition {
    r.apply(
        Input::Begin {
            plan: p,
            candidate: rev(to),
        },
        0,
    )
    .unwrap()
}

/// Apply, expecting acceptance; returns the new state.
fn step(r: &Rollout, i: Input) -> Transition {
    r.apply(i.clone(), 1000)
        .unwrap_or_else(|e| panic!("{i:?} refused in {:?}: {e}", r.phase))
}

fn weights(r: &Rollout) -> Vec<(String, u32)> {
    let s = r.split().unwrap();
    let mut out = vec![(
        s.stable.0.clone(),
        100 - s.canary.as_ref().map_or(0, |c| c.2),
    )];
    if let Some(c) = s.canary {
        out.push((c.0, c.2));
    }
    out
}

#[test]
fn a_canary_steps_then_switches_then_ends_its_watch() {
    let r = Rollout::stable("api", rev("r1"));
    let t = begin(&r, plan(7, Kind::Canary, &[10, 50], 5000), "r2");
    assert!(t.effects.is_empty(), "pre hooks first: {:?}", t.effects);
    let t = step(&t.next, Input::PreHooksDone);
    assert_eq!(t.effects, [Effect::Start("api@r2".into())]);
    assert_eq!(weights(&t.next), [("r1".into(), 100)]);
    let t = step(&t.next, Input::CandidateUp);
    assert_eq!(weights(&t.next), [("r1".into(), 90), ("r2".into(), 10)]);
    assert!(t.releases.is_empty(), "still in progress");
    assert!(
        t.next
            .roles()
            .contains(&("api@r2".into(), Role::Canary(10)))
    );
    let t = step(
        &t.next,
        Input::StepPassed {
            note: String::new(),
        },
    );
    assert_eq!(weights(&t.next), [("r1".into(), 50), ("r2".into(), 50)]);
    let t = step(
        &t.next,
        Input::StepPassed {
            note: String::new(),
        },
    );
    assert_eq!(weights(&t.next), [("r2".into(), 100)]);
    assert_eq!(t.releases[0].status, ReleaseStatus::Live);
    assert!(matches!(
        t.next.phase,
        Phase::Switched { until_ms: 6000, .. }
    ));
    assert!(t.next.roles().contains(&("api@r1".into(), Role::Warm)));
    let t = step(&t.next, Input::WatchEnded);
    assert_eq!(t.releases[0].status, ReleaseStatus::Succeeded);
    assert_eq!(
        t.effects,
        [Effect::Stop {
            key: "api@r1".into(),
            drain: true
        }]
    );
    assert_eq!(t.next.phase, Phase::Stable);
    assert_eq!(t.next.stable, rev("r2"));
}

#[test]
fn abort_works_in_every_phase_of_a_blue_green_deploy() {
    let r = Rollout::stable("api", rev("r1"));
    // Before the candidate starts.
    let t = begin(&r, plan(1, Kind::BlueGreen, &[], 1000), "r2");
    let a = step(&t.next, Input::Abort);
    assert_eq!(a.releases[0].status, ReleaseStatus::Aborted);
    assert!(a.effects.is_empty());
    assert_eq!(a.next.stable, rev("r1"));
    // While it starts.
    let t = step(&t.next, Input::PreHooksDone);
    let a = step(&t.next, Input::Abort);
    assert_eq!(
        a.effects,
        [Effect::Stop {
            key: "api@r2".into(),
            drain: false
        }]
    );
    assert_eq!(a.next.phase, Phase::Stable);
    // After the switch: back to the warm previous revision.
    let t = step(&t.next, Input::CandidateUp);
    assert_eq!(weights(&t.next), [("r2".into(), 100)]);
    let a = step(&t.next, Input::Abort);
    assert_eq!(weights(&a.next), [("r1".into(), 100)]);
    assert_eq!(a.releases[0].status, ReleaseStatus::Aborted);
    // At rest there is nothing to abort, and saying so is an error.
    assert_eq!(
        a.next.apply(Input::Abort, 0),
        Err(Refused::NothingInProgress("api".into()))
    );
}

#[test]
fn a_second_release_is_refused_while_one_is_in_progress() {
    let r = Rollout::stable("api", rev("r1"));
    let t = begin(&r, plan(1, Kind::Canary, &[50], 0), "r2");
    let err = t
        .next
        .apply(
            Input::Begin {
                plan: plan(2, Kind::Canary, &[50], 0),
                candidate: rev("r3"),
            },
            0,
        )
        .unwrap_err();
    assert!(
        matches!(err, Refused::InProgress { release: 1, .. }),
        "{err}"
    );
}

#[test]
fn promote_says_why_it_cannot_act_before_the_canary_runs() {
    let r = Rollout::stable("api", rev("r1"));
    let t = begin(&r, plan(1, Kind::Canary, &[50], 0), "r2");
    let err = t.next.apply(Input::Promote, 0).unwrap_err();
    assert!(err.to_string().contains("not taking traffic yet"), "{err}");
}

#[test]
fn a_recreate_routes_to_the_candidate_and_restores_the_old_one_on_failure() {
    let r = Rollout::stable("api", rev("r1"));
    let t = begin(&r, plan(1, Kind::Recreate, &[], 0), "r2");
    let t = step(&t.next, Input::PreHooksDone);
    assert_eq!(
        t.effects,
        [
            Effect::Stop {
                key: "api@r1".into(),
                drain: true
            },
            Effect::Start("api@r2".into())
        ]
    );
    // The stopped revision gets no traffic; the one starting does (503 until ready).
    assert_eq!(weights(&t.next), [("r2".into(), 100)]);
    let f = step(
        &t.next,
        Input::CandidateFailed {
            reason: "unhealthy".into(),
        },
    );
    assert!(f.effects.contains(&Effect::Start("api@r1".into())));
    assert_eq!(weights(&f.next), [("r1".into(), 100)]);
}

#[test]
fn a_route_changed_in_a_new_revision_takes_effect_with_it() {
    let r = Rollout::stable("api", rev("r1"));
    let mut cand = rev("r2");
    cand.route = route("/v2");
    let t = r
        .apply(
            Input::Begin {
                plan: plan(1, Kind::BlueGreen, &[], 0),
                candidate: cand,
            },
            0,
        )
        .unwrap();
    let t = step(&t.next, Input::PreHooksDone);
    assert_eq!(t.next.split().unwrap().spec.path, "/api");
    let t = step(&t.next, Input::CandidateUp);
    assert_eq!(t.next.split().unwrap().spec.path, "/v2");
}

#[test]
fn a_warm_rollback_is_a_switch_and_a_redeployed_warm_revision_is_not_reaped() {
    let r = Rollout::stable("api", rev("r1"));
    let t = begin(&r, plan(1, Kind::BlueGreen, &[], 60_000), "r2");
    let t = step(&t.next, Input::PreHooksDone);
    let t = step(&t.next, Input::CandidateUp);
    let t = step(&t.next, Input::WatchEnded);
    // r1 was stopped at the end of the watch; roll back cold is the controller's.
    assert!(!t.next.is_warm("api@r1"));
    // Back to r1 warm only while it is warm: within a watch.
    let t = begin(&t.next, plan(2, Kind::BlueGreen, &[], 60_000), "r3");
    let t = step(&t.next, Input::PreHooksDone);
    let t = step(&t.next, Input::CandidateUp);
    assert!(t.next.is_warm("api@r2"));
    let rb = step(
        &t.next,
        Input::RollbackWarm {
            release: 3,
            to: "api@r2".into(),
            keep_warm_ms: 60_000,
        },
    );
    assert_eq!(weights(&rb.next), [("r2".into(), 100)]);
    let statuses: Vec<_> = rb.releases.iter().map(|u| (u.id, u.status)).collect();
    assert_eq!(
        statuses,
        [
            (2, ReleaseStatus::RolledBack),
            (3, ReleaseStatus::Succeeded)
        ]
    );
    // r3 is warm now; deploying it again as a canary takes it off the reaper's list.
    assert!(rb.next.is_warm("api@r3"));
    let c = begin(&rb.next, plan(4, Kind::Canary, &[50], 0), "r3");
    let c = step(&c.next, Input::PreHooksDone);
    assert!(!c.next.is_warm("api@r3"));
    let later = c.next.apply(Input::ExpireWarm, i64::MAX).unwrap();
    assert!(later.effects.is_empty(), "{:?}", later.effects);
}

#[test]
fn recovery_leaves_nothing_in_progress_and_keeps_a_switch_that_happened() {
    let r = Rollout::stable("api", rev("r1"));
    let t = begin(&r, plan(1, Kind::Canary, &[50], 0), "r2");
    let t = step(&t.next, Input::PreHooksDone);
    let t = step(&t.next, Input::CandidateUp);
    let (rec, ups, note) = t.next.recover();
    assert_eq!(rec.stable, rev("r1"));
    assert_eq!(ups[0].status, ReleaseStatus::RolledBack);
    assert!(note.unwrap().contains("at 50%"));
    let t = step(&t.next, Input::Promote);
    let (rec, ups, _) = t.next.recover();
    assert_eq!(rec.stable, rev("r2"));
    assert_eq!(rec.phase, Phase::Stable);
    assert_eq!(ups[0].status, ReleaseStatus::Succeeded);
}

#[test]
fn the_state_round_trips_through_json() {
    let r = Rollout::stable("api", rev("r1"));
    let t = begin(&r, plan(1, Kind::Canary, &[10, 50], 1000), "r2");
    let t = step(&t.next, Input::PreHooksDone);
    let t = step(&t.next, Input::CandidateUp);
    let json = serde_json::to_string(&t.next).unwrap();
    let back: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t.next);
}

fn any_input() -> impl proptest::strategy::Strategy<Value = u8> {
    0u8..14
}

/// An input from a small number, with the release id it would get.
fn input(n: u8, release: i64, revs: &[&str]) -> Input {
    let r = revs[release as usize % revs.len()];
    match n {
        0 => Input::Begin {
            plan: plan(release, Kind::Canary, &[10, 50], 1000),
            candidate: rev(r),
        },
        1 => Input::Begin {
            plan: plan(release, Kind::BlueGreen, &[], (release % 2) * 1000),
            candidate: rev(r),
        },
        2 => Input::Begin {
            plan: plan(release, Kind::Recreate, &[], 0),
            candidate: rev(r),
        },
        3 => Input::Begin {
            plan: plan(release, Kind::Rollback, &[], 1000),
            candidate: rev(r),
        },
        4 => Input::PreHooksDone,
        5 => Input::CandidateUp,
        6 => Input::CandidateFailed { reason: "x".into() },
        7 => Input::StepPassed {
            note: String::new(),
        },
        8 => Input::StepFailed { reason: "x".into() },
        9 => Input::Promote,
        10 => Input::Abort,
        11 => Input::WatchBreached { reason: "x".into() },
        12 => Input::WatchEnded,
        _ => Input::RollbackWarm {
            release,
            to: rev(r).key,
            keep_warm_ms: 1000,
        },
    }
}

proptest! {
    /// No sequence of inputs routes traffic to a stopped revision, or leaves
    /// two releases open for one service, and every release opened is
    /// closed by the input that settles it.
    #[test]
    fn no_sequence_routes_to_a_stopped_revision(
        ops in proptest::collection::vec((any_input(), 0i64..4, 0i64..3000), 1..60)
    ) {
        let revs = ["r1", "r2", "r3", "r4"];
        let mut r = Rollout::stable("api", rev("r1"));
        let mut running: BTreeSet<String> = ["api@r1".to_owned()].into();
        let mut open: BTreeMap<i64, ReleaseStatus> = BTreeMap::new();
        let mut next_release = 1i64;
        let mut now = 0i64;
        for (n, pick, dt) in ops {
            now += dt;
            let release = next_release;
            let candidate = input(n, release + pick, &revs);
            let i = match candidate {
                Input::Begin { mut plan, candidate } => {
                    plan.release = release;
                    Input::Begin { plan, candidate }
                }
                Input::RollbackWarm { to, keep_warm_ms, .. } => {
                    Input::RollbackWarm { release, to, keep_warm_ms }
                }
                other => other,
            };
            let i = if n == 13 && pick == 3 { Input::ExpireWarm } else { i };
            let opens = matches!(i, Input::Begin { .. } | Input::RollbackWarm { .. });
            let Ok(t) = r.apply(i, now) else { continue };
            if opens {
                open.insert(release, ReleaseStatus::InProgress);
                next_release += 1;
            }
            for u in &t.releases {
                prop_assert!(open.contains_key(&u.id), "update of unknown release {}", u.id);
                open.insert(u.id, u.status);
            }
            for e in &t.effects {
                match e {
                    Effect::Start(k) => { running.insert(k.clone()); }
                    Effect::Stop { key, .. } => { running.remove(key); }
                }
            }
            r = t.next;
            let split = r.split().expect("every revision here is routed");
            prop_assert!(running.contains(&split.stable.1),
                "routed to stopped {} in {:?}", split.stable.1, r.phase);
            if let Some((_, key, _)) = &split.canary {
                prop_assert!(running.contains(key), "canary {key} not running");
            }
            let in_progress = open.values().filter(|s| !s.is_final()).count();
            prop_assert!(in_progress <= 1, "{in_progress} open releases: {open:?}");
            prop_assert_eq!(in_progress == 1, r.release().is_some());
            let roles: BTreeSet<String> = r.roles().into_iter().map(|(k, _)| k).collect();
            prop_assert_eq!(&roles, &running, "roles vs running in {:?}", r.phase);
        }
    }
}
