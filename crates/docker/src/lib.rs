//! The container driver: services that name an `image` (or a `build`) run as
//! Docker Engine containers, side by side with process services.
//!
//! Orchestra keeps the decisions: probes, restarts and backoff are the
//! supervisor's (the containers' restart policy is `no`, image healthchecks
//! are off). This crate only translates: one replica is one container,
//! labelled with project, service, revision and replica, on the project's
//! network `orchestra_<project>` where service names resolve, its service
//! port published on an Engine-chosen port of 127.0.0.1 (so revisions run
//! side by side), its output followed into the log hub.
//!
//! Containers are not children of the daemon: when it is killed they keep
//! running. The next daemon [`DockerDriver::reconcile`]s them: a running
//! container of a wanted revision is adopted by the replica that would
//! have started it, everything else of the project is removed. A clean stop
//! removes the containers and the network, never the volumes.

pub mod context;
pub mod engine;
pub mod error;
pub mod image;
pub mod replica;
pub mod spec;
pub mod stats;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use bollard::Docker;
use bollard::models::{ContainerSummaryStateEnum, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{CreateContainerOptions, ListContainersOptions};
use orchestra_manifest::{Manifest, Resources, Workload};
use orchestra_runtime::diagnose::SpawnError;
use orchestra_runtime::logs::Stream;
use orchestra_runtime::{BoxFuture, Driver, Replica, ReplicaSpec, StartError};
use tokio::sync::{Mutex, OnceCell};

pub use error::DockerError;

use crate::error::{message_of, status_of};
use crate::replica::{ContainerReplica, LogSink, host_port_of, remove};
use crate::spec::{
    ContainerPlan, LABEL_PORT, LABEL_PROJECT, LABEL_REPLICA, LABEL_REVISION, LABEL_SERVICE,
    container_name, container_port, image_tag, network_name, project_labels, volume_name,
};

/// A replica the platform wants: (service, revision, replicas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Service name.
    pub service: String,
    /// Its revision.
    pub revision: String,
    /// How many replicas.
    pub replicas: u32,
}

/// The container services among `services`, as [`DockerDriver::reconcile`] wants them.
pub fn wanted(manifest: &Manifest, services: &[String]) -> Vec<Wanted> {
    services
        .iter()
        .filter_map(|n| manifest.service(n))
        .filter(|s| matches!(s.workload, Workload::Image { .. } | Workload::Build { .. }))
        .map(|s| Wanted {
            service: s.name.clone(),
            revision: s.revision(),
            replicas: s.replicas,
        })
        .collect()
}

/// Runs container services on the Docker Engine at `DOCKER_HOST`.
pub struct DockerDriver {
    socket: Result<PathBuf, String>,
    engine: OnceCell<Docker>,
    /// Images built by this daemon; builds run one at a time.
    built: Mutex<HashSet<String>>,
    /// Creating a network is check-then-create: one at a time.
    network: Mutex<()>,
}

