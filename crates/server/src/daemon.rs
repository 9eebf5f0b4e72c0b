//! The daemon's life: refuse to start twice, reap what a killed predecessor
//! left, start the runtime, record its events, serve the APIs, and on
//! shutdown stop everything in reverse dependency order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use orchestra_deploy::recovery::LastStop;
use orchestra_plan::StartPlan;
use orchestra_runtime::{Event, EventKind, Runtime, RuntimeConfig, procfs};
use orchestra_state::{StateError, StateStore};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::paths::Paths;

/// Errors that keep the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon serves this project.
    #[error(
        "orchestra is already running for this project (socket {socket}); run `orchestra down` first, or `orchestra ps` to see it"
    )]
    AlreadyRunning {
        /// The live socket.
        socket: PathBuf,
    },
    /// `.orchestra/` could not be created or written.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The control socket path is longer than a unix socket allows.
    #[error(
        "control socket path {0} is too long for a unix socket (max 107 bytes); move the project to a shorter path"
    )]
    SocketPathTooLong(PathBuf),
    /// The proxy could not start.
    #[error(
        "cannot start the proxy: {0}; choose another address with --proxy ADDR, `proxy.listen` or `proxy.tls.listen`"
    )]
    Proxy(#[from] orchestra_proxy::ProxyError),
    /// The proxy's certificates could not be loaded.
    #[error("cannot start the proxy's TLS listener: {0}; fix the files `proxy.tls` names")]
    ProxyTls(orchestra_proxy::TlsError),
    /// The admin listener could not bind.
    #[error(
        "cannot listen on admin address {addr}: {source}; choose another with --admin ADDR (or `--admin off`)"
    )]
    AdminBind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TCP control listener could not bind.
    #[error(
        "cannot listen on control address {addr}: {source}; choose another with --control ADDR (or `--control off`), or `control.listen`"
    )]
    ControlBind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The control token could not be read or written.
    #[error(transparent)]
    Token(#[from] crate::auth::TokenError),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Where the admin HTTP endpoints listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminListen {
    /// Not at all.
    Off,
    /// At this address (`127.0.0.1:0` picks a free port).
    Addr(String),
}

/// Default admin address.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:7070";

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The validated manifest.
    pub manifest: Arc<orchestra_manifest::Manifest>,
    /// The start plan for the selected services.
    pub plan: StartPlan,
    /// Profiles chosen (recorded in state).
    pub profiles: Vec<String>,
    /// Admin listener.
    pub admin: AdminListen,
    /// TCP control listener (bearer token required); `None`: the unix socket only.
    pub control: Option<String>,
    /// The shim command that wraps every process.
    pub shim: Vec<String>,
    /// Proxy listener; `None` when no selected service has a `route:`.
    pub proxy: Option<String>,
    /// `up --restore`: run what the last releases left live even after a clean `down`.
    pub restore: bool,
    /// Secret values by version, for definitions read back from state.db.
    pub secrets: Arc<dyn orchestra_deploy::stored::SecretValues>,
}

/// Default proxy address.
pub const DEFAULT_PROXY: &str = "127.0.0.1:8080";

/// The proxy's settings: `listen` (from `--proxy` or `proxy.listen`) and the manifest's `proxy:`.
/// The data plane runs on `workers` dedicated threads, one per core by default.
fn proxy_config(
    listen: &str,
    spec: &orchestra_manifest::ProxySpec,
) -> orchestra_proxy::ProxyConfig {
    let workers = spec.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        |w| usize::try_from(w).unwrap_or(1),
    );
    let tls = spec.tls.as_ref().map(|t| {
        let certs = t
            .certs
            .iter()
            .map(|c| orchestra_proxy::CertPaths {
                cert: c.cert.clone(),
                key: c.key.clone(),
            })
            .collect();
        let mut cfg = orchestra_proxy::TlsConfig::new(t.listen.clone(), certs);
        cfg.redirect = t.redirect;
        cfg
    });
    orchestra_proxy::ProxyConfig {
        listen: listen.to_owned(),
        workers: workers.max(1),
        tls,
        trusted_proxies: spec.trusted_proxies.clone(),
        max_connections: spec
            .max_connections
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        ..Default::default()
    }
}

