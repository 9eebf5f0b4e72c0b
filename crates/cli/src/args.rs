//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Orchestra runs a multi-service platform from one manifest: processes
/// started in dependency order gated on health, probed, restarted with
/// backoff, with an aggregate health — and audits the repository it lives in.
#[derive(Debug, Parser)]
#[command(name = "orchestra", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Start with `orchestra validate`, then `orchestra up -d`, `orchestra ps`, `orchestra logs -f`, `orchestra down`.\nThe manifest is orchestra.yaml in the current directory or the nearest parent."
)]
pub struct Cli {
    /// The manifest file (default: orchestra.yaml here or in the nearest parent directory).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Talk to the daemon's TCP control API at URL (http://HOST:PORT) instead of this
    /// project's socket; the bearer token comes from ORCHESTRA_TOKEN, else .orchestra/control.token.
    #[arg(long, env = "ORCHESTRA_CONTROL", value_name = "URL")]
    pub control: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the manifest and report every error with file:line:col and the field path.
    Validate(ValidateArgs),
    /// Check that this machine has what the manifest needs (Docker, GPUs, ports, secrets, tools).
    #[command(after_long_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Start the platform: services in dependency order, each gated on its dependencies' health.
    Up(UpArgs),
    /// List services with their state, PIDs, ports and restarts; another revision running
    /// beside the live one (a canary, a warm previous one) follows it, with its `role`.
    Ps(JsonArg),
    /// The platform's aggregate health and each service's state (exit 1 below the threshold).
    Health(JsonArg),
    /// Show service logs.
    Logs(LogsArgs),
    /// Start a stopped service.
    Start(ServiceArg),
    /// Stop one service (its dependents keep running).
    Stop(ServiceArg),
    /// Restart one service.
    Restart(ServiceArg),
    /// The event log: started, healthy, unhealthy, restarted, crash-looping, stopped.
    Events(EventsArgs),
    /// Stop every service in reverse dependency order and the daemon.
    Down(DownArgs),
    /// Scheduled jobs: schedule, next run, last runs; `jobs run NAME` starts one now.
    #[command(after_long_help = crate::jobs::HELP)]
    Jobs(crate::jobs::JobsArgs),
    /// Ship the services whose definition changed (or the ones named) as new revisions.
    Deploy(DeployArgs),
    /// Skip a canary's remaining steps: all traffic to the new revision now.
    Promote(ServiceArg),
    /// Stop a deploy in progress: the canary gets no more traffic and is stopped.
    Abort(ServiceArg),
    /// Go back to the previous revision (instant when it is still warm).
    Rollback(RollbackArgs),
    /// Releases and revisions with status, timings and reasons.
    History(HistoryArgs),
    /// Hold a service's requests at the proxy (up to a bound) instead of failing them.
    Pause(ServiceArg),
    /// Release held requests.
    Resume(ServiceArg),
    /// Answer a service's requests with a maintenance page (503), or stop doing so.
    Maintenance(MaintenanceArgs),
    /// Turn a docker-compose.yml into an orchestra.yaml, reporting everything not carried over.
    Import(ImportArgs),
    /// Render the manifest for Kubernetes, Compose or Cloud Run, reporting what maps and what not.
    Export(crate::export::ExportArgs),
    /// Secrets, encrypted with age beside the manifest: set, get, list, import, recipients.
    Secrets(crate::secrets::SecretsArgs),
    /// Backups of data services: run, list, restore, verify.
    Backup(crate::backup::BackupArgs),
    /// Audit the repository's container, CI and infrastructure files.
    Audit(orchestra_audit::cli::AuditArgs),
    /// Safe, automatic fixes to the repository.
    #[command(subcommand)]
    Fix(FixCommand),
    /// The control API's access: print or rotate the bearer token of its TCP listener.
    #[command(subcommand, after_long_help = crate::control::HELP)]
    Control(ControlCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_long_help = crate::manual::COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per subcommand with --out.
    #[command(after_long_help = crate::manual::MAN_HELP)]
    Man(ManArgs),
    /// Internal: wraps each service process so it dies with the daemon.
    #[command(name = "__shim", hide = true)]
    Shim(ShimArgs),
    /// Internal: the detached daemon that `up -d` starts.
    #[command(name = "__daemon", hide = true)]
    Daemon(UpArgs),
}

/// `orchestra fix ...`
#[derive(Debug, Subcommand)]
pub enum FixCommand {
    /// Rename a stale identifier (cloud project id, bucket...) everywhere in the repository.
    RenameId(orchestra_audit::cli::RenameIdArgs),
}

/// `orchestra control ...`
#[derive(Debug, Subcommand)]
pub enum ControlCommand {
    /// Print the bearer token (created if there is none yet); it stays valid until rotated.
    Token,
    /// Replace the bearer token: the old one is refused from now on (by a running daemon too).
    RotateToken(RotateTokenArgs),
}

/// `orchestra control rotate-token`
#[derive(Debug, Args)]
pub struct RotateTokenArgs {
    /// Also print the new token on stdout.
    #[arg(long)]
    pub print: bool,
}

/// `orchestra completions SHELL`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `orchestra man`
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write orchestra.1 and one page per subcommand (orchestra-up.1, ...) into DIR instead.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `--json`
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `orchestra validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest file (same as the top-level -f).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Apply the overlay `env.<ENV>` before validating.
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
    /// Print the diagnostics (or the resolved manifest) as JSON.
    #[arg(long)]
    pub json: bool,
}

const DOCTOR_HELP: &str = "\
Checks only what this manifest needs for `up` with the same --env and --profile,
offline (nothing goes over the network) and in about a second; changes nothing
unless --fix.

  manifest      the manifest loads; if not, its errors print as `validate` prints them
                (exit 2)
  docker        the Docker Engine at DOCKER_HOST answers within 1 s; its API version
                skipped: no selected service has `image` or `build`
  gpu           `nvidia-smi -L` lists enough GPUs; for containers, the Engine's
                `nvidia` runtime or the NVIDIA Container Toolkit on PATH
                skipped: no selected service sets `resources.gpus`
  cgroups       the cpu, memory and pids controllers the limits need (as the Engine
                reports them, else /sys/fs/cgroup)
                skipped: no selected container sets `resources.cpus`, `memory` or
                `pids` (a process service's limits are not enforced)
  port.FIELD    each address `up` binds is free: admin.listen (default 127.0.0.1:7070),
                control.listen, proxy.listen (default 127.0.0.1:8080), proxy.tls.listen, and each fixed
                host port in services.NAME.ports; one held by this project's running
                daemon passes. A service's `port:` is not checked: no host socket binds
                it (each replica gets a free PORT)
                port.proxy.listen skipped: no selected service has a `route:`
  disk          free space where .orchestra/ lives (warns under 1 GiB)
  open-files    the soft open-file limit (warns under 4096, or under what
                proxy.max_connections needs)
  state.dir     .orchestra/ is a directory only its owner can read (0700), writable
  state.db      .orchestra/state.db opens read-only, with a schema this orchestra
                knows; mode 0600
  secrets       the age identity loads, is a recipient of the store, and decrypts every
                secret the selected services reference (values are never printed)
                skipped: no selected service lists `secrets:`
  tool.NAME     versions pinned in .tool-versions, mise.toml, rust-toolchain.toml,
                pyproject.toml (requires-python), .python-version, .nvmrc, and
                poetry==X in Dockerfiles and CI, against `NAME --version` on PATH
                (2 s each, all at once): a mismatch or a missing tool warns, and fails
                when a selected service's command, hook or exec probe runs the tool
                skipped (as `tools`): nothing is pinned

Each check passes (✓), warns (!), fails (✗) or is skipped (-) with the reason;
every warning and failure has a `fix:` line.
Exit status: 0; 1 when a check fails (with --strict, also when one warns); 2 when
there is no manifest, it has errors, or the arguments are wrong.

--fix does only safe, local things, and says what it did: it creates .orchestra/
(0700), and makes .orchestra/ 0700 and state.db and the age key 0600 when others
could read them.

--json prints {\"schema\": 1, \"checks\": [{\"id\", \"status\", \"summary\", \"detail\",
\"fix\"}], \"counts\": {\"pass\", \"warn\", \"fail\", \"skip\"}, \"fixed\": [...], ...}.

Examples:
  orchestra doctor
  orchestra doctor --env prod --profile online --strict
  orchestra doctor --json | jq '.checks[] | select(.status == \"fail\")'";

/// `orchestra doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The manifest file (same as the top-level -f).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Check for `up --env ENV` (the overlay, and the secrets of that environment).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
    /// Check for `up --profile PROFILE` (repeatable).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Print the checks as JSON (a versioned document, `schema: 1`).
    #[arg(long)]
    pub json: bool,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Make the safe fixes: create .orchestra/ (0700); chmod .orchestra/ 700, state.db and the age key 600.
    #[arg(long)]
    pub fix: bool,
}

