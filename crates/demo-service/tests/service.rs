//! End-to-end tests: each spawns the real binary on `--port 0`, reads the
//! bound port from its "listening on" line and talks plain HTTP/1.1 to it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_demo-service");
/// Generous upper bound for anything to happen; tests poll, never sleep blindly.
const DEADLINE: Duration = Duration::from_secs(15);

/// A spawned demo-service, killed when dropped (also when a test panics).
struct Proc {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    port: u16,
}

fn read_lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    /// Spawns the binary with `--port 0` plus `args`, without waiting.
    fn spawn(args: &[&str]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(["--port", "0"])
            .args(args)
            .env_remove("PORT")
            .env_remove("ORCHESTRA_SERVICE");
        Proc::spawn_command(cmd)
    }

    /// Spawns `cmd` with its output captured, already inside the guard.
    fn spawn_command(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = read_lines(child.stdout.take().unwrap());
        let stderr = read_lines(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
            port: 0,
        }
    }

    /// Spawns the binary and waits until it listens.
    fn start(args: &[&str]) -> Proc {
        let mut p = Proc::spawn(args);
        let line = p.wait_stdout(|l| l.contains(" listening on "));
        p.port = line.rsplit(':').next().unwrap().trim().parse().unwrap();
        p
    }

    fn wait_line(rx: &Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no matching {what} line in time"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{what} closed before a matching line")
                }
            }
        }
    }

    fn wait_stdout(&self, pred: impl Fn(&str) -> bool) -> String {
        Proc::wait_line(&self.stdout, "stdout", pred)
    }

    fn wait_stderr(&self, pred: impl Fn(&str) -> bool) -> String {
        Proc::wait_line(&self.stderr, "stderr", pred)
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit in time");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    fn get(&self, path: &str) -> Reply {
        request(self.port, "GET", path, b"")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let headers = String::from_utf8(raw[..split].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn root_reports_identity_and_counts_requests() {
    let svc = Proc::start(&["--name", "api", "--version", "v7"]);
    let first = svc.get("/");
    assert_eq!(first.status, 200);
    assert!(first.headers.contains("content-type: application/json"));
    let json = first.json();
    assert_eq!(json["service"], "api");
    assert_eq!(json["version"], "v7");
    assert_eq!(json["path"], "/");
    assert_eq!(json["port"], u64::from(svc.port));
    assert_eq!(json["pid"], u64::from(svc.child.id()));
    assert_eq!(json["requests"], 1);

    let other = svc.get("/v1/models?x=1").json();
    assert_eq!(other["path"], "/v1/models");
    assert_eq!(other["requests"], 2);
}

#[test]
fn name_and_port_come_from_the_environment() {
    let mut cmd = Command::new(BIN);
    cmd.env("PORT", "0").env("ORCHESTRA_SERVICE", "worker");
    let svc = Proc::spawn_command(cmd);
    let line = svc.wait_stdout(|l| l.contains(" listening on "));
    assert!(
        line.starts_with("demo-service worker v1 listening on 127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn fail_rate_one_fails_app_paths_but_not_probes() {
    let svc = Proc::start(&["--fail-rate", "1.0"]);
    for _ in 0..5 {
        let reply = svc.get("/");
        assert_eq!(reply.status, 500);
        assert_eq!(reply.json()["version"], "v1");
    }
    assert_eq!(svc.get("/anything").status, 500);
    assert_eq!(svc.get("/health").status, 200);
    assert_eq!(svc.get("/ready").status, 200);
}

#[test]
fn fail_rate_zero_never_fails() {
    let svc = Proc::start(&["--fail-rate", "0"]);
    for _ in 0..20 {
        assert_eq!(svc.get("/").status, 200);
    }
}

#[test]
fn health_turns_unhealthy_after_the_given_time() {
    let svc = Proc::start(&["--unhealthy-after", "1s"]);
    let reply = svc.get("/health");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
    let deadline = Instant::now() + DEADLINE;
    while svc.get("/health").status == 200 {
        assert!(Instant::now() < deadline, "health never went 503");
        thread::sleep(Duration::from_millis(50));
    }
    // And it stays that way; the app itself keeps serving.
    assert_eq!(svc.get("/health").status, 503);
    assert_eq!(svc.get("/").status, 200);
}

#[test]
fn ready_is_gated_by_not_ready_for() {
    let svc = Proc::start(&["--not-ready-for", "1s"]);
    assert_eq!(svc.get("/ready").status, 503);
    assert_eq!(svc.get("/health").status, 200);
    let deadline = Instant::now() + DEADLINE;
    while svc.get("/ready").status != 200 {
        assert!(Instant::now() < deadline, "never became ready");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_path_can_move() {
    let svc = Proc::start(&["--health-path", "/healthz"]);
    let moved = svc.get("/healthz");
    assert_eq!(moved.status, 200);
    assert_eq!(moved.json()["status"], "ok");
    assert_eq!(svc.get("/health").status, 404);
}

#[test]
fn stream_delivers_events_incrementally() {
    let svc = Proc::start(&["--version", "v3"]);
    let interval = Duration::from_millis(250);
    let mut stream = TcpStream::connect(("127.0.0.1", svc.port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET /stream?n=4&interval=250ms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // When each event was first seen.
    let mut seen = Vec::new();
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        while seen.len() < count(&raw, b"data: ") {
            seen.push(Instant::now());
        }
    }
    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 200);
    assert!(reply.headers.contains("content-type: text/event-stream"));
    let text = String::from_utf8(reply.body).unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 4, "{text:?}");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(*event, format!("data: {{\"i\":{i},\"version\":\"v3\"}}"));
    }
    // Streamed, not buffered: the first event arrived well before the last.
    let spread = seen[3] - seen[0];
    assert!(
        spread >= interval * 2,
        "events arrived together ({spread:?})"
    );
}

#[test]
fn echo_returns_the_body() {
    let svc = Proc::start(&[]);
    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let reply = request(svc.port, "POST", "/echo", &body);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, body);
    assert_eq!(request(svc.port, "GET", "/echo", b"").status, 405);
}

#[test]
fn sleep_answers_after_the_delay() {
    let svc = Proc::start(&[]);
    let began = Instant::now();
    let reply = svc.get("/sleep?d=300ms");
    assert!(began.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["slept_ms"], 300);
    assert_eq!(svc.get("/sleep?d=soon").status, 400);
}

#[test]
fn startup_delay_postpones_listening() {
    let began = Instant::now();
    let _svc = Proc::start(&["--startup-delay", "500ms"]);
    assert!(began.elapsed() >= Duration::from_millis(500));
}

#[test]
fn job_exits_with_its_code() {
    let mut job = Proc::spawn(&["--job", "--startup-delay", "100ms", "--exit-code", "3"]);
    job.wait_stdout(|l| l.contains("migrating..."));
    job.wait_stdout(|l| l.contains("applied 3 migrations"));
    assert_eq!(job.wait_exit().code(), Some(3));

    let mut ok = Proc::spawn(&["--job"]);
    assert_eq!(ok.wait_exit().code(), Some(0));
}

#[test]
fn job_needs_no_port() {
    let mut cmd = Command::new(BIN);
    cmd.arg("--job").env_remove("PORT");
    let mut job = Proc::spawn_command(cmd);
    assert_eq!(job.wait_exit().code(), Some(0));
}

#[test]
fn exit_after_crashes_with_the_code() {
    let mut svc = Proc::start(&["--exit-after", "300ms", "--exit-code", "7"]);
    svc.wait_stderr(|l| l.contains("--exit-after"));
    assert_eq!(svc.wait_exit().code(), Some(7));
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let mut svc = Proc::start(&["--log-requests"]);
    let port = svc.port;
    let in_flight = thread::spawn(move || request(port, "GET", "/sleep?d=1s", b""));
    // The request line proves the server is handling it before we signal.
    svc.wait_stdout(|l| l.contains("GET /sleep"));
    svc.signal("TERM");
    svc.wait_stdout(|l| l.contains("shutting down"));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after shutdown began"
    );
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["slept_ms"], 1000);
    assert_eq!(svc.wait_exit().code(), Some(0));
}

#[test]
fn sigint_exits_zero() {
    let mut svc = Proc::start(&[]);
    svc.signal("INT");
    svc.wait_stdout(|l| l.contains("shutting down"));
    assert_eq!(svc.wait_exit().code(), Some(0));
}

#[test]
fn depends_on_checks_reachability() {
    let store = Proc::start(&["--name", "store"]);
    let url = format!("http://127.0.0.1:{}/health", store.port);
    let api = Proc::start(&["--name", "api", "--depends-on", &url]);
    assert_eq!(api.get("/").status, 200);

    // A port nobody listens on: bind one, then free it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let missing = format!("http://127.0.0.1:{free}/");
    let mut broken = Proc::spawn(&["--depends-on", &url, "--depends-on", &missing]);
    let line = broken.wait_stderr(|l| l.contains("unreachable"));
    assert!(line.contains(&missing), "{line}");
    assert_eq!(broken.wait_exit().code(), Some(1));
}