/// What `GET /v1/daemon` says about the daemon itself.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonInfo {
    /// The daemon's PID.
    pub pid: u32,
    /// The run id in the state database.
    pub run_id: i64,
    /// The manifest.
    pub manifest: PathBuf,
    /// The `--env` overlay.
    pub environment: Option<String>,
    /// The admin address actually bound.
    pub admin: Option<String>,
    /// The TCP control address actually bound.
    pub control: Option<String>,
    /// The proxy address actually bound.
    pub proxy: Option<String>,
    /// The proxy's TLS address actually bound, when `proxy.tls` is set.
    pub proxy_tls: Option<String>,
    /// When it started (ms since the epoch).
    pub started_at_ms: i64,
    /// What it restored or left out at start, and why: (service, note).
    pub recovered: Vec<(String, String)>,
}

/// Shared by the API handlers.
#[derive(Clone)]
pub struct Shared {
    /// The runtime.
    pub runtime: Runtime,
    /// Deploys and the proxy, when any service is routed.
    pub deployer: Option<orchestra_deploy::Deployer>,
    /// The state database.
    pub state: Arc<StateStore>,
    /// Daemon facts.
    pub info: Arc<DaemonInfo>,
    /// Set to ask the daemon to shut down.
    pub shutdown: watch::Sender<bool>,
    /// Becomes true once everything is stopped.
    pub stopped: watch::Receiver<bool>,
    /// `down --volumes`: also remove the containers' named volumes.
    pub remove_volumes: Arc<std::sync::atomic::AtomicBool>,
    /// Volumes removed at shutdown (answered to `down --volumes`).
    pub removed_volumes: Arc<std::sync::Mutex<Vec<String>>>,
    /// Who may use the control API.
    pub auth: Arc<crate::control::ControlAuth>,
    /// Scheduled jobs.
    pub scheduler: crate::scheduler::Scheduler,
    /// The proxy, for `/metrics` (its per-revision counters).
    pub proxy: Option<orchestra_proxy::Proxy>,
    /// Container replicas' usage for `/metrics`, refreshed in the background.
    pub containers: crate::metrics::containers::ContainerStats,
}

/// A started daemon.
pub struct Daemon {
    shared: Shared,
    paths: Paths,
    admin_addr: Option<SocketAddr>,
    events: broadcast::Sender<Event>,
    first_rx: std::sync::Mutex<Option<broadcast::Receiver<Event>>>,
    flush: mpsc::UnboundedSender<oneshot::Sender<()>>,
    stopped_tx: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// Drained before any service stops, for the longest `drain_timeout` of a routed service.
    proxy: Option<(orchestra_proxy::Proxy, Duration)>,
    _recorder: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Prepare and start: nothing is started if any step fails.
    pub async fn start(opts: DaemonOptions) -> Result<Daemon, DaemonError> {
        let paths = Paths::for_project(&opts.manifest.dir);
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| DaemonError::Io { path, source }
        };
        paths.prepare().map_err(io(&paths.root))?;
        if paths.socket.as_os_str().len() > 107 {
            return Err(DaemonError::SocketPathTooLong(paths.socket.clone()));
        }
        if paths.socket.exists() {
            if tokio::net::UnixStream::connect(&paths.socket).await.is_ok() {
                return Err(DaemonError::AlreadyRunning {
                    socket: paths.socket.clone(),
                });
            }
            // Nobody answers: a killed daemon left it.
            std::fs::remove_file(&paths.socket).map_err(io(&paths.socket))?;
        }
        // Bind before anything starts, so a taken port changes nothing.
        let admin = match &opts.admin {
            AdminListen::Off => None,
            AdminListen::Addr(a) => {
                Some(
                    TcpListener::bind(a)
                        .await
                        .map_err(|source| DaemonError::AdminBind {
                            addr: a.clone(),
                            source,
                        })?,
                )
            }
        };
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        let control_tcp = match &opts.control {
            None => None,
            Some(a) => {
                Some(
                    TcpListener::bind(a)
                        .await
                        .map_err(|source| DaemonError::ControlBind {
                            addr: a.clone(),
                            source,
                        })?,
                )
            }
        };
        let control_addr = control_tcp.as_ref().and_then(|l| l.local_addr().ok());
        let proxy = match &opts.proxy {
            Some(listen) => Some(
                orchestra_proxy::Proxy::start(proxy_config(listen, &opts.manifest.proxy))
                    .await
                    .map_err(|e| match e {
                        orchestra_proxy::ProxyError::Tls(e) => DaemonError::ProxyTls(e),
                        other => DaemonError::Proxy(other),
                    })?,
            ),
            None => None,
        };
        let control = crate::control::bind_socket(&paths.socket).map_err(io(&paths.socket))?;

