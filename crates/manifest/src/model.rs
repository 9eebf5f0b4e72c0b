//! The validated manifest: domain types that every later stage reads.
//!
//! Everything here has already been interpolated, overlaid and checked; a value
//! of these types is known to be well-formed. `${PORT}` is the one placeholder
//! left in `command` and `env` values: the runtime fills it per replica.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A position in a manifest file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// A whole platform, as one manifest describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Project name (`name:`), defaults to the manifest directory's name.
    pub name: String,
    /// The manifest file this was loaded from.
    pub file: PathBuf,
    /// The directory relative paths are resolved against (the manifest's directory).
    pub dir: PathBuf,
    /// Services in the order they are declared.
    pub services: Vec<Service>,
    /// Top-level `profiles:`: profile name -> services it runs.
    pub profiles: BTreeMap<String, Vec<String>>,
    /// Aggregate health policy.
    pub health: HealthPolicy,
    /// Top-level `volumes:`: the named volumes services may mount, in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Admin HTTP listener (`admin: { listen: "127.0.0.1:7070" }`); `None` keeps the default.
    pub admin_listen: Option<String>,
    /// TCP control API listener (`control: { listen: "127.0.0.1:7071" }`, bearer token
    /// required); `None`: the unix socket only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_listen: Option<String>,
    /// The `--env` overlay that was applied, if any.
    pub environment: Option<String>,
    /// Top-level `proxy:`: listener, data-plane threads, limits, TLS.
    #[serde(default)]
    pub proxy: ProxySpec,
    /// Top-level `traces:`: OTLP/HTTP span export; `None`: only `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// in the daemon's environment turns traces on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<TracesSpec>,
    /// Where each top-level field outside `services:` is written, by path (`proxy.tls`,
    /// `health.threshold`), for reports that point back at the manifest.
    #[serde(skip)]
    pub field_locations: BTreeMap<String, Location>,
}

/// Top-level `traces:` (`traces: { endpoint: "http://127.0.0.1:4318", sample: 1.0 }`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TracesSpec {
    /// OTLP/HTTP base URL (`http://host:port`); spans are posted to `/v1/traces`.
    pub endpoint: String,
    /// Share of new traces recorded, 0..=1 (default 1); an incoming sampled `traceparent` is
    /// always followed.
    pub sample: f64,
}

/// Top-level `proxy:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProxySpec {
    /// Plain-HTTP listener (`listen: "127.0.0.1:8080"`); `None` keeps the default.
    pub listen: Option<String>,
    /// Dedicated data-plane threads (>= 1); `None`: one per CPU core.
    pub workers: Option<u32>,
    /// Most client connections open at once (>= 1); `None`: no limit.
    pub max_connections: Option<u32>,
    /// Peers whose `X-Forwarded-*` headers are believed, as networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A TLS listener beside the plain one.
    pub tls: Option<TlsSpec>,
}

/// `proxy.tls`: TLS termination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TlsSpec {
    /// TLS listener (default `127.0.0.1:8443`).
    pub listen: String,
    /// Certificates, resolved against the manifest directory: `cert`/`key` first (the default
    /// when SNI matches no other), then each of `certs`.
    pub certs: Vec<CertPair>,
    /// Plain-HTTP requests get a 308 to the same URL over https.
    pub redirect: bool,
}

/// A certificate chain and its private key (PEM files).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertPair {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// Default TLS listener.
pub const DEFAULT_TLS_LISTEN: &str = "127.0.0.1:8443";

impl Manifest {
    /// The service with this name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// When the platform counts as healthy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct HealthPolicy {
    /// Fraction of selected services (0.0..=1.0) that must be healthy. Default 1.0.
    pub threshold: f64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self { threshold: 1.0 }
    }
}

