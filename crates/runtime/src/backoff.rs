//! Restart decisions: whether a replica that stopped runs again, and after how long.

use std::time::Duration;

use orchestra_manifest::{Restart, RestartPolicy};

/// How a replica's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Exit {
    /// Exited with this status code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// Whether this counts as success (exit 0).
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// Decode a wait status as reported through the shim: the shim exits
    /// 128+N when its child died of signal N.
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) if c > 128 && c < 128 + 65 => Exit::Signal(c - 128),
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Code(-1),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by signal {s} ({name})")
            }
        }
    }
}

/// Why the process ended, from the supervisor's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited by itself.
    Exited(Exit),
    /// Orchestra killed it because its healthcheck failed.
    Unhealthy,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Start again after this delay.
    Restart(Duration),
    /// A job finished successfully; leave it.
    Completed,
    /// Leave it stopped (restart policy `no`, or `on-failure` after exit 0 of a non-job).
    Stay(String),
    /// Restarted too often: give up.
    GiveUp(String),
}

/// Consecutive failed starts after which a service is shown as crash-looping.
pub const CRASH_LOOP_AFTER: u32 = 3;

/// Exponential backoff: `initial * 2^attempt`, capped at `max`, then spread by
/// `jitter` (a number in [0, 1)) over ±20% so replicas do not restart in step.
pub fn delay(policy: &RestartPolicy, attempt: u32, jitter: f64) -> Duration {
    let base = policy.backoff_initial.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
    let capped = base.min(policy.backoff_max.as_secs_f64());
    let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Duration::from_secs_f64((capped * spread).min(policy.backoff_max.as_secs_f64()))
}

/// Decide what follows the end of a process. `restarts` counts restarts made
/// so far in the current failure streak.
pub fn next(policy: &RestartPolicy, ended: Ended, restarts: u32, jitter: f64) -> Next {
    let failed = match ended {
        Ended::Exited(e) => !e.success(),
        Ended::Unhealthy => true,
    };
    let wants = match policy.policy {
        Restart::No => false,
        Restart::OnFailure => failed,
        Restart::Always => true,
    };
    if !wants {
        return match ended {
            Ended::Exited(e) if e.success() => Next::Completed,
            Ended::Exited(e) => Next::Stay(format!(
                "{e}; restart policy `{}`",
                policy_name(policy.policy)
            )),
            Ended::Unhealthy => Next::Stay("unhealthy; restart policy `no`".into()),
        };
    }
    if let Some(max) = policy.max_restarts
        && restarts >= max
    {
        let what = match ended {
            Ended::Exited(e) => e.to_string(),
            Ended::Unhealthy => "unhealthy".into(),
        };
        return Next::GiveUp(format!(
            "{what}; gave up after {restarts} restarts (max_restarts {max})"
        ));
    }
    Next::Restart(delay(policy, restarts, jitter))
}

fn policy_name(r: Restart) -> &'static str {
    match r {
        Restart::No => "no",
        Restart::OnFailure => "on-failure",
        Restart::Always => "always",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(p: Restart, max: Option<u32>) -> RestartPolicy {
        RestartPolicy {
            policy: p,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_restarts: max,
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = policy(Restart::Always, None);
        let d: Vec<f64> = (0..6).map(|a| delay(&p, a, 0.5).as_secs_f64()).collect();
        assert_eq!(d, [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]);
    }

    #[test]
    fn jitter_spreads_within_twenty_percent_and_never_past_the_cap() {
        let p = policy(Restart::Always, None);
        assert_eq!(delay(&p, 1, 0.0).as_secs_f64(), 0.8);
        assert!((delay(&p, 1, 0.999).as_secs_f64() - 1.2).abs() < 0.01);
        assert_eq!(delay(&p, 10, 0.999).as_secs_f64(), 8.0);
    }

    #[test]
    fn on_failure_restarts_failures_and_completes_jobs() {
        let p = policy(Restart::OnFailure, None);
        assert_eq!(
            next(&p, Ended::Exited(Exit::Code(0)), 0, 0.5),
            Next::Completed
        );
        assert!(matches!(
            next(&p, Ended::Exited(Exit::Code(1)), 0, 0.5),
            Next::Restart(_)
        ));
        assert!(matches!(
            next(&p, Ended::Exited(Exit::Signal(9)), 0, 0.5),
            Next::Restart(_)
        ));
        assert!(matches!(
            next(&p, Ended::Unhealthy, 0, 0.5),
            Next::Restart(_)
        ));
    }

    #[test]
    fn no_policy_stays_down_and_always_restarts_even_success() {
        let no = policy(Restart::No, None);
        assert!(
            matches!(next(&no, Ended::Exited(Exit::Code(3)), 0, 0.5), Next::Stay(r) if r.contains("code 3"))
        );
        let always = policy(Restart::Always, None);
        assert!(matches!(
            next(&always, Ended::Exited(Exit::Code(0)), 0, 0.5),
            Next::Restart(_)
        ));
    }

    #[test]
    fn gives_up_after_max_restarts() {
        let p = policy(Restart::OnFailure, Some(2));
        assert!(matches!(
            next(&p, Ended::Exited(Exit::Code(1)), 1, 0.5),
            Next::Restart(_)
        ));
        match next(&p, Ended::Exited(Exit::Code(1)), 2, 0.5) {
            Next::GiveUp(r) => assert!(r.contains("gave up after 2 restarts"), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shim_status_decodes_signals() {
        use std::os::unix::process::ExitStatusExt;
        let st = std::process::ExitStatus::from_raw(137 << 8);
        assert_eq!(Exit::from_status(st), Exit::Signal(9));
        assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
        let st = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(Exit::from_status(st), Exit::Code(3));
    }
}