        let state = Arc::new(StateStore::open(&paths.db)?);
        // Made at the first start, kept across restarts: clients keep working.
        let (token, _) = crate::auth::ensure_token(&paths.token)?;
        let reaped = reap_leftovers(&state)?;
        let last = match state.last_run()? {
            None => LastStop::None,
            Some((_, _, true)) => LastStop::Clean,
            Some((_, _, false)) => LastStop::Crash,
        };
        let recovery = orchestra_deploy::recovery::recover(
            &state,
            &opts.manifest,
            last,
            opts.restore,
            opts.secrets.as_ref(),
        )?;
        let recovered = recovery.notes;
        let mut opts = opts;
        opts.manifest = Arc::new(recovery.manifest);
        let run_id = state.begin_run(
            &opts.manifest.file,
            opts.manifest.environment.as_deref(),
            &opts.profiles,
            std::process::id(),
        )?;
        for r in &reaped {
            state.record_event(Some(run_id), Some(&r.0), None, "reaped", &r.1)?;
        }
        for (svc, what) in &recovered {
            state.record_event(Some(run_id), Some(svc), None, "recovered", what)?;
        }
        for name in &opts.plan.order {
            if let Some(svc) = opts.manifest.service(name) {
                record_injections(&state, Some(run_id), svc)?;
            }
        }
        // Containers outlive a killed daemon: adopt those still wanted, remove the rest.
        let containers = orchestra_docker::DockerDriver::from_env();
        let wanted = orchestra_docker::wanted(&opts.manifest, &opts.plan.order);
        if !wanted.is_empty() {
            match containers.reconcile(&opts.manifest.name, &wanted).await {
                Ok(done) => {
                    for (svc, kind, what) in &done {
                        state.record_event(Some(run_id), Some(svc), None, kind, what)?;
                    }
                }
                // The replicas report it, with what to do.
                Err(e) => tracing::warn!("containers: {e}"),
            }
        }
        for name in &opts.plan.order {
            if let Some(svc) = opts.manifest.service(name) {
                let def = orchestra_deploy::stored::encode(svc);
                state.record_revision(name, &svc.revision(), &def)?;
            }
        }

