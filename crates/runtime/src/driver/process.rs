//! The process driver: each replica is a child process under the shim,
//! leading its own process group, its stdout/stderr piped into the log hub.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use orchestra_manifest::{Service, Workload};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;

use super::{BoxFuture, Driver, Replica, ReplicaSpec, StartError};
use crate::backoff::Exit;
use crate::diagnose::SpawnError;
use crate::logs::{LineSplitter, LogHub, LogLine, MAX_LINE_BYTES, Stream};
use crate::probe::ExecContext;
use crate::procfs;

/// Runs `command:` services as processes under the shim.
#[derive(Debug, Clone)]
pub struct ProcessDriver {
    /// The shim command (program and arguments); the argv follows `--`.
    pub shim: Vec<String>,
}

impl Driver for ProcessDriver {
    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Replica>, StartError>> {
        Box::pin(async move {
            self.start_now(spec)
                .map(|r| Box::new(r) as Box<dyn Replica>)
        })
    }
}

impl ProcessDriver {
    fn start_now(&self, spec: &ReplicaSpec) -> Result<ProcessReplica, StartError> {
        let svc = &spec.service;
        let port = spec.port;
        let Workload::Process { command } = &svc.workload else {
            return Err(StartError {
                summary: format!("service `{}` is not a process", svc.name),
                cause: None,
            });
        };
        let argv: Vec<String> = command.iter().map(|a| fill_port(a, port)).collect();
        let mut env = replica_env(svc, port, spec.replica);
        let user = run_as(svc)?;
        if let Some(u) = &user {
            for (k, v) in [("HOME", &u.home), ("USER", &u.name), ("LOGNAME", &u.name)] {
                if !svc.env.contains_key(k) {
                    env.insert(k.to_owned(), v.clone());
                }
            }
        }
        let owner = user.as_ref().map(|u| (u.uid, u.gid));
        let files = crate::secret_files::write_for(&spec.project, &spec.instance, svc, owner)
            .map_err(|e| StartError {
                summary: format!(
                    "cannot write the secret files of `{}` to tmpfs ({})",
                    svc.name,
                    crate::secret_files::instance_dir(&spec.project, &spec.instance).display()
                ),
                cause: Some(SpawnError::Other(e.to_string())),
            })?;
        env.extend(files);
        let path_var = env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok());
        let program = argv.first().cloned().unwrap_or_default();
        if let Err(e) = resolve_program(&program, &spec.dir, path_var.as_deref()) {
            return Err(StartError {
                summary: format!("cannot run `{program}`"),
                cause: Some(e),
            });
        }
        let mut shim = self.shim.clone();
        if let Some(u) = &user {
            shim.extend(["--user".to_owned(), crate::shim::user_arg(u)]);
        }
        let running = spawn(
            &shim,
            &spec.logs,
            &svc.name,
            spec.replica,
            &argv,
            &env,
            &spec.dir,
        )
        .map_err(|e| StartError {
            summary: format!("cannot start `{program}`"),
            cause: Some(SpawnError::Other(e.to_string())),
        })?;
        Ok(ProcessReplica {
            running,
            port,
            env,
            dir: spec.dir.clone(),
        })
    }
}

/// The user a process service's `user:` names, when it is not the daemon's own:
/// only root may switch to another.
fn run_as(svc: &Service) -> Result<Option<orchestra_manifest::user::ProcessUser>, StartError> {
    let Some(spec) = &svc.user else {
        return Ok(None);
    };
    let fail = |summary: String| StartError {
        summary,
        cause: None,
    };
    let u = orchestra_manifest::user::resolve(spec)
        .map_err(|e| fail(format!("cannot run `{}` as user `{spec}`: {e}", svc.name)))?;
    let (euid, egid) = orchestra_manifest::user::effective();
    match switch_user((u.uid, u.gid), (euid, egid)) {
        Ok(true) => Ok(Some(u)),
        Ok(false) => Ok(None),
        Err(why) => Err(fail(format!(
            "cannot run `{}` as user `{spec}` (uid {}, gid {}): {why}; run `orchestra up` as root, or remove `user:`",
            svc.name, u.uid, u.gid
        ))),
    }
}

