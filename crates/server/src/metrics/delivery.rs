//! Delivery figures from the release records in state.db: deploys by outcome,
//! rollbacks, deploy durations, the change-failure rate, time to restore, and
//! the verifier's last figures per service. Pure functions over
//! [`ReleaseRecord`]s; nothing here reads a clock or a database.

use std::collections::BTreeMap;

use orchestra_deploy::verify::{Verdict, Window};
use orchestra_state::{ReleaseRecord, ReleaseStatus};

/// The strategy a manual `orchestra rollback` to a cold revision records, and the one
/// `rollback` to a warm revision records too.
const ROLLBACK: &str = "rollback";

/// Everything `/metrics` says about releases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// Releases by (service, strategy, outcome), outcome being the status (`in-progress` too).
    pub releases: BTreeMap<(String, String, String), u64>,
    /// Rollbacks by (service, trigger): `automatic` (a breach after the switch sent traffic
    /// back) or `manual` (`orchestra rollback`).
    pub rollbacks: BTreeMap<(String, &'static str), u64>,
    /// Seconds from start to end of each ended release, with its strategy.
    pub durations: Vec<(String, f64)>,
    /// Deploys that reached a verdict (succeeded, live, superseded, failed, rolled back).
    pub changes: u64,
    /// Of which were change failures (see [`summarize`]).
    pub change_failures: u64,
    /// Seconds to restore service after each change failure.
    pub restore_seconds: Vec<f64>,
    /// The latest release of each service.
    pub last: BTreeMap<String, LastRelease>,
    /// Per service, for its latest canary that failed verification: seconds from the
    /// release's start to the failure (time to detect a bad canary).
    pub detect_seconds: BTreeMap<String, f64>,
    /// Per service, the verifier's inputs and decision at its last look at the latest
    /// release it looked at.
    pub verify: BTreeMap<String, StepFigures>,
}

/// A service's latest release, as gauges show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRelease {
    /// Release id.
    pub id: i64,
    /// `canary`, `blue-green`, `recreate`, `rollback`.
    pub strategy: String,
    /// Its status.
    pub outcome: String,
    /// Start to end, once ended.
    pub duration_seconds: Option<f64>,
}

/// The verifier's last look at a release (the figures state.db keeps for it).
#[derive(Debug, Clone, PartialEq)]
pub struct StepFigures {
    /// The canary weight of the step, in percent (`None` while watching after a switch).
    pub step_percent: Option<u32>,
    /// Windows judged: `canary`, `stable`, or `after_switch`.
    pub windows: Vec<(&'static str, Window)>,
    /// `pass`, `fail` or `inconclusive`.
    pub decision: &'static str,
}

fn secs(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms.saturating_sub(from_ms)).max(0) as f64 / 1000.0
}

