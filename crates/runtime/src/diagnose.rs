//! Failure reports: why a service did not become healthy, in the words a
//! person would use after looking at the probes, the process and its ports.

use std::time::Duration;

use orchestra_manifest::Check;
use serde::Serialize;

use crate::backoff::Exit;
use crate::probe::{Failure, ProbeResult};

/// Why a program could not be started at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "program")]
pub enum SpawnError {
    /// argv[0] is not a file, nor found in PATH.
    NotFound(String),
    /// argv[0] exists but is not executable by us.
    PermissionDenied(String),
    /// Some other OS error.
    Other(String),
    /// The container engine refused; the message says what to do.
    Container(String),
}

/// What was known about a replica when it was declared failed.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The healthcheck, if any.
    pub check: Option<Check>,
    /// The replica's assigned PORT.
    pub port: u16,
    /// Recent probe results, oldest first.
    pub probes: Vec<ProbeResult>,
    /// How the process ended, if it did.
    pub exit: Option<Exit>,
    /// Ports the replica's process group listens on.
    pub listening: Vec<u16>,
    /// Time from start to the failure.
    pub elapsed: Duration,
    /// The healthcheck's start_period.
    pub start_period: Duration,
    /// The probe timeout.
    pub timeout: Duration,
    /// Last log lines.
    pub log_tail: Vec<String>,
    /// The program could not be run.
    pub spawn_error: Option<SpawnError>,
    /// Other paths that answered 2xx when the probe path answered 404.
    pub alternatives: Vec<String>,
}

/// The most likely cause, when the evidence makes one evident.
pub fn likely_cause(e: &Evidence) -> Option<String> {
    match &e.spawn_error {
        Some(SpawnError::NotFound(p)) => {
            return Some(format!(
                "command not found: `{p}` is neither a path to a file nor a program in PATH"
            ));
        }
        Some(SpawnError::PermissionDenied(p)) => {
            return Some(format!(
                "permission denied: `{p}` is not executable (check its mode, e.g. chmod +x)"
            ));
        }
        Some(SpawnError::Container(m)) => return Some(m.clone()),
        Some(SpawnError::Other(m)) => {
            return Some(format!("the command could not be started: {m}"));
        }
        None => {}
    }
    let logs_say = |needle: &str| {
        e.log_tail
            .iter()
            .any(|l| l.to_ascii_lowercase().contains(needle))
    };
    if let Some(exit) = e.exit {
        let what = match exit {
            Exit::Code(127) => "a command was not found (exit code 127)".to_owned(),
            Exit::Code(126) => "permission denied running a command (exit code 126)".to_owned(),
            other => format!("the process {other} before becoming healthy"),
        };
        let extra = if logs_say("address already in use") {
            ": its port is already in use by another process"
        } else if logs_say("permission denied") {
            ": its logs report `permission denied`"
        } else if logs_say("not found") {
            ": its logs report something `not found`"
        } else {
            "; see its last log lines"
        };
        return Some(format!("{what}{extra}"));
    }
    let last = e.probes.iter().rev().find(|p| !p.ok())?;
    let probe_port = match &e.check {
        Some(Check::Http { port, .. }) | Some(Check::Tcp { port }) => port.unwrap_or(e.port),
        _ => e.port,
    };
    Some(match last.failure.as_ref()? {
        Failure::Refused => {
            let elsewhere: Vec<String> = e
                .listening
                .iter()
                .filter(|p| **p != probe_port)
                .map(|p| p.to_string())
                .collect();
            if !elsewhere.is_empty() {
                format!(
                    "nothing listens on the expected port {probe_port}; the process listens on port {} instead: pass ${{PORT}} to the command (PORT is set in its environment) or set the probe's port",
                    elsewhere.join(", ")
                )
            } else {
                format!(
                    "nothing is listening on port {probe_port} after {:.1}s and start_period is {}: if the service needs longer to start (loading a model, warming a cache), raise start_period; if it never opens a port, use an exec healthcheck",
                    e.elapsed.as_secs_f64(),
                    human(e.start_period)
                )
            }
        }
        Failure::Status(404) => {
            let path = match &e.check {
                Some(Check::Http { path, .. }) => path.as_str(),
                _ => "the probe path",
            };
            match e.alternatives.first() {
                Some(alt) => format!(
                    "GET {path} answers 404: the service does not serve this path, but GET {alt} answers 200: use `http: {alt}`"
                ),
                None => format!("GET {path} answers 404: the service does not serve this path"),
            }
        }
        Failure::Status(code) => format!(
            "the health endpoint answers {code}: the service reports itself unhealthy{}",
            excerpt(&last.excerpt)
        ),
        Failure::Timeout => format!(
            "the probe timed out after {}: the service accepts connections but does not answer in time",
            human(e.timeout)
        ),
        Failure::ExitCode(c) => format!(
            "the healthcheck command exits with code {c}{}",
            excerpt(&last.excerpt)
        ),
        Failure::Other(m) => format!("the probe failed: {m}"),
    })
}

