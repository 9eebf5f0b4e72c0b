//! One running container as a replica: its exit watched by a task, its
//! output followed into the log hub, probes run through the exec API, and
//! stopping with the service's signal and grace period.

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    KillContainerOptions, LogsOptions, RemoveContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use orchestra_runtime::backoff::Exit;
use orchestra_runtime::logs::{LogHub, LogLine, Stream};
use orchestra_runtime::probe::{ExecContext, ExecInside, ExecOutput};
use orchestra_runtime::{BoxFuture, Replica};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{message_of, status_of};

/// How long a call that lasts as long as a container (wait, logs) may take.
pub const LONG_CALL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a replica's lines go.
#[derive(Clone)]
pub struct LogSink {
    /// The hub.
    pub hub: Arc<LogHub>,
    /// Service name.
    pub service: String,
    /// Replica index.
    pub replica: u32,
}

impl LogSink {
    /// Push one line.
    pub fn line(&self, stream: Stream, text: String) {
        self.hub.push(LogLine {
            at_ms: orchestra_clock::now_ms(),
            service: self.service.clone(),
            replica: self.replica,
            stream,
            text,
        });
    }
}

/// How a container's exit code reads: 128+N is signal N, as the shell says.
pub fn exit_of(code: i64) -> Exit {
    match i32::try_from(code) {
        Ok(c) if c > 128 && c < 128 + 65 => Exit::Signal(c - 128),
        Ok(c) => Exit::Code(c),
        Err(_) => Exit::Code(-1),
    }
}

/// The host port a container port is published on (loopback first).
pub fn host_port_of(info: &ContainerInspectResponse, port: u16) -> Option<u16> {
    let bindings = info
        .network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .get(&format!("{port}/tcp"))?
        .as_ref()?;
    let mut found: Vec<(bool, u16)> = bindings
        .iter()
        .filter_map(|b| {
            let p = b.host_port.as_deref()?.parse().ok()?;
            Some((b.host_ip.as_deref() != Some("127.0.0.1"), p))
        })
        .collect();
    found.sort();
    found.first().map(|(_, p)| *p)
}

/// A started (or adopted) container.
pub struct ContainerReplica {
    docker: Docker,
    id: String,
    port: u16,
    container_port: u16,
    adopted: bool,
    exit: watch::Receiver<Option<Exit>>,
    logs: JoinHandle<()>,
    inside: Arc<ExecIn>,
}

impl ContainerReplica {
    /// Watch a running container: its exit and its output (`tail`: `all`
    /// for a new container, `0` for an adopted one whose past lines were
    /// already captured).
    pub fn attach(
        docker: Docker,
        id: String,
        port: u16,
        container_port: u16,
        adopted: bool,
        sink: LogSink,
    ) -> Self {
        let (tx, exit) = watch::channel(None);
        // Waiting and following last as long as the container: the Engine
        // answers a wait only at the exit, and the API timeout would cut it.
        let patient = docker.clone().with_timeout(LONG_CALL);
        {
            let (d, id, sink) = (patient.clone(), id.clone(), sink.clone());
            tokio::spawn(async move {
                let e = wait_exit(&d, &id, &sink).await;
                let _ = tx.send(Some(e));
            });
        }
        let tail = if adopted { "0" } else { "all" };
        let logs = tokio::spawn(follow_logs(patient, id.clone(), tail, sink));
        let inside = Arc::new(ExecIn {
            docker: docker.clone(),
            id: id.clone(),
            port: container_port,
        });
        Self {
            docker,
            id,
            port,
            container_port,
            adopted,
            exit,
            logs,
            inside,
        }
    }

    async fn exited(&mut self) -> Exit {
        let mut rx = self.exit.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(e) => e.unwrap_or(Exit::Code(-1)),
            // The watcher is gone without a word: count it as a failure.
            Err(_) => Exit::Code(-1),
        }
    }

    async fn kill(&self, signal: &str) {
        let _ = self
            .docker
            .kill_container(
                &self.id,
                Some(KillContainerOptions {
                    signal: signal.to_owned(),
                }),
            )
            .await;
    }
}

impl Replica for ContainerReplica {
    fn container(&self) -> Option<String> {
        Some(self.id.clone())
    }

    fn describe(&self) -> String {
        let short = &self.id[..self.id.len().min(12)];
        if self.adopted {
            format!("container {short} adopted from a previous daemon")
        } else {
            format!("container {short}")
        }
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        Box::pin(self.exited())
    }

    fn stop<'a>(&'a mut self, signal: &'a str, grace: Duration) -> BoxFuture<'a, Exit> {
        Box::pin(async move {
            self.kill(signal).await;
            if let Ok(e) = tokio::time::timeout(grace, self.exited()).await {
                return e;
            }
            self.kill("SIGKILL").await;
            tokio::time::timeout(Duration::from_secs(10), self.exited())
                .await
                .unwrap_or(Exit::Signal(9))
        })
    }