        let (runtime, mut rx) = Runtime::start(RuntimeConfig {
            manifest: opts.manifest.clone(),
            plan: opts.plan.clone(),
            log_dir: paths.logs.clone(),
            shim: opts.shim.clone(),
            containers: Some(containers.clone()),
            static_dir: paths.statics.clone(),
        });
        // The first receiver exists before any event is forwarded, so whoever
        // takes it (the foreground progress display) misses nothing.
        let (events, first_rx) = broadcast::channel(4096);
        let (flush, mut flush_rx) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
        let recorder = {
            let state = state.clone();
            let events = events.clone();
            tokio::spawn(async move {
                let mut rows: HashMap<(String, u32), i64> = HashMap::new();
                loop {
                    tokio::select! {
                        // Events first: a flush is answered only once none are queued.
                        biased;
                        ev = rx.recv() => match ev {
                            Some(ev) => {
                                record(&state, run_id, &ev, &mut rows);
                                let _ = events.send(ev);
                            }
                            None => break,
                        },
                        Some(ack) = flush_rx.recv() => { let _ = ack.send(()); }
                    }
                }
            })
        };
        let (shutdown, _) = watch::channel(false);
        let (stopped_tx, stopped) = watch::channel(false);
        let info = Arc::new(DaemonInfo {
            pid: std::process::id(),
            run_id,
            manifest: opts.manifest.file.clone(),
            environment: opts.manifest.environment.clone(),
            admin: admin_addr.map(|a| a.to_string()),
            control: control_addr.map(|a| a.to_string()),
            proxy: proxy.as_ref().map(|p| p.local_addr().to_string()),
            proxy_tls: proxy
                .as_ref()
                .and_then(|p| p.tls_local_addr())
                .map(|a| a.to_string()),
            started_at_ms: orchestra_state::now_ms(),
            recovered,
        });
        let drain = opts
            .manifest
            .services
            .iter()
            .filter(|s| s.route.is_some())
            .map(|s| s.deploy.drain_timeout)
            .max()
            .unwrap_or(Duration::from_secs(30));
        let proxy_handle = proxy.clone().map(|p| (p, drain));
        let metrics_proxy = proxy.clone();
        let deployer = proxy.map(|p| {
            orchestra_deploy::Deployer::start(
                runtime.clone(),
                Arc::new(p),
                state.clone(),
                opts.secrets.clone(),
            )
        });
        if let Some(d) = &deployer {
            crate::backups::install(d, &runtime);
        }
        let scheduler = crate::scheduler::Scheduler::start(
            opts.plan
                .order
                .iter()
                .filter_map(|n| opts.manifest.service(n))
                .flat_map(crate::scheduler::ScheduledItem::for_service_all)
                .collect(),
            opts.manifest.clone(),
            runtime.clone(),
            crate::scheduler::Recorder {
                state: state.clone(),
                run_id,
            },
        );
        let shared = Shared {
            scheduler,
            deployer,
            runtime,
            state,
            info,
            shutdown,
            stopped,
            remove_volumes: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            removed_volumes: Arc::new(std::sync::Mutex::new(Vec::new())),
            auth: Arc::new(crate::control::ControlAuth::new(
                paths.token.clone(),
                token,
                nix::unistd::geteuid().as_raw(),
            )),
            proxy: metrics_proxy,
            // The Engine is asked only while some replica is a container.
            containers: crate::metrics::containers::ContainerStats::new(Some(containers.clone())),
        };
        let mut servers = vec![tokio::spawn(crate::control::serve_unix(
            control,
            shared.clone(),
        ))];
        if let Some(l) = control_tcp {
            servers.push(tokio::spawn(crate::control::serve_tcp(l, shared.clone())));
        }
        if let Some(l) = admin {
            servers.push(tokio::spawn(crate::admin::serve(l, shared.clone())));
        }
        Ok(Daemon {
            shared,
            paths,
            admin_addr,
            events,
            first_rx: std::sync::Mutex::new(Some(first_rx)),
            flush,
            stopped_tx,
            servers,
            proxy: proxy_handle,
            _recorder: recorder,
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// What the daemon restored or left out at start, and why.
    pub fn recovered(&self) -> &[(String, String)] {
        &self.shared.info.recovered
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The TCP control address actually bound.
    pub fn control_addr(&self) -> Option<&str> {
        self.shared.info.control.as_deref()
    }

    /// Runtime events as they happen; the first caller gets every event
    /// since the start.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        let first = match self.first_rx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        first.unwrap_or_else(|| self.events.subscribe())
    }

    /// The project's runtime paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// A handle that asks the daemon to shut down.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shared.shutdown.clone()
    }

    /// Run until `external` resolves or the API asks to shut down; then stop
    /// every service in reverse dependency order and clean up.
    pub async fn run_until<F: std::future::Future<Output = ()>>(
        self,
        external: F,
    ) -> Result<(), DaemonError> {
        let mut asked = self.shared.shutdown.subscribe();
        tokio::select! {
            _ = external => {}
            _ = asked.wait_for(|v| *v) => {}
        }
        // Requests in flight finish on services that still run; new ones are refused.
        if let Some((proxy, grace)) = &self.proxy {
            proxy.shutdown(*grace).await;
        }
        // Runs going are stopped and recorded before the services they may use.
        self.shared.scheduler.shutdown().await;
        self.shared.runtime.stop_all().await;
        if self
            .shared
            .remove_volumes
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            let removed = self.shared.runtime.remove_volumes().await;
            if let Ok(mut v) = self.shared.removed_volumes.lock() {
                *v = removed;
            }
        }
        let _ = self.stopped_tx.send(true);
        // The control API shuts down gracefully on `stopped`: the `down`
        // request that asked for this gets its answer. Bounded, in case a
        // client keeps a connection open.
        for s in self.servers {
            let abort = s.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), s)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let _ = std::fs::remove_file(&self.paths.socket);
        // Write the last events (`stopped`) before the run is closed.
        let (ack, done) = oneshot::channel();
        if self.flush.send(ack).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
        }
        self.shared.state.end_run(self.shared.info.run_id)?;
        Ok(())
    }
}