/// The verifier's figures of a release, if its record holds any.
pub fn step_figures(figures: &serde_json::Value) -> Option<StepFigures> {
    let decision = match serde_json::from_value::<Verdict>(figures.get("verdict")?.clone()).ok()? {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "fail",
        Verdict::Inconclusive(_) => "inconclusive",
    };
    let windows: Vec<(&'static str, Window)> = ["canary", "stable", "after_switch"]
        .into_iter()
        .filter_map(|k| Some((k, serde_json::from_value(figures.get(k)?.clone()).ok()?)))
        .collect();
    if windows.is_empty() {
        return None;
    }
    Some(StepFigures {
        step_percent: figures
            .get("step")
            .and_then(serde_json::Value::as_u64)
            .and_then(|w| u32::try_from(w).ok()),
        windows,
        decision,
    })
}

/// Summarize release records (any order).
///
/// A *deploy* is a release of any strategy but `rollback`. A *change failure* is a deploy that
/// failed or was rolled back by itself, or one that a manual rollback later took back (the
/// service's next release is a `rollback` from the revision it shipped). Time to restore is,
/// for a failed or rolled-back deploy, its start to its end (traffic back on the old
/// revision); for one taken back by hand, its end (or start, while still live) to the end of
/// that rollback.
pub fn summarize(records: &[ReleaseRecord]) -> Delivery {
    let mut d = Delivery::default();
    let mut sorted: Vec<&ReleaseRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.id);
    for (i, r) in sorted.iter().enumerate() {
        *d.releases
            .entry((
                r.service.clone(),
                r.strategy.clone(),
                r.status.as_str().to_owned(),
            ))
            .or_default() += 1;
        if r.status == ReleaseStatus::RolledBack {
            *d.rollbacks
                .entry((r.service.clone(), "automatic"))
                .or_default() += 1;
        }
        if r.strategy == ROLLBACK {
            *d.rollbacks
                .entry((r.service.clone(), "manual"))
                .or_default() += 1;
        }
        if let Some(end) = r.ended_at_ms {
            d.durations
                .push((r.strategy.clone(), secs(r.started_at_ms, end)));
        }
        if let Some(v) = step_figures(&r.figures) {
            if let Some(end) = r.ended_at_ms
                && r.strategy == "canary"
                && r.status == ReleaseStatus::Failed
                && v.decision == "fail"
            {
                d.detect_seconds
                    .insert(r.service.clone(), secs(r.started_at_ms, end));
            }
            d.verify.insert(r.service.clone(), v);
        }
        d.last.insert(
            r.service.clone(),
            LastRelease {
                id: r.id,
                strategy: r.strategy.clone(),
                outcome: r.status.as_str().to_owned(),
                duration_seconds: r.ended_at_ms.map(|e| secs(r.started_at_ms, e)),
            },
        );
        if r.strategy == ROLLBACK {
            continue;
        }
        match r.status {
            ReleaseStatus::InProgress | ReleaseStatus::Aborted => continue,
            ReleaseStatus::Failed | ReleaseStatus::RolledBack => {
                d.changes += 1;
                d.change_failures += 1;
                if let Some(end) = r.ended_at_ms {
                    d.restore_seconds.push(secs(r.started_at_ms, end));
                }
            }
            ReleaseStatus::Succeeded | ReleaseStatus::Live | ReleaseStatus::Superseded => {
                d.changes += 1;
                let next = sorted[i + 1..].iter().find(|n| n.service == r.service);
                if let Some(n) = next
                    && n.strategy == ROLLBACK
                    && n.from_revision.as_deref() == Some(r.to_revision.as_str())
                    && n.status.is_settled()
                    && n.status != ReleaseStatus::Failed
                {
                    d.change_failures += 1;
                    if let Some(back) = n.ended_at_ms {
                        let from = r.ended_at_ms.unwrap_or(r.started_at_ms);
                        d.restore_seconds.push(secs(from, back));
                    }
                }
            }
        }
    }
    d
}

