//! The commands that talk to a running daemon: ps, health, logs, events,
//! start/stop/restart, down.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use orchestra_runtime::logs::{LogLine, Stream, format_ts};
use orchestra_runtime::status::{PlatformStatus, ServiceStatus};
use orchestra_server::client::{Client, ClientError};
use serde_json::Value;

use crate::args::{EventsArgs, LogsArgs};
use crate::project;

fn client(file: Option<&Path>) -> anyhow::Result<Client> {
    crate::control::client(file)
}

async fn status(c: &Client) -> anyhow::Result<PlatformStatus> {
    serde_json::from_value(c.get("/v1/status").await?)
        .context("unexpected status answer from the daemon")
}

fn phase_name(p: orchestra_runtime::status::Phase) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn uptime(started_ms: Option<i64>) -> String {
    let Some(ms) = started_ms else {
        return "-".into();
    };
    let secs = (orchestra_state::now_ms() - ms).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// `orchestra ps`: every service's live revision, plus any other revision
/// running beside it (a canary, a warm previous one).
pub async fn ps(file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let c = client(file)?;
    let st = status(&c).await?;
    let all: Vec<ServiceStatus> = match c.get("/v1/instances").await {
        Ok(v) => serde_json::from_value(v).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    // Each service's live revision, then the other revisions running beside
    // it: the same rows as the table.
    let rows: Vec<(&ServiceStatus, Vec<&ServiceStatus>)> = st
        .services
        .iter()
        .map(|s| {
            let others = all
                .iter()
                .filter(|o| o.name == s.name && o.instance != s.instance)
                .collect();
            (s, others)
        })
        .collect();
    if json {
        let flat: Vec<&ServiceStatus> = rows
            .iter()
            .flat_map(|(s, others)| std::iter::once(*s).chain(others.iter().copied()))
            .collect();
        println!("{}", serde_json::to_string_pretty(&flat)?);
        return Ok(ExitCode::SUCCESS);
    }
    let w = st
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:w$}  {:14} {:8} {:>8} {:>6} {:>8} {:>8}  {:12}  REASON",
        "SERVICE", "STATE", "REPLICAS", "PID", "PORT", "RESTARTS", "UPTIME", "REVISION"
    );
    for (s, others) in &rows {
        print_row(s, &s.name, w);
        for other in others {
            print_row(other, &format!(" └ {}", other.role), w);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_row(s: &ServiceStatus, label: &str, w: usize) {
    let good = s.replicas.iter().filter(|r| r.phase.is_good()).count();
    let first = s.replicas.first();
    let pid = first
        .and_then(|r| r.pid)
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into());
    let port = first
        .filter(|r| r.pid.is_some() || r.container.is_some())
        .and_then(|r| r.port)
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into());
    let restarts: u32 = s.replicas.iter().map(|r| r.restarts).sum();
    let up = first
        .filter(|r| r.pid.is_some())
        .and_then(|r| r.started_at_ms);
    println!(
        "{:w$}  {:14} {:8} {:>8} {:>6} {:>8} {:>8}  {:12}  {}",
        label,
        phase_name(s.phase),
        format!("{good}/{}", s.replicas.len().max(1)),
        pid,
        port,
        restarts,
        uptime(up),
        s.revision,
        s.reason
    );
}

/// `orchestra health`
pub async fn health(file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let c = client(file)?;
    let st = status(&c).await?;
    if json {
        let services: Vec<Value> = st
            .services
            .iter()
            .map(|s| serde_json::json!({"name": s.name, "state": s.phase, "reason": s.reason}))
            .collect();
        let doc = serde_json::json!({
            "ok": st.ok, "ready": st.ready, "healthy": st.healthy, "total": st.total,
            "threshold": st.threshold, "services": services,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{}: {} — {}/{} services healthy (threshold {:.0}%)",
            st.project,
            if st.ok { "healthy" } else { "UNHEALTHY" },
            st.healthy,
            st.total,
            st.threshold * 100.0
        );
        let w = st.services.iter().map(|s| s.name.len()).max().unwrap_or(4);
        for s in &st.services {
            let mark = if s.phase.is_good() { "✓" } else { "✗" };
            println!(
                "  {mark} {:w$}  {:14} {}",
                s.name,
                phase_name(s.phase),
                s.reason
            );
        }
    }
    Ok(if st.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_log(l: &LogLine, timestamps: bool) {
    let ts = if timestamps {
        format!("{} ", format_ts(l.at_ms))
    } else {
        String::new()
    };
    let sep = match l.stream {
        Stream::Orchestra => "▸",
        _ => "|",
    };
    println!("{ts}{}.{} {sep} {}", l.service, l.replica, l.text);
}

/// `orchestra logs`
pub async fn logs(file: Option<&Path>, a: &LogsArgs) -> anyhow::Result<ExitCode> {
    let c = client(file)?;
    let mut q = format!("/v1/logs?tail={}&follow={}", a.tail, a.follow);
    if let Some(s) = &a.service {
        q.push_str(&format!("&service={s}"));
    }
    let mut out = std::io::stdout().lock();
    c.stream_lines(&q, |line| {
        if let Ok(l) = serde_json::from_str::<LogLine>(line) {
            if a.json {
                // A closed pipe (`| head`) ends the stream.
                return writeln!(out, "{}", log_json(&l))
                    .and_then(|()| out.flush())
                    .is_ok();
            }
            print_log(&l, a.timestamps);
        }
        true
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// One `logs --json` line.
fn log_json(l: &LogLine) -> Value {
    serde_json::json!({
        "time": format_ts(l.at_ms),
        "time_ms": l.at_ms,
        "service": l.service,
        "replica": l.replica,
        "stream": l.stream,
        "line": l.text,
    })
}

/// `orchestra events`
pub async fn events(file: Option<&Path>, a: &EventsArgs) -> anyhow::Result<ExitCode> {
    let c = client(file)?;
    let mut q = format!("/v1/events?limit={}", a.limit);
    if let Some(s) = &a.service {
        q.push_str(&format!("&service={s}"));
    }
    if a.follow {
        q.push_str("&follow=true");
        let mut out = std::io::stdout().lock();
        c.stream_lines(&q, |line| {
            let Ok(e) = serde_json::from_str::<Value>(line) else {
                return true;
            };
            let text = if a.json {
                e.to_string()
            } else {
                event_line(&e)
            };
            // A closed pipe ends the stream.
            writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
        })
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    let ev = c.get(&q).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&ev)?);
        return Ok(ExitCode::SUCCESS);
    }
    for e in ev.as_array().into_iter().flatten() {
        println!("{}", event_line(e));
    }
    Ok(ExitCode::SUCCESS)
}

fn event_line(e: &Value) -> String {
    let at = e.get("at_ms").and_then(Value::as_i64).unwrap_or(0);
    let svc = e.get("service").and_then(Value::as_str).unwrap_or("-");
    let rep = e
        .get("replica")
        .and_then(Value::as_i64)
        .map(|r| format!(".{r}"))
        .unwrap_or_default();
    let kind = e.get("kind").and_then(Value::as_str).unwrap_or("");
    let reason = e.get("reason").and_then(Value::as_str).unwrap_or("");
    format!("{}  {svc}{rep}  {kind:14} {reason}", format_ts(at))
}

/// `orchestra start|stop|restart SERVICE`
pub async fn control(file: Option<&Path>, service: &str, action: &str) -> anyhow::Result<ExitCode> {
    let c = client(file)?;
    let r = c.post(&format!("/v1/services/{service}/{action}")).await?;
    let result = r.get("result").and_then(Value::as_str).unwrap_or(action);
    println!("{service}: {result}");
    Ok(ExitCode::SUCCESS)
}

/// `orchestra down`
pub async fn down(file: Option<&Path>, volumes: bool) -> anyhow::Result<ExitCode> {
    let c = client(file)?;
    // The local socket, to wait for; none to watch for a daemon over TCP.
    let socket = if c.is_remote() {
        None
    } else {
        Some(project::project_paths(file)?.socket)
    };
    let path = if volumes {
        "/v1/down?volumes=true"
    } else {
        "/v1/down"
    };
    let gone = || socket.as_ref().is_none_or(|s| !s.exists());
    match c.post(path).await {
        Ok(r) => {
            // The daemon removes its socket last: wait for that so that a
            // following `up` finds the project free.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !gone() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let n = r.get("stopped").and_then(Value::as_u64).unwrap_or(0);
            println!("orchestra: stopped {n} services");
            for v in r["volumes_removed"].as_array().into_iter().flatten() {
                println!(
                    "orchestra: removed volume {}",
                    v.as_str().unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::NotRunning { .. }) => {
            println!("orchestra is not running for this project");
            Ok(ExitCode::SUCCESS)
        }
        // The daemon may close the connection as it exits.
        Err(ClientError::Transport(_)) if socket.is_some() && gone() => {
            println!("orchestra: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}