/// One service: a process (`command`), a container (`image` / `build`), or a
/// directory of files the proxy serves (`route.static`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    /// Service name (the key under `services:`).
    pub name: String,
    /// Where the service's key is in the manifest.
    pub location: Location,
    /// What runs.
    pub workload: Workload,
    /// The service's stable port; distinct per service. A process without a `route:`
    /// listens on it ([`Service::pinned_port`]); a container's is inside the container.
    pub port: Option<u16>,
    /// Environment: `env_file` contents overlaid by `env`. Values may contain `${PORT}`.
    pub env: BTreeMap<String, String>,
    /// The `env_file` paths, resolved against the manifest directory.
    pub env_files: Vec<PathBuf>,
    /// Working directory, resolved against the manifest directory.
    pub working_dir: Option<PathBuf>,
    /// What must hold before this service starts.
    pub depends_on: Vec<Dependency>,
    /// Startup + liveness probe.
    pub healthcheck: Option<Probe>,
    /// Readiness probe (gates dependents waiting on `healthy`; later, routing).
    pub readiness: Option<Probe>,
    /// What to do when the service exits.
    pub restart: RestartPolicy,
    /// Number of replicas (>= 1; one-shot jobs are usually 1).
    pub replicas: u32,
    /// Signal sent first on stop (e.g. "SIGTERM"), validated to be a real signal name.
    pub stop_signal: String,
    /// Time between `stop_signal` and SIGKILL.
    pub stop_grace_period: Duration,
    /// Resource limits (parsed now; enforced for containers later).
    pub resources: Resources,
    /// Service-level profiles (Compose style): the service runs only when one is active.
    pub profiles: Vec<String>,
    /// Container ports published on the host (containers only; processes use `port`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// Mounts (containers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Names of secrets from Orchestra's secret store given to the service (references
    /// only; the values never appear in the manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Where each entry of `secrets` is written, in the same order (for errors).
    #[serde(skip)]
    pub secret_locations: Vec<Location>,
    /// How each secret written in the long form is given, by name; a name
    /// absent here is the latest version as an environment variable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_options: BTreeMap<String, SecretOptions>,
    /// The store version of each secret whose value was injected; set when
    /// the values are injected, so that a release records, and a rollback
    /// restores, exactly those versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_versions: BTreeMap<String, u32>,
    /// Values of the secrets given as files (`as: file`), by name; set when
    /// injected. The runtime writes them to tmpfs and sets `NAME_FILE`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_files: BTreeMap<String, String>,
    /// The user (`name`, `uid` or `uid:gid`) the service runs as: inside the image for a
    /// container, a user of this machine for a process (the daemon must run as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `schedule:`: a job the scheduler runs at each tick; `up` does not start it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::JobSchedule>,
    /// Labels (metadata; set on the service's containers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How the proxy routes to it, if it does.
    pub route: Option<RouteSpec>,
    /// How a new revision of it is deployed.
    pub deploy: DeploySpec,
    /// How its data is backed up and restored (`backup:`); not part of its revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<crate::backup::BackupSpec>,
    /// Where each field written under the service is, by its path below the service
    /// (`port`, `healthcheck.start_period`, `secrets[0]`), for reports that point back at
    /// the manifest (`orchestra export`). Not part of the definition.
    #[serde(skip)]
    pub field_locations: BTreeMap<String, Location>,
    /// The `env` names whose values came from an `env_file` (and not from `env`).
    #[serde(skip)]
    pub env_file_vars: BTreeSet<String>,
    /// The `env_files` written with `required: false` (a missing one is fine).
    #[serde(skip)]
    pub optional_env_files: BTreeSet<PathBuf>,
}

impl Service {
    /// Whether the secret `name` is given as a file: as `as:` says, else a file for a
    /// container (whose environment `docker inspect` shows) and a variable for a process.
    #[must_use]
    pub fn secret_as_file(&self, name: &str) -> bool {
        match self.secret_options.get(name).and_then(|o| o.delivery) {
            Some(d) => d == SecretDelivery::File,
            None => matches!(
                self.workload,
                Workload::Image { .. } | Workload::Build { .. }
            ),
        }
    }