/// `orchestra up`
#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    /// The manifest file (same as the top-level -f).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Apply the overlay `env.<ENV>` from the manifest (e.g. `--env prod`).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
    /// Run the services of this profile (repeatable).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Detach: return once every service is healthy (exit 0), or print the
    /// failure report, stop what was started and exit 1.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Admin HTTP address for /health and /ready (`off` to disable).
    #[arg(long, value_name = "ADDR|off")]
    pub admin: Option<String>,
    /// Also serve the control API on TCP at ADDR, bearer token required (`off`: the
    /// socket only, whatever `control.listen` says) [default: `control.listen`, else off].
    #[arg(long, value_name = "ADDR|off")]
    pub control: Option<String>,
    /// Proxy address for services with a `route:` (`off` to disable) [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR|off")]
    pub proxy: Option<String>,
    /// Run what the last releases left live, even where the manifest now
    /// says otherwise (after a crash that is what happens anyway; after a
    /// clean `down` the manifest wins unless this is given).
    #[arg(long)]
    pub restore: bool,
    /// With -d: how long to wait for everything to become healthy.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
    /// Only these services (and what they depend on).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `orchestra logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only this service.
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub tail: usize,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// One JSON object per line: time, time_ms, service, replica, stream, line.
    #[arg(long)]
    pub json: bool,
}

