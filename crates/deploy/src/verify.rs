//! The verifier: does a revision's live traffic meet its SLOs, and is it no
//! worse than the stable revision over the same window? A pure function
//! over two windows of figures.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a revision must meet (`deploy.verify`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Highest acceptable fraction of failed requests (5xx, connect failures).
    pub max_error_rate: f64,
    /// Highest acceptable p99 latency.
    pub max_p99: Duration,
    /// Fewer requests than this in a window decide nothing.
    pub min_requests: u64,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            max_error_rate: 0.01,
            max_p99: Duration::from_millis(500),
            min_requests: 20,
        }
    }
}

/// One revision's figures over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Window {
    /// Requests completed.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Window {
    /// Failed fraction (0 with no requests).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// The verifier's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reasons", rename_all = "snake_case")]
pub enum Verdict {
    /// Within the SLO and no worse than stable.
    Pass,
    /// Not enough traffic to tell.
    Inconclusive(Vec<String>),
    /// Breached: why, with the figures.
    Fail(Vec<String>),
}

/// How much worse than stable a canary may be before that alone fails it:
/// its error rate may exceed stable's by this much (absolute)...
const WORSE_ERROR_MARGIN: f64 = 0.01;
/// ...and its p99 may be this many times stable's (when both are above the noise floor).
const WORSE_P99_FACTOR: f64 = 2.0;
/// p99s below this are noise on loopback.
const P99_FLOOR: Duration = Duration::from_millis(20);

/// Judge `candidate` against the SLO and, when given, against `stable` over the same window.
pub fn judge(candidate: &Window, stable: Option<&Window>, slo: &Slo) -> Verdict {
    if candidate.requests < slo.min_requests {
        // A breach that is already certain need not wait for more traffic.
        if slo.min_requests > 0
            && candidate.errors as f64 / slo.min_requests as f64 > slo.max_error_rate
        {
            return Verdict::Fail(vec![format!(
                "{} of {} requests failed already (max_error_rate {:.1}% over min_requests {})",
                candidate.errors,
                candidate.requests,
                slo.max_error_rate * 100.0,
                slo.min_requests
            )]);
        }
        return Verdict::Inconclusive(vec![format!(
            "{} requests, fewer than min_requests {}",
            candidate.requests, slo.min_requests
        )]);
    }
    let mut fails = Vec::new();
    let rate = candidate.error_rate();
    if rate > slo.max_error_rate {
        fails.push(format!(
            "error rate {:.1}% ({} of {}) above max_error_rate {:.1}%",
            rate * 100.0,
            candidate.errors,
            candidate.requests,
            slo.max_error_rate * 100.0
        ));
    }
    if candidate.p99 > slo.max_p99 {
        fails.push(format!(
            "p99 {} above max_p99 {}",
            ms(candidate.p99),
            ms(slo.max_p99)
        ));
    }
    if let Some(s) = stable.filter(|s| s.requests >= slo.min_requests) {
        if rate > s.error_rate() + WORSE_ERROR_MARGIN {
            fails.push(format!(
                "error rate {:.1}% worse than stable's {:.1}% over the same window",
                rate * 100.0,
                s.error_rate() * 100.0
            ));
        }
        if candidate.p99 > P99_FLOOR
            && candidate.p99.as_secs_f64() > s.p99.max(P99_FLOOR).as_secs_f64() * WORSE_P99_FACTOR
        {
            fails.push(format!(
                "p99 {} more than {WORSE_P99_FACTOR}x stable's {}",
                ms(candidate.p99),
                ms(s.p99)
            ));
        }
    }
    if fails.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(fails)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(requests: u64, errors: u64, p99_ms: u64) -> Window {
        Window {
            requests,
            errors,
            p99: Duration::from_millis(p99_ms),
        }
    }

    #[test]
    fn healthy_canary_passes() {
        assert_eq!(
            judge(&w(200, 1, 30), Some(&w(2000, 5, 25)), &Slo::default()),
            Verdict::Pass
        );
    }

    #[test]
    fn thirty_percent_errors_fail_with_figures() {
        match judge(&w(100, 30, 10), Some(&w(900, 0, 10)), &Slo::default()) {
            Verdict::Fail(r) => {
                assert!(r[0].contains("error rate 30.0% (30 of 100)"), "{r:?}");
                assert!(r.iter().any(|x| x.contains("worse than stable")), "{r:?}");
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn slow_canary_fails_on_p99() {
        let slo = Slo {
            max_p99: Duration::from_millis(100),
            ..Slo::default()
        };
        assert!(
            matches!(judge(&w(100, 0, 250), None, &slo), Verdict::Fail(r) if r[0].contains("p99 250.0ms"))
        );
        // Within the SLO but far slower than stable.
        let slo = Slo {
            max_p99: Duration::from_secs(1),
            ..Slo::default()
        };
        assert!(
            matches!(judge(&w(100, 0, 300), Some(&w(100, 0, 40)), &slo), Verdict::Fail(r) if r[0].contains("stable's"))
        );
    }

    #[test]
    fn too_little_traffic_is_inconclusive_unless_already_lost() {
        assert!(matches!(
            judge(&w(5, 0, 10), None, &Slo::default()),
            Verdict::Inconclusive(_)
        ));
        // 5 failures when at most 1% of 20 may fail: no more traffic can save it.
        assert!(matches!(
            judge(&w(8, 5, 10), None, &Slo::default()),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn stable_with_too_few_requests_is_not_compared() {
        assert_eq!(
            judge(
                &w(100, 0, 300),
                Some(&w(3, 0, 1)),
                &Slo {
                    max_p99: Duration::from_secs(1),
                    ..Slo::default()
                }
            ),
            Verdict::Pass
        );
    }
}