impl Delivery {
    /// Change failures per deploy that reached a verdict; `None` before the first.
    pub fn change_failure_ratio(&self) -> Option<f64> {
        (self.changes > 0).then(|| self.change_failures as f64 / self.changes as f64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[allow(clippy::too_many_arguments)]
    fn rel(
        id: i64,
        service: &str,
        strategy: &str,
        from: &str,
        to: &str,
        status: ReleaseStatus,
        start_s: i64,
        end_s: Option<i64>,
    ) -> ReleaseRecord {
        ReleaseRecord {
            id,
            service: service.into(),
            strategy: strategy.into(),
            from_revision: Some(from.into()),
            to_revision: to.into(),
            status,
            reason: String::new(),
            figures: json!({}),
            secrets: json!({}),
            restore_points: json!([]),
            started_at_ms: start_s * 1000,
            ended_at_ms: end_s.map(|e| e * 1000),
        }
    }

    #[test]
    fn nothing_deployed_says_nothing() {
        let d = summarize(&[]);
        assert_eq!(d, Delivery::default());
        assert_eq!(d.change_failure_ratio(), None);
    }

    #[test]
    fn outcomes_durations_and_the_change_failure_rate() {
        use ReleaseStatus::*;
        let recs = vec![
            rel(1, "api", "blue-green", "a", "b", Succeeded, 0, Some(10)),
            rel(2, "api", "canary", "b", "c", Failed, 100, Some(104)),
            rel(3, "api", "canary", "b", "d", RolledBack, 200, Some(230)),
            rel(4, "web", "blue-green", "x", "y", Aborted, 0, Some(1)),
            rel(5, "web", "blue-green", "x", "z", InProgress, 50, None),
        ];
        let d = summarize(&recs);
        let key = |s: &str, st: &str, o: &str| (s.to_owned(), st.to_owned(), o.to_owned());
        assert_eq!(d.releases[&key("api", "canary", "failed")], 1);
        assert_eq!(d.releases[&key("api", "canary", "rolled-back")], 1);
        assert_eq!(d.releases[&key("web", "blue-green", "in-progress")], 1);
        assert_eq!(d.releases.values().sum::<u64>(), 5);
        // Aborted and in-progress reach no verdict.
        assert_eq!((d.changes, d.change_failures), (3, 2));
        assert!((d.change_failure_ratio().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(d.restore_seconds, vec![4.0, 30.0]);
        assert_eq!(d.rollbacks[&("api".to_owned(), "automatic")], 1);
        assert_eq!(d.durations.len(), 4);
        assert!(d.durations.contains(&("blue-green".to_owned(), 10.0)));
        assert_eq!(d.last["api"].id, 3);
        assert_eq!(d.last["web"].outcome, "in-progress");
        assert_eq!(d.last["web"].duration_seconds, None);
    }

    #[test]
    fn a_manual_rollback_makes_the_deploy_it_took_back_a_change_failure() {
        use ReleaseStatus::*;
        let recs = vec![
            // Out of order on purpose: ids decide.
            rel(2, "api", "rollback", "b", "a", Succeeded, 70, Some(75)),
            rel(1, "api", "blue-green", "a", "b", Succeeded, 0, Some(10)),
            rel(3, "api", "blue-green", "a", "c", Succeeded, 100, Some(110)),
        ];
        let d = summarize(&recs);
        // The rollback is no deploy of its own.
        assert_eq!((d.changes, d.change_failures), (2, 1));
        assert_eq!(d.restore_seconds, vec![65.0]);
        assert_eq!(d.rollbacks[&("api".to_owned(), "manual")], 1);
        assert!(!d.rollbacks.contains_key(&("api".to_owned(), "automatic")));
        assert_eq!(d.last["api"].id, 3);
    }

    #[test]
    fn a_rollback_from_another_revision_blames_nothing() {
        use ReleaseStatus::*;
        let recs = vec![
            rel(1, "api", "blue-green", "a", "b", Succeeded, 0, Some(10)),
            rel(2, "api", "rollback", "q", "a", Succeeded, 70, Some(75)),
        ];
        assert_eq!(summarize(&recs).change_failures, 0);
    }

    #[test]
    fn the_verifiers_last_figures_and_the_time_to_detect_a_bad_canary() {
        let mut r = rel(
            7,
            "api",
            "canary",
            "a",
            "b",
            ReleaseStatus::Failed,
            10,
            Some(12),
        );
        r.figures = json!({
            "step": 10,
            "canary": {"requests": 40, "errors": 12, "p99": {"secs": 0, "nanos": 250_000_000}},
            "stable": {"requests": 400, "errors": 0, "p99": {"secs": 0, "nanos": 1_000_000}},
            "verdict": {"verdict": "fail", "reasons": ["error rate 30.0%"]},
            "holding": false,
        });
        let later = rel(
            8,
            "api",
            "blue-green",
            "a",
            "c",
            ReleaseStatus::Live,
            20,
            None,
        );
        let d = summarize(&[r, later]);
        assert_eq!(d.last["api"].id, 8);
        // Kept from the release that had them.
        assert_eq!(d.detect_seconds["api"], 2.0);
        let v = &d.verify["api"];
        assert_eq!(v.decision, "fail");
        assert_eq!(v.step_percent, Some(10));
        assert_eq!(v.windows.len(), 2);
        assert_eq!(v.windows[0].0, "canary");
        assert_eq!(v.windows[0].1.errors, 12);
        assert_eq!(v.windows[0].1.p99, std::time::Duration::from_millis(250));
    }

    #[test]
    fn figures_without_a_verdict_are_no_step() {
        assert_eq!(step_figures(&json!({"switch_ms": 3.5})), None);
        assert_eq!(step_figures(&json!({"report": null})), None);
        let watch = step_figures(&json!({
            "after_switch": {"requests": 30, "errors": 9, "p99": {"secs": 0, "nanos": 0}},
            "verdict": {"verdict": "fail", "reasons": []},
        }))
        .unwrap();
        assert_eq!(watch.step_percent, None);
        assert_eq!(watch.windows[0].0, "after_switch");
    }
}
