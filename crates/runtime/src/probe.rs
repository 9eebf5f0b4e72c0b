//! Probes: one HTTP GET, TCP connect or command, with a timeout, turned into
//! a result that says what happened in words a failure report can show.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use orchestra_manifest::Check;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How a probe failed, for diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Failure {
    /// Nothing accepted the TCP connection.
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// The HTTP server answered with a non-2xx/3xx status.
    Status(u16),
    /// The probe command exited non-zero.
    ExitCode(i32),
    /// Anything else (protocol error, command not runnable...).
    Other(String),
}

/// The outcome of one probe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeResult {
    /// When it ran (ms since the epoch).
    pub at_ms: i64,
    /// What was probed, e.g. `GET http://127.0.0.1:4100/health`.
    pub target: String,
    /// `None` when healthy.
    pub failure: Option<Failure>,
    /// HTTP status, when one came back.
    pub status: Option<u16>,
    /// The start of the body or command output.
    pub excerpt: String,
    /// How long it took.
    pub millis: u64,
}

impl ProbeResult {
    /// Whether the probe passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// One line: target, then the result.
    pub fn summary(&self) -> String {
        let outcome = match (&self.failure, self.status) {
            (None, Some(s)) => format!("{s} OK"),
            (None, None) => "ok".to_owned(),
            (Some(Failure::Refused), _) => "connection refused".to_owned(),
            (Some(Failure::Timeout), _) => format!("timed out after {} ms", self.millis),
            (Some(Failure::Status(s)), _) => format!("answered {s}"),
            (Some(Failure::ExitCode(c)), _) => format!("exited with code {c}"),
            (Some(Failure::Other(e)), _) => e.clone(),
        };
        let excerpt = self.excerpt.trim();
        if excerpt.is_empty() {
            format!("{}: {outcome}", self.target)
        } else {
            format!("{}: {outcome}: {excerpt}", self.target)
        }
    }
}

/// Where and how to run exec probes.
#[derive(Debug, Clone, Default)]
pub struct ExecContext {
    /// Environment for the command (the service's, with PORT).
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub dir: Option<PathBuf>,
    /// Runs the command inside the replica (a container) instead of on the
    /// host; `env` and `dir` are then the container's own.
    pub inside: Option<Arc<dyn ExecInside>>,
}

/// What an exec probe inside a replica gives back: the exit code and the
/// output (stdout then stderr), or why it could not run at all.
pub type ExecOutput = Result<(i64, Vec<u8>), String>;

/// Runs exec probes inside a replica (for containers: the Engine's exec API).
pub trait ExecInside: Send + Sync + std::fmt::Debug {
    /// The port `${PORT}` stands for inside the replica.
    fn port(&self) -> u16;
    /// Run `argv` inside the replica.
    fn exec(&self, argv: Vec<String>) -> crate::driver::BoxFuture<'static, ExecOutput>;
}

const EXCERPT: usize = 200;

/// Run one probe against a replica listening (or not) on `port`.
pub async fn run(check: &Check, port: u16, timeout: Duration, ctx: &ExecContext) -> ProbeResult {
    let start = Instant::now();
    let (target, res) = match check {
        Check::Http { path, port: p } => {
            let port = p.unwrap_or(port);
            (
                format!("GET http://127.0.0.1:{port}{path}"),
                tokio::time::timeout(timeout, http_get(port, path)).await,
            )
        }
        Check::Tcp { port: p } => {
            let port = p.unwrap_or(port);
            let fut = async {
                TcpStream::connect(("127.0.0.1", port))
                    .await
                    .map(|_| (None, String::new()))
                    .map_err(connect_failure)
            };
            (
                format!("tcp 127.0.0.1:{port}"),
                tokio::time::timeout(timeout, fut).await,
            )
        }
        Check::Exec { command } => {
            let port = ctx.inside.as_ref().map_or(port, |i| i.port());
            let argv: Vec<String> = command
                .iter()
                .map(|a| a.replace("${PORT}", &port.to_string()))
                .collect();
            let target = format!("exec {}", argv.join(" "));
            let res = match &ctx.inside {
                Some(i) => tokio::time::timeout(timeout, exec_inside(i.as_ref(), argv)).await,
                None => tokio::time::timeout(timeout, exec(argv, ctx)).await,
            };
            (target, res)
        }
    };
    let millis = start.elapsed().as_millis() as u64;
    let (failure, status, excerpt) = match res {
        Err(_) => (Some(Failure::Timeout), None, String::new()),
        Ok(Ok((status, excerpt))) => (None, status, excerpt),
        Ok(Err((failure, status, excerpt))) => (Some(failure), status, excerpt),
    };
    ProbeResult {
        at_ms: orchestra_clock::now_ms(),
        target,
        failure,
        status,
        excerpt,
        millis,
    }
}

type Outcome = Result<(Option<u16>, String), (Failure, Option<u16>, String)>;

fn connect_failure(e: std::io::Error) -> (Failure, Option<u16>, String) {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        (Failure::Refused, None, String::new())
    } else {
        (Failure::Other(format!("connect: {e}")), None, String::new())
    }
}

/// A plain HTTP/1.1 GET; also used to look for the health path a service
/// really serves when its probe path answers 404.
pub async fn http_get(port: u16, path: &str) -> Outcome {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(connect_failure)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| (Failure::Other(format!("http: {e}")), None, String::new()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .header(hyper::header::USER_AGENT, "orchestra-probe")
        .body(Empty::<Bytes>::new())
        .map_err(|e| {
            (
                Failure::Other(format!("bad request: {e}")),
                None,
                String::new(),
            )
        })?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| (Failure::Other(format!("http: {e}")), None, String::new()))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    // Read only the start: a probe must not hang on a streaming body.
    while buf.len() < EXCERPT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    buf.extend_from_slice(d);
                }
            }
            _ => break,
        }
    }
    let excerpt = excerpt_of(&buf);
    if (200..400).contains(&status) {
        Ok((Some(status), excerpt))
    } else {
        Err((Failure::Status(status), Some(status), excerpt))
    }
}

async fn exec(argv: Vec<String>, ctx: &ExecContext) -> Outcome {
    let Some((prog, args)) = argv.split_first() else {
        return Err((Failure::Other("empty command".into()), None, String::new()));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .envs(&ctx.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(d) = &ctx.dir {
        cmd.current_dir(d);
    }
    let child = cmd.spawn().map_err(|e| {
        (
            Failure::Other(format!("cannot run `{prog}`: {e}")),
            None,
            String::new(),
        )
    })?;
    let pgid = child.id().map(|p| p as i32);
    // Dropped on timeout: the whole group goes with it, not just the leader.
    let _group = GroupGuard(pgid);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| (Failure::Other(format!("wait: {e}")), None, String::new()))?;
    let mut text = out.stdout;
    text.extend_from_slice(&out.stderr);
    let excerpt = excerpt_of(&text);
    match out.status.code() {
        Some(0) => Ok((None, excerpt)),
        Some(c) => Err((Failure::ExitCode(c), None, excerpt)),
        None => Err((
            Failure::Other("probe command killed by a signal".into()),
            None,
            excerpt,
        )),
    }
}

async fn exec_inside(inside: &dyn ExecInside, argv: Vec<String>) -> Outcome {
    match inside.exec(argv).await {
        Err(e) => Err((Failure::Other(e), None, String::new())),
        Ok((0, out)) => Ok((None, excerpt_of(&out))),
        Ok((code, out)) => Err((
            Failure::ExitCode(i32::try_from(code).unwrap_or(i32::MAX)),
            None,
            excerpt_of(&out),
        )),
    }
}

struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn excerpt_of(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
