//! The driver seam: how one replica is started, watched, probed from inside
//! and stopped. The supervisor decides *when* (gates, probes, restarts,
//! backoff); a driver knows *how*, for one kind of workload: processes here
//! ([`process::ProcessDriver`]) and static sites ([`site::StaticDriver`]: a
//! snapshot, nothing runs), containers in a crate of their own that the
//! daemon plugs in through [`crate::RuntimeConfig::containers`].

#[cfg(any(test, feature = "test-support"))]
pub mod fake;
pub mod process;
pub mod site;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use orchestra_manifest::Service;

use crate::backoff::Exit;
use crate::diagnose::SpawnError;
use crate::logs::LogHub;
use crate::probe::ExecContext;

/// A boxed, sendable future: the trait objects here stay object-safe without
/// an `async-trait` dependency.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything a driver needs to start one replica.
#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    /// Project name (the manifest's `name`).
    pub project: String,
    /// The service definition this replica runs.
    pub service: Arc<Service>,
    /// The service's revision (hash of its definition).
    pub revision: String,
    /// The runtime's instance key (`service@revision`).
    pub instance: String,
    /// Replica index, from 0.
    pub replica: u32,
    /// A free host port the runtime reserved for this replica: a process
    /// listens on it (`PORT`); a container driver may publish elsewhere and
    /// says so through [`Replica::port`].
    pub port: u16,
    /// The working directory (the service's, else the manifest's directory).
    pub dir: PathBuf,
    /// Where the replica's output lines go.
    pub logs: Arc<LogHub>,
}

/// Why a replica could not be started. Starting is not retried: the
/// replica is declared failed with this summary and cause.
#[derive(Debug, Clone)]
pub struct StartError {
    /// One line: what could not be done.
    pub summary: String,
    /// The evidence for the likely cause, when there is some.
    pub cause: Option<SpawnError>,
}

/// One started replica.
pub trait Replica: Send {
    /// The process group leader's PID (processes); `None` for containers,
    /// which do not die with the daemon and are not reaped by PID.
    fn pid(&self) -> Option<i32> {
        None
    }

    /// The container id (containers).
    fn container(&self) -> Option<String> {
        None
    }

    /// How the replica is named in events: `pid 123`, `container 1a2b3c4d5e6f`.
    fn describe(&self) -> String;

    /// The host port (on 127.0.0.1) where it is reachable: HTTP and TCP
    /// probes and the proxy go there.
    fn port(&self) -> u16;

    /// Resolves when the replica exits by itself. Cancel-safe: it is polled
    /// in a `select!` loop and may be dropped and called again.
    fn wait(&mut self) -> BoxFuture<'_, Exit>;

    /// Send `signal` (a name such as `SIGTERM`), SIGKILL after `grace`;
    /// resolves with how it ended.
    fn stop<'a>(&'a mut self, signal: &'a str, grace: Duration) -> BoxFuture<'a, Exit>;

    /// Where and how exec probes run (on the host with the replica's
    /// environment, or inside the container).
    fn exec_context(&self) -> ExecContext;

    /// TCP ports the replica listens on, as host ports where they are
    /// published; for failure reports.
    fn listening_ports(&self) -> BoxFuture<'_, Vec<u16>>;

    /// After it ended: let the last output lines through and release what
    /// is left (the process group, the container).
    fn finish(&mut self) -> BoxFuture<'_, ()>;
}

/// Starts replicas of one kind of workload.
pub trait Driver: Send + Sync + std::fmt::Debug {
    /// Start one replica (for containers: pull or build the image first when
    /// needed, or adopt one left running by a previous daemon).
    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Replica>, StartError>>;

    /// After the whole platform stopped: release shared resources (for
    /// containers: the project network). Never removes data (volumes).
    fn release<'a>(&'a self, _project: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Remove the project's data volumes (`down --volumes`); returns their names.
    fn remove_volumes<'a>(&'a self, _project: &'a str) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use crate::status::Phase;
    use crate::{Runtime, RuntimeConfig};

    #[tokio::test]
    async fn without_a_container_driver_a_container_service_fails_and_says_so() {
        let m = orchestra_manifest::load_str(
            "services:\n  web:\n    image: local/busybox:1\n",
            Path::new("/nonexistent/orchestra.yaml"),
            &orchestra_manifest::LoadOptions::default(),
        )
        .unwrap();
        let plan = orchestra_plan::plan(&m, &BTreeSet::from(["web".to_owned()])).unwrap();
        let logs = tempfile::tempdir().unwrap();
        let (rt, _events) = Runtime::start(RuntimeConfig {
            manifest: std::sync::Arc::new(m),
            plan,
            log_dir: logs.path().to_owned(),
            shim: Vec::new(),
            containers: None,
            static_dir: logs.path().join("static"),
        });
        rt.settled().await;
        let s = rt.service("web").unwrap();
        assert_eq!(s.phase, Phase::Failed);
        assert!(s.reason.contains("container services"), "{}", s.reason);
    }
}