    /// The port this service's one replica listens on, when it is fixed: a single-replica
    /// process without a `route:` that says `port:` (a data service others reach at a
    /// known address). Otherwise each replica gets a free port, and the proxy hides it.
    #[must_use]
    pub fn pinned_port(&self) -> Option<u16> {
        match (&self.workload, &self.route, self.replicas) {
            (Workload::Process { .. }, None, 1) => self.port,
            _ => None,
        }
    }

    /// Where the field at `path` (below the service) is written: the nearest written
    /// ancestor of it, else the service's key.
    #[must_use]
    pub fn location_of(&self, path: &str) -> Location {
        let mut p = path;
        loop {
            if let Some(l) = self.field_locations.get(p) {
                return *l;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.location,
            }
        }
    }
}

/// One published port: `[[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTOCOL]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    /// Host address to bind (an IP literal); `None` binds all addresses.
    pub host_ip: Option<String>,
    /// Host port; `None` lets the engine pick one.
    pub host_port: Option<u16>,
    /// The port inside the container.
    pub container_port: u16,
    /// `tcp` (default), `udp` or `sctp`.
    pub protocol: String,
}

/// One mount of a container service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Volume {
    /// What is mounted.
    pub kind: VolumeKind,
    /// [`VolumeKind::Named`]: the volume's name, declared under top-level `volumes:`
    /// (`None` for an anonymous volume, written as just the container path);
    /// [`VolumeKind::Bind`]: the absolute host path, resolved against the manifest
    /// directory; [`VolumeKind::Tmpfs`]: `None`.
    pub source: Option<String>,
    /// Absolute path inside the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The kind of a [`Volume`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum VolumeKind {
    /// A named (or anonymous) volume managed by the container engine.
    Named,
    /// A host directory or file.
    Bind,
    /// A memory-backed filesystem.
    Tmpfs,
}

/// What a service runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    /// A local process: argv, `${PORT}` still unexpanded.
    Process {
        /// argv[0] and its arguments.
        command: Vec<String>,
    },
    /// A container from an image (run by a later driver).
    Image {
        /// Image reference.
        image: String,
        /// Overrides the image's CMD.
        command: Option<Vec<String>>,
        /// Overrides the image's ENTRYPOINT.
        entrypoint: Option<Vec<String>>,
    },
    /// A container built from a Dockerfile (run by a later driver).
    Build {
        /// Build parameters.
        build: Build,
        /// Overrides the image's CMD.
        command: Option<Vec<String>>,
        /// Overrides the image's ENTRYPOINT.
        entrypoint: Option<Vec<String>>,
    },
    /// Files the proxy serves from a snapshot of `dir` (`route.static`); nothing runs.
    Static {
        /// The directory, resolved against the manifest directory.
        dir: PathBuf,
        /// [`crate::site::Listing::digest`] of its content when the manifest was read:
        /// part of the revision, so a rebuilt directory is a new revision.
        content: String,
    },
}

/// `build:` parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Build {
    /// Build context, resolved against the manifest directory.
    pub context: PathBuf,
    /// Dockerfile path relative to the context (default `Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// Target stage.
    pub target: Option<String>,
}

/// One `depends_on` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dependency {
    /// The service depended on.
    pub service: String,
    /// What must hold.
    pub condition: Condition,
    /// Where the entry is in the manifest.
    pub location: Location,
}

/// A `depends_on` condition.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's process has been started.
    Started,
    /// The dependency passed its healthcheck (and readiness, when it has one).
    Healthy,
    /// The dependency exited with status 0 (one-shot jobs).
    Completed,
}

/// A probe: what to check and how often.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    /// What to check.
    pub check: Check,
    /// Time between probes (default 1s... see loader).
    pub interval: Duration,
    /// Time one probe may take.
    pub timeout: Duration,
    /// Consecutive failures before the service counts as unhealthy.
    pub retries: u32,
    /// Grace time after start during which failures do not count against `retries`;
    /// the service must pass within it.
    pub start_period: Duration,
    /// What `retries` consecutive failures do (`healthcheck.on_failure`). Left out of
    /// the serialized form when it is the default, so revisions stay as they were.
    #[serde(default, skip_serializing_if = "ProbeFailure::is_restart")]
    pub on_failure: ProbeFailure,
}