impl std::fmt::Debug for DockerDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerDriver")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl DockerDriver {
    /// A driver for the Engine `DOCKER_HOST` names (default
    /// `/var/run/docker.sock`). Nothing is contacted until it is used.
    pub fn from_env() -> Arc<Self> {
        Self::new(std::env::var("DOCKER_HOST").ok().as_deref())
    }

    /// A driver for this `DOCKER_HOST` value.
    pub fn new(docker_host: Option<&str>) -> Arc<Self> {
        Arc::new(Self {
            socket: engine::socket_from(docker_host).map_err(|e| e.to_string()),
            engine: OnceCell::new(),
            built: Mutex::new(HashSet::new()),
            network: Mutex::new(()),
        })
    }

    /// The Engine, connected on first use.
    pub async fn engine(&self) -> Result<Docker, DockerError> {
        let socket = match &self.socket {
            Ok(s) => s.clone(),
            Err(_) => {
                return Err(DockerError::UnsupportedHost(
                    std::env::var("DOCKER_HOST").unwrap_or_default(),
                ));
            }
        };
        self.engine
            .get_or_try_init(|| engine::connect(&socket))
            .await
            .cloned()
    }

    /// After a daemon restart: keep the project's running containers of
    /// wanted revisions (their replicas adopt them), remove the others.
    /// Returns (service, `adopting` or `reaped`, what) for each container found.
    pub async fn reconcile(
        &self,
        project: &str,
        wanted: &[Wanted],
    ) -> Result<Vec<(String, &'static str, String)>, DockerError> {
        let d = self.engine().await?;
        let mut done = Vec::new();
        for c in list_project(&d, project).await? {
            let labels = c.labels.clone().unwrap_or_default();
            let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let (service, revision) = (label(LABEL_SERVICE), label(LABEL_REVISION));
            let replica: u32 = label(LABEL_REPLICA).parse().unwrap_or(u32::MAX);
            let id = c.id.clone().unwrap_or_default();
            let short = &id[..id.len().min(12)];
            let running = c.state == Some(ContainerSummaryStateEnum::RUNNING);
            let is_wanted = wanted
                .iter()
                .any(|w| w.service == service && w.revision == revision && replica < w.replicas);
            if running && is_wanted {
                done.push((
                    service,
                    "adopting",
                    format!(
                        "container {short} (revision {revision}, replica {replica}) still runs: adopting it"
                    ),
                ));
                continue;
            }
            remove(&d, &id).await;
            let why = if running {
                "its revision is no longer wanted"
            } else {
                "it had stopped"
            };
            done.push((
                service,
                "reaped",
                format!(
                    "removed container {short} (revision {revision}, replica {replica}) left by a previous daemon: {why}"
                ),
            ));
        }
        Ok(done)
    }

    async fn start_replica(&self, spec: &ReplicaSpec) -> Result<ContainerReplica, DockerError> {
        let d = self.engine().await?;
        let svc = &spec.service;
        let sink = LogSink {
            hub: spec.logs.clone(),
            service: svc.name.clone(),
            replica: spec.replica,
        };
        let name = container_name(&spec.project, &svc.name, &spec.revision, spec.replica);
        if let Some(r) = self.adopt(&d, &name, spec, &sink).await? {
            return Ok(r);
        }
        let progress = {
            let sink = sink.clone();
            move |line: String| sink.line(Stream::Orchestra, line)
        };
        let (image, exposed) = match &svc.workload {
            Workload::Image { image, .. } => {
                let ports = image::ensure(&d, image, &progress).await?;
                (image.clone(), ports)
            }
            Workload::Build { build, .. } => {
                let tag = image_tag(&spec.project, &svc.name, &spec.revision);
                {
                    let mut built = self.built.lock().await;
                    if !built.contains(&tag) {
                        image::build(&d, &spec.project, &tag, build, &progress).await?;
                        built.insert(tag.clone());
                    }
                }
                let ports = image::local(&d, &tag).await?.unwrap_or_default();
                (tag, ports)
            }
            Workload::Process { .. } | Workload::Static { .. } => {
                return Err(DockerError::NotAContainer(svc.name.clone()));
            }
        };
        let port = container_port(svc, &exposed);
        self.ensure_network(&d, &spec.project).await?;
        ensure_volumes(&d, spec).await?;
        // Secret files on the host's tmpfs, bind-mounted at /run/secrets: never in the config.
        let secrets = if svc.secret_files.is_empty() {
            None
        } else {
            let files =
                orchestra_runtime::secret_files::write(&spec.project, &spec.instance, svc, true)
                    .map_err(|e| DockerError::SecretFiles(svc.name.clone(), e.to_string()))?;
            Some((
                orchestra_runtime::secret_files::instance_dir(&spec.project, &spec.instance),
                files,
            ))
        };
        let body = ContainerPlan {
            project: &spec.project,
            svc,
            revision: &spec.revision,
            replica: spec.replica,
            image: &image,
            port,
            secrets,
        }
        .body();
        let created = d
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| {
                refine(
                    e,
                    &svc.resources,
                    &format!("cannot create container {name}"),
                )
            })?;
        // From here on a failure removes the container: nothing half-made stays.
        if let Err(e) = d.start_container(&created.id, None).await {
            remove(&d, &created.id).await;
            return Err(refine(
                e,
                &svc.resources,
                &format!("cannot start container {name}"),
            ));
        }
        let info = d.inspect_container(&created.id, None).await.ok();
        // A one-shot job may have exited already: a stopped container
        // publishes no port, and none is needed to collect its exit code.
        let exited = info
            .as_ref()
            .and_then(|i| i.state.as_ref())
            .and_then(|s| s.running)
            == Some(false);
        let host_port = match info.as_ref().and_then(|i| host_port_of(i, port)) {
            Some(p) => p,
            None if exited => 0,
            None => {
                remove(&d, &created.id).await;
                return Err(DockerError::PortTaken {
                    port: format!("for container port {port}"),
                    detail: "the Engine published no host port".into(),
                });
            }
        };
        Ok(ContainerReplica::attach(
            d, created.id, host_port, port, false, sink,
        ))
    }

    /// A container of this replica left running by a previous daemon.
    async fn adopt(
        &self,
        d: &Docker,
        name: &str,
        spec: &ReplicaSpec,
        sink: &LogSink,
    ) -> Result<Option<ContainerReplica>, DockerError> {
        let info = match d.inspect_container(name, None).await {
            Ok(i) => i,
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(DockerError::api(format!("cannot inspect {name}"), e)),
        };
        let labels = info
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let running = info.state.as_ref().and_then(|s| s.running) == Some(true);
        let port: Option<u16> = labels.get(LABEL_PORT).and_then(|p| p.parse().ok());
        let id = info.id.clone().unwrap_or_else(|| name.to_owned());
        if running
            && labels.get(LABEL_REVISION) == Some(&spec.revision)
            && let Some(port) = port
            && let Some(host) = host_port_of(&info, port)
        {
            sink.line(
                Stream::Orchestra,
                format!("adopted container {name} left running by a previous daemon (port {host})"),
            );
            return Ok(Some(ContainerReplica::attach(
                d.clone(),
                id,
                host,
                port,
                true,
                sink.clone(),
            )));
        }
        // Stopped, or not in a shape to adopt: start afresh.
        remove(d, &id).await;
        Ok(None)
    }

    async fn ensure_network(&self, d: &Docker, project: &str) -> Result<(), DockerError> {
        let name = network_name(project);
        let _one = self.network.lock().await;
        match d.inspect_network(&name, None).await {
            Ok(_) => return Ok(()),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => {
                return Err(DockerError::api(
                    format!("cannot inspect network {name}"),
                    e,
                ));
            }
        }
        match d
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(project_labels(project)),
                ..Default::default()
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(DockerError::api(format!("cannot create network {name}"), e)),
        }
    }
}