fn record(state: &StateStore, run_id: i64, ev: &Event, rows: &mut HashMap<(String, u32), i64>) {
    let key = (ev.instance.clone(), ev.replica.unwrap_or(0));
    if let (EventKind::Started | EventKind::Restarted, Some(p)) = (ev.kind, &ev.process)
        && let Ok(id) = state.record_process(
            run_id,
            &ev.service,
            key.1,
            &p.revision,
            p.pid,
            p.pgid,
            p.start_ticks,
        )
    {
        rows.insert(key.clone(), id);
    }
    if ev.kind == EventKind::Exited
        && let Some(id) = rows.remove(&key)
    {
        let _ = state.end_process(id, &ev.reason);
    }
    if let Err(e) = state.record_event_at(
        ev.at_ms,
        Some(run_id),
        Some(&ev.service),
        ev.replica,
        ev.kind.as_str(),
        &ev.reason,
    ) {
        tracing::warn!("cannot record event: {e}");
    }
}

/// The access log of secrets given to a service: which, which version; never the value.
pub fn record_injections(
    state: &StateStore,
    run_id: Option<i64>,
    svc: &orchestra_manifest::Service,
) -> Result<(), StateError> {
    let who = orchestra_secrets::Who::current();
    for (name, version) in &svc.secret_versions {
        state.record_event(
            run_id,
            Some(&svc.name),
            None,
            "secret-inject",
            &format!(
                "{name} version {version} into {} (revision {}) by {} (uid {}), daemon pid {}",
                svc.name,
                svc.revision(),
                who.user,
                who.uid,
                std::process::id()
            ),
        )?;
    }
    Ok(())
}

/// Kill the process groups a previous daemon recorded as running and never
/// saw end (it was killed). Returns (service, what was done) per record.
pub fn reap_leftovers(state: &StateStore) -> Result<Vec<(String, String)>, StateError> {
    let mut done = Vec::new();
    for p in state.live_processes()? {
        // The leader's start time tells our process from a reused PID; members
        // left in the group keep the group id reserved, so they are ours.
        let leader_is_ours = procfs::stat(p.pid)
            .is_some_and(|s| s.start_ticks == p.proc_start_ticks && s.state != 'Z');
        let members = procfs::group_members(p.pgid);
        let what = if leader_is_ours || !members.is_empty() {
            let _ = killpg(Pid::from_raw(p.pgid), Signal::SIGKILL);
            format!(
                "killed leftover process group {} (replica {})",
                p.pgid, p.replica
            )
        } else {
            format!("process group {} was already gone", p.pgid)
        };
        state.end_process(p.id, "reaped after a daemon restart")?;
        done.push((p.service, what));
    }
    Ok(done)
}