fn excerpt(s: &str) -> String {
    if s.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", s.trim())
    }
}

/// `1.5s`, `200ms`, `2m`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(failure: Option<Failure>) -> ProbeResult {
        ProbeResult {
            at_ms: 0,
            target: "GET http://127.0.0.1:4000/health".into(),
            failure,
            status: None,
            excerpt: String::new(),
            millis: 1,
        }
    }

    fn http(path: &str) -> Option<Check> {
        Some(Check::Http {
            path: path.into(),
            port: None,
        })
    }

    #[test]
    fn spawn_errors_come_first() {
        let e = Evidence {
            spawn_error: Some(SpawnError::NotFound("modelserve".into())),
            ..Default::default()
        };
        assert!(
            likely_cause(&e)
                .unwrap()
                .starts_with("command not found: `modelserve`")
        );
        let e = Evidence {
            spawn_error: Some(SpawnError::PermissionDenied("./run.sh".into())),
            ..Default::default()
        };
        assert!(likely_cause(&e).unwrap().starts_with("permission denied"));
    }

    #[test]
    fn listening_elsewhere_is_named() {
        let e = Evidence {
            check: http("/health"),
            port: 4000,
            listening: vec![9999],
            probes: vec![probe(Some(Failure::Refused))],
            ..Default::default()
        };
        let c = likely_cause(&e).unwrap();
        assert!(
            c.contains("expected port 4000") && c.contains("port 9999 instead"),
            "{c}"
        );
    }

    #[test]
    fn nothing_listening_points_at_start_period() {
        let e = Evidence {
            check: http("/health"),
            port: 4000,
            probes: vec![probe(Some(Failure::Refused))],
            elapsed: Duration::from_millis(1500),
            start_period: Duration::from_secs(1),
            ..Default::default()
        };
        let c = likely_cause(&e).unwrap();
        assert!(
            c.contains("nothing is listening on port 4000 after 1.5s"),
            "{c}"
        );
        assert!(
            c.contains("start_period is 1s") && c.contains("raise start_period"),
            "{c}"
        );
    }

    #[test]
    fn not_found_path_suggests_the_one_served() {
        let mut e = Evidence {
            check: http("/healthz"),
            probes: vec![probe(Some(Failure::Status(404)))],
            ..Default::default()
        };
        assert_eq!(
            likely_cause(&e).unwrap(),
            "GET /healthz answers 404: the service does not serve this path"
        );
        e.alternatives = vec!["/health".into()];
        assert!(likely_cause(&e).unwrap().ends_with("use `http: /health`"));
    }

    #[test]
    fn early_exit_reads_the_logs() {
        let e = Evidence {
            exit: Some(Exit::Code(1)),
            log_tail: vec!["Error: Address already in use (os error 98)".into()],
            ..Default::default()
        };
        let c = likely_cause(&e).unwrap();
        assert!(
            c.contains("exited with code 1 before becoming healthy")
                && c.contains("already in use"),
            "{c}"
        );
        let e = Evidence {
            exit: Some(Exit::Code(127)),
            ..Default::default()
        };
        assert!(likely_cause(&e).unwrap().contains("not found"));
    }

    #[test]
    fn healthy_probes_give_no_cause() {
        let e = Evidence {
            probes: vec![probe(None)],
            ..Default::default()
        };
        assert_eq!(likely_cause(&e), None);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(200)), "200ms");
        assert_eq!(human(Duration::from_secs(2)), "2s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
