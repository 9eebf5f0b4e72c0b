//! Test harness: a project in a temp dir, the real `orchestra` binary, the
//! real `demo-service`, and cleanup that holds even when a test panics.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The orchestra binary under test.
pub fn orchestra_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestra"))
}

/// The directory holding the workspace's binaries (demo-service is built there).
pub fn bin_dir() -> PathBuf {
    let dir = orchestra_bin().parent().unwrap().to_owned();
    assert!(
        dir.join("demo-service").exists(),
        "demo-service is not built in {}: run `cargo build --workspace` first",
        dir.display()
    );
    dir
}

/// PATH with the workspace binaries first.
pub fn path_env() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Poll `f` until it returns Some, or panic after `secs` with `what`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A project directory with an orchestra.yaml; `down` on drop, and the
/// daemon SIGKILLed if it still runs (its shims then take the services down).
pub struct Project {
    pub dir: tempfile::TempDir,
    daemon_pid: Option<i32>,
}

impl Project {
    /// A project with this manifest.
    pub fn new(manifest: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("orch").tempdir().unwrap();
        std::fs::write(dir.path().join("orchestra.yaml"), manifest).unwrap();
        Self {
            dir,
            daemon_pid: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path().join(name), contents).unwrap();
    }

    /// A command for the orchestra binary in this project.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(orchestra_bin());
        c.args(args)
            .current_dir(self.path())
            .env("PATH", path_env())
            // Each project its own age identity: tests never touch the user's.
            .env("ORCHESTRA_AGE_KEY_FILE", self.path().join(".age/key.txt"))
            .env_remove("DEMO_VERSION")
            .stdin(Stdio::null());
        c
    }

    /// Run orchestra to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `up -d` with a free admin port; remembers the daemon for cleanup.
    pub fn up(&mut self, extra: &[&str]) -> Output {
        let mut args = vec!["up", "-d", "--admin", "127.0.0.1:0", "--timeout", "60s"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        if let Some(pid) = self.daemon_pid_from_api() {
            self.daemon_pid = Some(pid);
        }
        out
    }

    /// `up -d` that must succeed.
    pub fn up_ok(&mut self, extra: &[&str]) -> String {
        let out = self.up(extra);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "up -d failed\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn daemon_pid_from_api(&self) -> Option<i32> {
        let out = self.run(&["ps", "--json"]);
        if !out.status.success() {
            return None;
        }
        // The daemon's pid is recorded in the state database's latest run.
        let db = self.path().join(".orchestra/state.db");
        let store = orchestra_state::StateStore::open(&db).ok()?;
        store
            .last_run()
            .ok()
            .flatten()
            .map(|(_, pid, _)| pid as i32)
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        self.daemon_pid
    }

    pub fn set_daemon_pid(&mut self, pid: i32) {
        self.daemon_pid = Some(pid);
    }

    /// Run a command that prints a JSON array, and parse it.
    pub fn json_list(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// `ps --json`.
    pub fn services(&self) -> Vec<Value> {
        self.json_list(&["ps", "--json"])
    }

    /// One service's status.
    pub fn service(&self, name: &str) -> Value {
        self.services()
            .into_iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// Events, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.json_list(&["events", "--json", "-n", "5000"])
    }

    /// Events read straight from the state database (works after `down`).
    pub fn db_events(&self) -> Vec<orchestra_state::EventRecord> {
        let store =
            orchestra_state::StateStore::open(&self.path().join(".orchestra/state.db")).unwrap();
        store.events(0, None, 100_000).unwrap()
    }

    /// Process groups of every replica now running.
    pub fn pgids(&self) -> Vec<i32> {
        self.services()
            .iter()
            .flat_map(|s| s["replicas"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["pid"].as_i64().map(|p| p as i32))
            .collect()
    }

    pub fn down(&self) -> Output {
        self.run(&["down"])
    }

    /// On a failed test: what the daemon saw, so a failure on a slow CI
    /// machine can be read without reproducing it.
    fn print_diagnostics(&self) {
        for args in [
            &["ps", "--json"][..],
            &["history", "--json"],
            &["events", "-n", "80"],
        ] {
            if let Ok(out) = self.command(args).output() {
                eprintln!(
                    "--- orchestra {} ---\n{}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let log = self.path().join(".orchestra/daemon.log");
        if let Ok(text) = std::fs::read_to_string(&log) {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(80);
            eprintln!(
                "--- daemon.log (last 80 lines) ---\n{}",
                lines[from..].join("\n")
            );
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_diagnostics();
        }
        let _ = self.command(&["down"]).output();
        if let Some(pid) = self.daemon_pid
            && orchestra_runtime::procfs::alive(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// At (ms) of the first event matching service/replica/kind.
pub fn event_at(events: &[Value], service: &str, kind: &str) -> i64 {
    events
        .iter()
        .find(|e| e["service"] == service && e["kind"] == kind)
        .and_then(|e| e["at_ms"].as_i64())
        .unwrap_or_else(|| panic!("no `{kind}` event for {service} in {events:#?}"))
}

/// All processes of these groups are gone (zombies count as gone).
pub fn groups_gone(pgids: &[i32]) -> bool {
    pgids
        .iter()
        .all(|g| orchestra_runtime::procfs::group_members(*g).is_empty())
}

/// A foreground `orchestra up`, killed with its group on drop.
pub struct Foreground {
    pub child: Child,
}

impl Foreground {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback (for services that ignore PORT).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET a URL on loopback; (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    Some((status, body))
}