/// `healthcheck.on_failure`: what a failing healthcheck does to the replica.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ProbeFailure {
    /// Stop the replica and start it again (after the restart policy's backoff).
    #[default]
    Restart,
    /// Mark it unhealthy and keep it running (as Compose does); dependents waiting on
    /// `healthy` keep waiting, and `up` waits for it only when such a dependent exists.
    None,
}

impl ProbeFailure {
    fn is_restart(&self) -> bool {
        *self == ProbeFailure::Restart
    }
}

/// What a probe checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// HTTP GET of `path`; 2xx and 3xx are healthy. Port defaults to the replica's PORT.
    Http {
        /// Request path, starting with `/`.
        path: String,
        /// Explicit port, else the replica's PORT.
        port: Option<u16>,
    },
    /// TCP connect. Port defaults to the replica's PORT.
    Tcp {
        /// Explicit port, else the replica's PORT.
        port: Option<u16>,
    },
    /// Run a command; exit 0 is healthy. `${PORT}` may appear in it.
    Exec {
        /// argv.
        command: Vec<String>,
    },
}

/// `restart:` policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestartPolicy {
    /// When to restart.
    pub policy: Restart,
    /// First backoff delay (default 500ms).
    pub backoff_initial: Duration,
    /// Backoff cap (default 30s).
    pub backoff_max: Duration,
    /// Restarts allowed before the service is given up as crash-looping; `None` = unlimited.
    pub max_restarts: Option<u32>,
}

/// When a service is restarted.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Never.
    No,
    /// When it exits non-zero or is killed by a signal, or fails liveness.
    OnFailure,
    /// Whenever it exits.
    Always,
}

/// `resources:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    /// CPU limit in cores.
    pub cpus: Option<f64>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Number of GPUs requested; `gpus: all` is [`Resources::ALL_GPUS`].
    pub gpus: Option<u32>,
    /// Process-count limit.
    pub pids: Option<u32>,
}

impl Resources {
    /// The `gpus` value that `gpus: all` stands for: every GPU of the machine (Docker's
    /// device-request count -1).
    pub const ALL_GPUS: u32 = u32::MAX;
}

/// `route:`: where the proxy sends requests for this service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouteSpec {
    /// Path prefix (`/` matches everything).
    pub path: String,
    /// Host header to match, if any.
    pub host: Option<String>,
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// Keep one client on one revision during a canary.
    pub sticky: Option<Sticky>,
    /// How replicas share requests.
    pub balance: Balance,
    /// A static route (`static:`) answers a path with no file with its `index.html`
    /// (single-page applications route in the browser).
    // Left out when false so that the revisions of existing routes stay what they were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spa: bool,
}

/// What identifies a client for sticky routing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Sticky {
    /// A cookie (set by the proxy when absent).
    Cookie(String),
    /// A request header.
    Header(String),
}

/// Load balancing across replicas.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// In turn.
    RoundRobin,
    /// To the replica with the fewest requests in flight.
    LeastOutstanding,
}

/// `deploy:`: how a new revision ships.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeploySpec {
    /// canary, blue-green or recreate.
    pub strategy: Strategy,
    /// Canary weights in percent, increasing; 100 is implied at the end.
    pub steps: Vec<u32>,
    /// Time at each canary step.
    pub step_interval: Duration,
    /// What the new revision must meet on live traffic.
    pub verify: VerifySpec,
    /// How long the old revision keeps running after the switch, for instant rollback.
    pub keep_warm: Duration,
    /// How long in-flight requests and streams of the old revision may take to finish.
    pub drain_timeout: Duration,
    /// Commands around the deploy.
    pub hooks: Hooks,
    /// Services whose data is backed up before `hooks.pre` run (`backup_before:`): the
    /// release's restore point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_before: Vec<String>,
}

/// Deploy strategies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Shift traffic in steps, verifying each.
    Canary,
    /// Start beside, switch all at once, keep the old one warm.
    BlueGreen,
    /// Stop the old, start the new: downtime, for singletons such as databases.
    Recreate,
}