    fn exec_context(&self) -> ExecContext {
        ExecContext {
            inside: Some(self.inside.clone()),
            ..Default::default()
        }
    }

    fn listening_ports(&self) -> BoxFuture<'_, Vec<u16>> {
        Box::pin(async move {
            // The container's processes are visible from the host; its
            // sockets live in its network namespace, seen through its PID 1.
            let Ok(info) = self.docker.inspect_container(&self.id, None).await else {
                return Vec::new();
            };
            let Some(pid) = info.state.and_then(|s| s.pid).filter(|p| *p > 0) else {
                return Vec::new();
            };
            let mut ports: Vec<u16> = ["tcp", "tcp6"]
                .iter()
                .filter_map(|f| std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).ok())
                .flat_map(|t| orchestra_runtime::procfs::parse_listeners(&t))
                .map(|(p, _)| {
                    if p == self.container_port {
                        self.port
                    } else {
                        p
                    }
                })
                .collect();
            ports.sort_unstable();
            ports.dedup();
            ports
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // The log stream ends with the container; let its last lines in.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.logs).await;
            self.logs.abort();
            remove(&self.docker, &self.id).await;
        })
    }
}

/// Remove a container, running or not, with its anonymous volumes (named
/// volumes stay).
pub async fn remove(d: &Docker, id: &str) {
    let r = d
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await;
    if let Err(e) = r
        && status_of(&e) != Some(404)
    {
        tracing::warn!("cannot remove container {id}: {}", message_of(&e));
    }
}

/// Wait for the container to stop; if the wait call itself fails (the
/// Engine restarted...), ask again rather than report an exit that did not
/// happen.
async fn wait_exit(d: &Docker, id: &str, sink: &LogSink) -> Exit {
    loop {
        let mut s = d.wait_container(
            id,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        let code = match s.next().await {
            Some(Ok(r)) => Some(r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
            _ => None,
        };
        match d.inspect_container(id, None).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                if state.running == Some(true) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                if state.oom_killed == Some(true) {
                    sink.line(
                        Stream::Orchestra,
                        "container was killed for exceeding its memory limit (OOM)".into(),
                    );
                }
                return exit_of(code.or(state.exit_code).unwrap_or(-1));
            }
            Err(e) if status_of(&e) == Some(404) => return exit_of(code.unwrap_or(-1)),
            Err(_) => match code {
                Some(c) => return exit_of(c),
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            },
        }
    }
}

/// Follow a container's output into the log hub, line by line, stdout and
/// stderr apart.
async fn follow_logs(d: Docker, id: String, tail: &'static str, sink: LogSink) {
    let mut s = d.logs(
        &id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            tail: tail.into(),
            ..Default::default()
        }),
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(Ok(chunk)) = s.next().await {
        let (buf, stream, bytes) = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (&mut out, Stream::Stdout, message)
            }
            LogOutput::StdErr { message } => (&mut err, Stream::Stderr, message),
            LogOutput::StdIn { .. } => continue,
        };
        buf.extend_from_slice(&bytes);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            sink.line(stream, text_of(&line));
        }
    }
    for (buf, stream) in [(out, Stream::Stdout), (err, Stream::Stderr)] {
        if !buf.is_empty() {
            sink.line(stream, text_of(&buf));
        }
    }
}

fn text_of(line: &[u8]) -> String {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    String::from_utf8_lossy(&line[..end]).into_owned()
}

/// Exec probes through the Engine's exec API.
#[derive(Debug)]
pub struct ExecIn {
    docker: Docker,
    id: String,
    port: u16,
}

impl ExecInside for ExecIn {
    fn port(&self) -> u16 {
        self.port
    }

    fn exec(&self, argv: Vec<String>) -> BoxFuture<'static, ExecOutput> {
        let (d, id) = (self.docker.clone(), self.id.clone());
        Box::pin(async move {
            let ex = d
                .create_exec(
                    &id,
                    CreateExecOptions {
                        cmd: Some(argv),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| format!("exec: {}", message_of(&e)))?;
            let mut output = Vec::new();
            if let StartExecResults::Attached { output: mut o, .. } = d
                .start_exec(&ex.id, None)
                .await
                .map_err(|e| format!("exec: {}", message_of(&e)))?
            {
                while let Some(Ok(chunk)) = o.next().await {
                    output.extend_from_slice(&chunk.into_bytes());
                }
            }
            let code = d
                .inspect_exec(&ex.id)
                .await
                .map_err(|e| format!("exec: {}", message_of(&e)))?
                .exit_code
                .unwrap_or(-1);
            Ok((code, output))
        })
    }
}