async fn ensure_volumes(d: &Docker, spec: &ReplicaSpec) -> Result<(), DockerError> {
    for v in &spec.service.volumes {
        if v.kind != orchestra_manifest::VolumeKind::Named {
            continue;
        }
        let Some(n) = &v.source else { continue };
        let name = volume_name(&spec.project, n);
        // Creating an existing volume returns it unchanged.
        d.create_volume(VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(project_labels(&spec.project)),
            ..Default::default()
        })
        .await
        .map_err(|e| DockerError::api(format!("cannot create volume {name}"), e))?;
    }
    Ok(())
}

async fn list_project(
    d: &Docker,
    project: &str,
) -> Result<Vec<bollard::models::ContainerSummary>, DockerError> {
    d.list_containers(Some(ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_PROJECT}={project}")],
        )])),
        ..Default::default()
    }))
    .await
    .map_err(|e| DockerError::api("cannot list containers", e))
}

/// Turn the Engine's refusals that have a known remedy into errors that say it.
fn refine(e: bollard::errors::Error, r: &Resources, action: &str) -> DockerError {
    let m = message_of(&e);
    if m.contains("could not select device driver") {
        let count = match r.gpus {
            Some(Resources::ALL_GPUS) => "all".to_owned(),
            Some(n) => n.to_string(),
            None => "some".to_owned(),
        };
        return DockerError::NoGpuRuntime { count, detail: m };
    }
    if m.contains("port is already allocated") || m.contains("address already in use") {
        // "Bind for 0.0.0.0:8080 failed: port is already allocated",
        // "listen tcp4 127.0.0.1:8080: bind: address already in use"
        let port = m
            .split_whitespace()
            .filter_map(|w| w.trim_end_matches(':').rsplit_once(':').map(|(_, p)| p))
            .rfind(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or("?")
            .to_owned();
        return DockerError::PortTaken { port, detail: m };
    }
    DockerError::api(action, e)
}

impl Driver for DockerDriver {
    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Replica>, StartError>> {
        Box::pin(async move {
            match self.start_replica(spec).await {
                Ok(r) => Ok(Box::new(r) as Box<dyn Replica>),
                Err(e) => {
                    // A failure in the middle of talking may mean the Engine went away.
                    let e = match (&e, &self.socket) {
                        (DockerError::Api { source, .. }, Ok(socket))
                            if status_of(source).is_none() =>
                        {
                            engine::preflight(socket).await.err().unwrap_or(e)
                        }
                        _ => e,
                    };
                    Err(StartError {
                        summary: format!("cannot start the container: {}", e.headline()),
                        cause: Some(SpawnError::Container(e.to_string())),
                    })
                }
            }
        })
    }

    fn release<'a>(&'a self, project: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // Only when the Engine was used: a platform of processes never touches it.
            let Some(d) = self.engine.get() else { return };
            if let Ok(list) = list_project(d, project).await {
                for c in list {
                    if let Some(id) = c.id {
                        remove(d, &id).await;
                    }
                }
            }
            let name = network_name(project);
            if let Err(e) = d.remove_network(&name).await
                && status_of(&e) != Some(404)
            {
                tracing::warn!("cannot remove network {name}: {}", message_of(&e));
            }
        })
    }

    fn remove_volumes<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let Ok(d) = self.engine().await else {
                return Vec::new();
            };
            let filters = HashMap::from([(
                "label".to_owned(),
                vec![format!("{LABEL_PROJECT}={project}")],
            )]);
            let list = d
                .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
                    filters: Some(filters),
                }))
                .await;
            let mut removed = Vec::new();
            for v in list.ok().and_then(|l| l.volumes).unwrap_or_default() {
                match d
                    .remove_volume(
                        &v.name,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                {
                    Ok(()) => removed.push(v.name),
                    Err(e) => tracing::warn!("cannot remove volume {}: {}", v.name, message_of(&e)),
                }
            }
            removed
        })
    }
}
