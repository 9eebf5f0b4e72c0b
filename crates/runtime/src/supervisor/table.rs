//! The instance table: every running revision of every service, which one
//! of each service is live, and the shared state the supervisor's tasks
//! hold on to (`Inner`): configuration, drivers, reserved ports.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use orchestra_manifest::{Restart, Service, Workload};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Event, RuntimeConfig, instance_key};
use crate::driver::Driver;
use crate::logs::LogHub;
use crate::status::{Phase, Role, ServiceStatus};

/// One running revision of a service: its status and the handles that control it.
pub(super) struct Entry {
    pub(super) service: String,
    pub(super) def: Arc<Service>,
    pub(super) status: ServiceStatus,
    pub(super) stop: Option<watch::Sender<bool>>,
    pub(super) restart: Vec<mpsc::UnboundedSender<()>>,
    pub(super) task: Option<JoinHandle<()>>,
}

impl Entry {
    /// A new entry for one revision of `svc`, waiting, with this role.
    pub(super) fn new(svc: &Service, role: Role) -> Entry {
        let revision = svc.revision();
        Entry {
            service: svc.name.clone(),
            def: Arc::new(svc.clone()),
            status: ServiceStatus {
                name: svc.name.clone(),
                kind: kind_of(&svc.workload).to_owned(),
                revision: revision.clone(),
                instance: instance_key(&svc.name, &revision),
                role,
                phase: Phase::Waiting,
                reason: String::new(),
                waiting_on: Vec::new(),
                replicas: Vec::new(),
                report: None,
            },
            stop: None,
            restart: Vec::new(),
            task: None,
        }
    }

    /// Whether its driving task still runs.
    pub(super) fn running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

fn kind_of(w: &Workload) -> &'static str {
    match w {
        Workload::Process { .. } => "process",
        Workload::Image { .. } => "image",
        Workload::Build { .. } => "build",
        Workload::Static { .. } => "static",
    }
}

/// Instances by key (`service@revision`), and which one of each service is live.
#[derive(Default)]
pub(super) struct Table {
    pub(super) entries: BTreeMap<String, Entry>,
    pub(super) live: HashMap<String, String>,
}

impl Table {
    pub(super) fn live_entry(&self, service: &str) -> Option<&Entry> {
        self.live.get(service).and_then(|k| self.entries.get(k))
    }
}

/// What the runtime handle and every supervisor task share. The table is
/// only locked for short sections, never across an await.
pub(super) struct Inner {
    pub(super) cfg: RuntimeConfig,
    pub(super) processes: Arc<dyn Driver>,
    pub(super) statics: Arc<dyn Driver>,
    pub(super) table: Mutex<Table>,
    pub(super) changed: watch::Sender<u64>,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) logs: Arc<LogHub>,
    pub(super) ports: Mutex<HashSet<u16>>,
}

impl Inner {
    /// The restart policy of a service of the manifest (`no` when unknown).
    pub(super) fn restart_policy(&self, name: &str) -> Restart {
        self.cfg
            .manifest
            .service(name)
            .map(|s| s.restart.policy)
            .unwrap_or(Restart::No)
    }

    /// Reserve a free loopback port.
    pub(super) fn alloc_port(&self) -> std::io::Result<u16> {
        let mut used = self.ports.lock();
        for _ in 0..64 {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let port = l.local_addr()?.port();
            if used.insert(port) {
                return Ok(port);
            }
        }
        Err(std::io::Error::other("no free port found"))
    }

    /// Reserve `port` itself (a service's [`Service::pinned_port`]).
    ///
    /// [`Service::pinned_port`]: orchestra_manifest::Service::pinned_port
    pub(super) fn reserve_port(&self, port: u16) -> std::io::Result<u16> {
        if self.ports.lock().insert(port) {
            Ok(port)
        } else {
            Err(std::io::Error::other(format!(
                "port {port} is already given to another replica"
            )))
        }
    }

    /// Give back a port from [`Inner::alloc_port`].
    pub(super) fn release_port(&self, port: u16) {
        self.ports.lock().remove(&port);
    }

    /// The driver that runs this kind of workload.
    pub(super) fn driver_for(&self, w: &Workload) -> Result<Arc<dyn Driver>, String> {
        match (w, &self.cfg.containers) {
            (Workload::Process { .. }, _) => Ok(self.processes.clone()),
            (Workload::Static { .. }, _) => Ok(self.statics.clone()),
            (_, Some(d)) => Ok(d.clone()),
            (_, None) => Err(
                "container services (`image`/`build`) are not supported by this version's runtime yet"
                    .into(),
            ),
        }
    }
}