/// The long form of a `secrets:` entry: `{ name, as: env | file, target, version }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretOptions {
    /// An environment variable or a file; unset: an environment variable for a
    /// process, a file for a container (whose environment `docker inspect` shows).
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<SecretDelivery>,
    /// For `as: file`: the file's name (its last path component is used for a
    /// process, whose files live in a private tmpfs directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// This version instead of the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// How a secret reaches a service.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SecretDelivery {
    /// The environment variable NAME.
    Env,
    /// A file on tmpfs whose path is in `NAME_FILE` (for a container, in `/run/secrets`).
    File,
}

/// `deploy.verify`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerifySpec {
    /// Highest acceptable failed fraction (0..=1).
    pub max_error_rate: f64,
    /// Highest acceptable p99 latency.
    pub max_p99: Duration,
    /// Fewer requests than this in a window decide nothing.
    pub min_requests: u64,
    /// What a canary step (or the watch after a switch) does when `deadline` passes with
    /// fewer than `min_requests` requests. Default `fail`.
    // Defaults are left out of the serialization so that revisions (a hash of it) of
    // manifests that do not set these fields stay what they were; `default` reads
    // definitions stored before the fields existed.
    #[serde(default, skip_serializing_if = "OnInconclusive::is_fail")]
    pub on_inconclusive: OnInconclusive,
    /// How long a canary step (or the watch after a switch) may wait for `min_requests`
    /// before `on_inconclusive` decides; greater than zero. Default 60s.
    #[serde(
        default = "VerifySpec::default_deadline",
        skip_serializing_if = "VerifySpec::is_default_deadline"
    )]
    pub deadline: Duration,
    /// Probe traffic sent to the canary itself while live traffic is below `min_requests`,
    /// so that a quiet service can still be verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Synthetic>,
}

/// `deploy.verify.synthetic: { path, rate }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Synthetic {
    /// The path requested (GET), e.g. `/` or `/v1/models`.
    pub path: String,
    /// Requests per second, 1..=1000.
    pub rate: u32,
}

impl VerifySpec {
    /// The `deadline` when none is given.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

    fn default_deadline() -> Duration {
        Self::DEFAULT_DEADLINE
    }

    fn is_default_deadline(d: &Duration) -> bool {
        *d == Self::DEFAULT_DEADLINE
    }
}

/// The defaults `deploy.verify` fields take when not written (see [`DeploySpec::default_for`]).
impl Default for VerifySpec {
    fn default() -> Self {
        Self {
            max_error_rate: 0.01,
            max_p99: Duration::from_millis(500),
            min_requests: 20,
            on_inconclusive: OnInconclusive::Fail,
            deadline: Self::DEFAULT_DEADLINE,
            synthetic: None,
        }
    }
}

/// `deploy.verify.on_inconclusive`: the decision when too few requests arrived in time.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OnInconclusive {
    /// Treat it as a failed verification: roll back.
    #[default]
    Fail,
    /// Treat it as a passed verification: go on.
    Pass,
}

impl OnInconclusive {
    fn is_fail(&self) -> bool {
        *self == OnInconclusive::Fail
    }
}

/// `deploy.hooks`: argv lists; `${URL}` is the new revision's own address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hooks {
    /// Before any traffic moves (migrations); failure aborts with nothing changed.
    pub pre: Vec<Vec<String>>,
    /// Against the new revision before it gets traffic.
    pub smoke: Vec<Vec<String>>,
    /// After the switch succeeded.
    pub post: Vec<Vec<String>>,
}

impl DeploySpec {
    /// Defaults: blue-green when routed, recreate otherwise.
    pub fn default_for(routed: bool) -> Self {
        Self {
            strategy: if routed {
                Strategy::BlueGreen
            } else {
                Strategy::Recreate
            },
            steps: vec![10, 50, 100],
            step_interval: Duration::from_secs(10),
            verify: VerifySpec::default(),
            keep_warm: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(30),
            hooks: Hooks::default(),
            backup_before: Vec::new(),
        }
    }
}