/// Whether a process must switch from the daemon's (uid, gid) to `target`;
/// an error when it must and cannot (only root can).
pub fn switch_user(target: (u32, u32), daemon: (u32, u32)) -> Result<bool, String> {
    if target == daemon {
        return Ok(false);
    }
    if daemon.0 != 0 {
        return Err(format!(
            "the daemon runs as uid {}, and only root can switch users",
            daemon.0
        ));
    }
    Ok(true)
}

/// The environment a replica's process gets, `${PORT}` filled in.
pub fn replica_env(svc: &Service, port: u16, idx: u32) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = svc
        .env
        .iter()
        .map(|(k, v)| (k.clone(), fill_port(v, port)))
        .collect();
    env.insert("PORT".into(), port.to_string());
    env.insert("ORCHESTRA_SERVICE".into(), svc.name.clone());
    env.insert("ORCHESTRA_REVISION".into(), svc.revision());
    env.insert("ORCHESTRA_REPLICA".into(), idx.to_string());
    env
}

/// Replace `${PORT}` with the port.
pub fn fill_port(s: &str, port: u16) -> String {
    s.replace("${PORT}", &port.to_string())
}

/// Find the program a service runs, the way the shell would, so that a
/// missing or non-executable command is reported before anything starts.
pub fn resolve_program(
    program: &str,
    dir: &Path,
    path_var: Option<&str>,
) -> Result<PathBuf, SpawnError> {
    use std::os::unix::fs::PermissionsExt;
    let check = |p: &Path| -> Option<Result<PathBuf, SpawnError>> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            Some(Ok(p.to_owned()))
        } else {
            Some(Err(SpawnError::PermissionDenied(program.to_owned())))
        }
    };
    if program.contains('/') {
        let p = dir.join(program);
        return check(&p).unwrap_or_else(|| Err(SpawnError::NotFound(program.to_owned())));
    }
    let mut denied = None;
    for d in path_var
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .split(':')
    {
        let base = if d.is_empty() {
            dir.to_owned()
        } else {
            dir.join(d)
        };
        match check(&base.join(program)) {
            Some(Ok(p)) => return Ok(p),
            Some(Err(e)) => denied = Some(e),
            None => {}
        }
    }
    Err(denied.unwrap_or_else(|| SpawnError::NotFound(program.to_owned())))
}

struct Running {
    child: Child,
    // Held open: when the daemon dies, the shim sees EOF and kills the group.
    _lifeline: Option<ChildStdin>,
    pgid: i32,
    readers: Vec<JoinHandle<()>>,
}

/// A replica that is a process group led by the shim.
struct ProcessReplica {
    running: Running,
    port: u16,
    env: BTreeMap<String, String>,
    dir: PathBuf,
}

impl Replica for ProcessReplica {
    fn pid(&self) -> Option<i32> {
        Some(self.running.pgid)
    }

    fn describe(&self) -> String {
        format!("pid {}", self.running.pgid)
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        Box::pin(async move {
            let st = self.running.child.wait().await;
            st.map(Exit::from_status).unwrap_or(Exit::Code(-1))
        })
    }

    fn stop<'a>(&'a mut self, signal: &'a str, grace: Duration) -> BoxFuture<'a, Exit> {
        Box::pin(terminate(&mut self.running, signal, grace))
    }

    fn exec_context(&self) -> ExecContext {
        ExecContext {
            env: self.env.clone(),
            dir: Some(self.dir.clone()),
            inside: None,
        }
    }