/// `orchestra deploy`
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Services to deploy (default: every service whose definition changed).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Override the manifest's strategy.
    #[arg(long, value_parser = ["canary", "blue-green", "recreate"])]
    pub strategy: Option<String>,
    /// Wait for the releases to finish, showing progress; exit 1 if one fails.
    #[arg(long)]
    pub wait: bool,
    /// Apply the overlay `env.<ENV>` (as `up` did).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
}

/// `orchestra down`
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also remove the containers' named volumes (their data is lost).
    #[arg(long)]
    pub volumes: bool,
}

/// `orchestra import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Compose file. Files it names in `include` and `extends.file` are read
    /// relative to it and merged in as Compose does.
    #[arg(value_name = "COMPOSE_FILE", default_value = "docker-compose.yml")]
    pub compose: PathBuf,
    /// Where to write the manifest (`-` for stdout) [default: orchestra.yaml beside the Compose file].
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Write nothing and exit 1 if a key is unknown to Compose (at any depth:
    /// `healthcheck.intervall`) or a dependency is dropped.
    #[arg(long)]
    pub strict: bool,
}

/// `orchestra rollback`
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The service.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// The revision to go back to (default: the one the last release replaced).
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    /// Also restore the data: the restore point (backups) taken before the rolled-back
    /// release's migrations (`deploy.backup_before`).
    #[arg(long)]
    pub restore_data: bool,
}

/// `orchestra history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this service.
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `orchestra maintenance SERVICE on|off`
#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    /// The service.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// on or off.
    #[arg(value_parser = ["on", "off"])]
    pub state: String,
}

/// A service name.
#[derive(Debug, Args)]
pub struct ServiceArg {
    /// The service.
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

/// `orchestra events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this service's events.
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// How many of the latest events.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON: an array; with --follow, one object per line.
    #[arg(long)]
    pub json: bool,
    /// Keep printing new events as they happen, until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

/// `orchestra __shim -- argv...`
#[derive(Debug, Args)]
pub struct ShimArgs {
    /// Run the command as this user: `UID:GID`, or `UID:GID:NAME` to take NAME's
    /// supplementary groups too (the shim must be root).
    #[arg(long)]
    pub user: Option<String>,
    /// The command to run.
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