    fn listening_ports(&self) -> BoxFuture<'_, Vec<u16>> {
        let ports = procfs::listening_ports(&procfs::group_members(self.running.pgid));
        Box::pin(async move { ports })
    }

    fn finish(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            finish_readers(&mut self.running).await;
            reap_group(self.running.pgid);
        })
    }
}

fn spawn(
    shim: &[String],
    logs: &Arc<LogHub>,
    service: &str,
    idx: u32,
    argv: &[String],
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> std::io::Result<Running> {
    let (shim, shim_args) = shim
        .split_first()
        .ok_or_else(|| std::io::Error::other("no shim configured"))?;
    let mut cmd = tokio::process::Command::new(shim);
    cmd.args(shim_args)
        .arg("--")
        .args(argv)
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pgid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| std::io::Error::other("child exited before its pid was read"))?;
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(pipe_lines(logs, service, idx, Stream::Stdout, out));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(pipe_lines(logs, service, idx, Stream::Stderr, err));
    }
    let lifeline = child.stdin.take();
    Ok(Running {
        child,
        _lifeline: lifeline,
        pgid,
        readers,
    })
}

fn pipe_lines<R: AsyncRead + Unpin + Send + 'static>(
    logs: &Arc<LogHub>,
    service: &str,
    idx: u32,
    stream: Stream,
    reader: R,
) -> JoinHandle<()> {
    let hub = logs.clone();
    let service = service.to_owned();
    tokio::spawn(async move {
        let mut r = BufReader::new(reader);
        let mut lines = LineSplitter::new(MAX_LINE_BYTES);
        loop {
            let chunk = match r.fill_buf().await {
                Ok([]) | Err(_) => break,
                Ok(c) => c,
            };
            let n = chunk.len();
            for text in lines.feed(chunk) {
                hub.push(LogLine {
                    at_ms: orchestra_clock::now_ms(),
                    service: service.clone(),
                    replica: idx,
                    stream,
                    text,
                });
            }
            r.consume(n);
        }
        if let Some(text) = lines.finish() {
            hub.push(LogLine {
                at_ms: orchestra_clock::now_ms(),
                service: service.clone(),
                replica: idx,
                stream,
                text,
            });
        }
    })
}

async fn finish_readers(running: &mut Running) {
    // A grandchild may hold the pipes open; do not wait for it forever.
    for r in running.readers.drain(..) {
        let _ = tokio::time::timeout(Duration::from_millis(500), r).await;
    }
}

/// SIGKILL whatever is left of a process group.
pub fn reap_group(pgid: i32) {
    if !procfs::group_members(pgid).is_empty() {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// Stop a replica's process group: its stop signal, then SIGKILL after the
/// grace period.
async fn terminate(running: &mut Running, signal: &str, grace: Duration) -> Exit {
    let sig: Signal = signal.parse().unwrap_or(Signal::SIGTERM);
    let _ = killpg(Pid::from_raw(running.pgid), sig);
    let status = match tokio::time::timeout(grace, running.child.wait()).await {
        Ok(Ok(st)) => Some(st),
        _ => {
            let _ = killpg(Pid::from_raw(running.pgid), Signal::SIGKILL);
            running.child.wait().await.ok()
        }
    };
    reap_group(running.pgid);
    status.map(Exit::from_status).unwrap_or(Exit::Signal(9))
}

#[cfg(test)]
mod user_tests {
    use super::switch_user;

    #[test]
    fn only_root_switches_and_the_same_user_needs_no_switch() {
        assert_eq!(switch_user((999, 999), (0, 0)), Ok(true));
        assert_eq!(switch_user((0, 0), (0, 0)), Ok(false));
        assert_eq!(switch_user((1000, 1000), (1000, 1000)), Ok(false));
        let e = switch_user((999, 999), (1000, 1000)).unwrap_err();
        assert!(
            e.contains("runs as uid 1000") && e.contains("only root"),
            "{e}"
        );
        // Another group is a switch too.
        assert!(switch_user((1000, 0), (1000, 1000)).is_err());
    }
}
