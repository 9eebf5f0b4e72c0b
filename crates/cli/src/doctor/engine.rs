//! The Docker Engine, the NVIDIA runtime and the cgroup controllers that
//! container resource limits need.

use std::path::PathBuf;

use orchestra_docker::DockerError;
use orchestra_manifest::Resources;

use super::{COMMAND_TIMEOUT, Check, Ctx, ENGINE_TIMEOUT, Ran, run_command, which};

/// The API version Orchestra is tested against (Docker Engine 20.10).
const TESTED_API: (u64, u64) = (1, 41);

/// What the Engine said about itself.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    /// The socket it answered on.
    pub socket: PathBuf,
    /// Its version (`20.10.24`).
    pub version: String,
    /// The API version it speaks (`1.41`).
    pub api: String,
    /// Its runtimes (`runc`, `nvidia`...); `None` when `info` did not answer.
    pub runtimes: Option<Vec<String>>,
    /// `1` or `2`.
    pub cgroup_version: Option<String>,
    /// Whether it can enforce memory limits.
    pub memory_limit: Option<bool>,
    /// Whether it can enforce CPU quotas.
    pub cpu_cfs_quota: Option<bool>,
    /// Whether it can enforce process-count limits.
    pub pids_limit: Option<bool>,
}

/// The outcome of asking the Engine.
#[derive(Debug, Clone)]
pub enum Probe {
    /// No selected service needs it, so it was not asked.
    NotNeeded,
    /// It answered.
    Reached(Engine),
    /// It did not: what happened and what to do.
    Failed {
        /// What happened.
        summary: String,
        /// What to do.
        fix: String,
    },
}

/// Ask the Engine at DOCKER_HOST for its version and facts, each request
/// within [`ENGINE_TIMEOUT`].
pub async fn probe(needed: bool) -> Probe {
    if !needed {
        return Probe::NotNeeded;
    }
    let host = std::env::var("DOCKER_HOST").ok();
    let socket = match orchestra_docker::engine::socket_from(host.as_deref()) {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let shown = socket.display().to_string();
    let docker = match tokio::time::timeout(
        ENGINE_TIMEOUT,
        orchestra_docker::engine::connect(&socket),
    )
    .await
    {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return failed(&e),
        Err(_) => return timed_out(&shown),
    };
    let (version, info) = tokio::join!(
        tokio::time::timeout(ENGINE_TIMEOUT, docker.version()),
        tokio::time::timeout(ENGINE_TIMEOUT, docker.info()),
    );
    let version = match version {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return Probe::Failed {
                summary: format!("the Docker Engine at {shown} answered an error: {e}"),
                fix: "check the Engine's own log; `docker version` shows the same".into(),
            };
        }
        Err(_) => return timed_out(&shown),
    };
    let mut engine = Engine {
        socket,
        version: version.version.unwrap_or_else(|| "?".into()),
        api: version.api_version.unwrap_or_else(|| "?".into()),
        ..Engine::default()
    };
    if let Ok(Ok(info)) = info {
        let mut runtimes: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        runtimes.sort();
        engine.runtimes = Some(runtimes);
        engine.cgroup_version = info
            .cgroup_version
            .map(|v| v.to_string())
            .filter(|v| !v.is_empty());
        engine.memory_limit = info.memory_limit;
        engine.cpu_cfs_quota = info.cpu_cfs_quota;
        engine.pids_limit = info.pids_limit;
    }
    Probe::Reached(engine)
}

fn timed_out(socket: &str) -> Probe {
    Probe::Failed {
        summary: format!(
            "the Docker Engine at {socket} did not answer within {}s",
            ENGINE_TIMEOUT.as_secs()
        ),
        fix: "check that dockerd is healthy (`docker info`; restart it if it hangs), or point DOCKER_HOST at the right socket".into(),
    }
}

fn failed(e: &DockerError) -> Probe {
    let (summary, fix) = match e {
        DockerError::EngineNotRunning { socket } => (
            format!("the Docker Engine is not running: nothing answers on {}", socket.display()),
            "start it (`scripts/docker.sh` in Orchestra's repository starts one and prints its socket; or start your system's docker service) and `export DOCKER_HOST=unix://SOCKET`".to_owned(),
        ),
        DockerError::PermissionDenied { socket } => (
            format!("permission denied on the Docker Engine's socket {}", socket.display()),
            "run Orchestra as a user in the `docker` group (`sudo usermod -aG docker $USER`, then log in again) or as root".to_owned(),
        ),
        DockerError::UnsupportedHost(h) => (
            format!("DOCKER_HOST={h} is not a unix socket, the only kind Orchestra talks to"),
            "set DOCKER_HOST=unix:///path/to/docker.sock".to_owned(),
        ),
        other => (
            other.to_string(),
            "check the Engine (`docker version`) and DOCKER_HOST".to_owned(),
        ),
    };
    Probe::Failed { summary, fix }
}

/// `a.b` as numbers, for comparing API versions.
fn api_pair(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The `docker` check.
pub fn docker_check(ctx: &Ctx<'_>, probe: &Probe) -> Check {
    const ID: &str = "docker";
    let users: Vec<&str> = ctx.containers().map(|s| s.name.as_str()).collect();
    match probe {
        Probe::NotNeeded => Check::skip(ID, "no selected service has `image` or `build`"),
        Probe::Failed { summary, fix } => Check::fail(ID, summary.clone(), fix.clone())
            .detail(format!("needed by: {}", users.join(", "))),
        Probe::Reached(e) => {
            let summary = format!(
                "Docker Engine {}, API {} at {}",
                e.version,
                e.api,
                e.socket.display()
            );
            match api_pair(&e.api) {
                Some(v) if v < TESTED_API => Check::warn(
                    ID,
                    format!(
                        "{summary}: older than API {}.{}, the one Orchestra is tested with",
                        TESTED_API.0, TESTED_API.1
                    ),
                    "upgrade the Docker Engine to 20.10 or newer",
                ),
                _ => Check::pass(ID, summary),
            }
        }
    }
}

/// What `nvidia-smi -L` said.
#[derive(Debug, Clone)]
pub enum Gpus {
    /// No selected service asks for GPUs.
    NotAsked,
    /// `nvidia-smi` is not on PATH.
    NoTool,
    /// It ran and listed these GPUs.
    Listed(Vec<String>),
    /// It ran and failed (no driver loaded...), or timed out.
    Broken(String),
}

/// List the GPUs with `nvidia-smi -L` (only when a service asks for GPUs).
pub async fn list_gpus(wanted: bool) -> Gpus {
    if !wanted {
        return Gpus::NotAsked;
    }
    let Some(smi) = which("nvidia-smi") else {
        return Gpus::NoTool;
    };
    let dir = std::env::temp_dir();
    match run_command(&smi, &["-L"], &dir, &[]).await {
        Ran::Ok(out) => Gpus::Listed(
            out.lines()
                .filter(|l| l.starts_with("GPU "))
                .map(str::to_owned)
                .collect(),
        ),
        Ran::Failed(out) => Gpus::Broken(first_line(&out)),
        Ran::TimedOut => Gpus::Broken(format!(
            "`nvidia-smi -L` did not finish within {}s",
            COMMAND_TIMEOUT.as_secs()
        )),
        Ran::NotStarted(e) => Gpus::Broken(format!("cannot run {}: {e}", smi.display())),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_owned()
}

/// The `gpu` check: a driver that lists enough GPUs and, for containers, a
/// way for the Engine to hand them over (its `nvidia` runtime or the NVIDIA
/// Container Toolkit's hook).
pub fn gpu_check(ctx: &Ctx<'_>, probe: &Probe, gpus: &Gpus) -> Check {
    const ID: &str = "gpu";
    let asking: Vec<(&str, u32, bool)> = ctx
        .selected
        .iter()
        .filter_map(|s| {
            let n = s.resources.gpus.filter(|n| *n > 0)?;
            let container = !matches!(s.workload, orchestra_manifest::Workload::Process { .. });
            Some((s.name.as_str(), n, container))
        })
        .collect();
    if asking.is_empty() {
        return Check::skip(ID, "no selected service sets `resources.gpus`");
    }
    let fields = asking
        .iter()
        .map(|(n, _, _)| format!("services.{n}.resources.gpus"))
        .collect::<Vec<_>>()
        .join(", ");
    let most = asking
        .iter()
        .map(|(_, n, _)| *n)
        .filter(|n| *n != Resources::ALL_GPUS)
        .max()
        .unwrap_or(1);
    let containers = asking.iter().any(|(_, _, c)| *c);
    let install_toolkit = "install the NVIDIA Container Toolkit, run `sudo nvidia-ctk runtime configure --runtime=docker` and restart the Docker Engine";
    let mut how = Vec::new();
    if containers {
        let runtime = match probe {
            Probe::Reached(e) => e
                .runtimes
                .as_ref()
                .is_some_and(|r| r.iter().any(|r| r == "nvidia")),
            _ => false,
        };
        let hook = ["nvidia-container-runtime-hook", "nvidia-container-cli"]
            .into_iter()
            .find_map(which);
        match (runtime, &hook) {
            (true, _) => how.push("the Engine has the `nvidia` runtime".to_owned()),
            (false, Some(h)) => how.push(format!("NVIDIA Container Toolkit at {}", h.display())),
            (false, None) => {
                let engine = match probe {
                    Probe::Reached(_) => "the Docker Engine has no `nvidia` runtime",
                    _ => "the Docker Engine did not answer (see `docker`)",
                };
                return Check::fail(
                    ID,
                    format!(
                        "{fields} asks for GPUs, but {engine} and the NVIDIA Container Toolkit is not on PATH"
                    ),
                    install_toolkit,
                );
            }
        }
    }
    match gpus {
        Gpus::NotAsked => Check::skip(ID, "no selected service sets `resources.gpus`"),
        Gpus::NoTool if containers => Check::warn(
            ID,
            format!(
                "{}; `nvidia-smi` is not on PATH, so the GPUs cannot be counted",
                how.join(", ")
            ),
            "install the NVIDIA driver's utilities (`nvidia-smi -L` should list the GPUs)",
        ),
        Gpus::NoTool => Check::fail(
            ID,
            format!("{fields} asks for GPUs, but `nvidia-smi` is not on PATH (no NVIDIA driver?)"),
            "install the NVIDIA driver; `nvidia-smi -L` should then list the GPUs",
        ),
        Gpus::Broken(why) => Check::fail(
            ID,
            format!("{fields} asks for GPUs, but `nvidia-smi -L` fails: {why}"),
            "load the NVIDIA driver (`nvidia-smi` must list the GPUs; a reboot after a driver update often does it)",
        ),
        Gpus::Listed(list) if (list.len() as u64) < u64::from(most) => Check::fail(
            ID,
            format!(
                "{fields} asks for {most} GPU{}, but `nvidia-smi -L` lists {}",
                if most == 1 { "" } else { "s" },
                list.len()
            ),
            "lower `resources.gpus` or run on a machine with more GPUs",
        )
        .detail(list.join("\n")),
        Gpus::Listed(list) => {
            how.insert(
                0,
                format!(
                    "{} GPU{} (nvidia-smi)",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" }
                ),
            );
            Check::pass(ID, how.join(", ")).detail(list.join("\n"))
        }
    }
}

/// The cgroup controllers the selected containers' limits need.
pub fn cgroup_check(ctx: &Ctx<'_>, probe: &Probe) -> Check {
    const ID: &str = "cgroups";
    let mut need: Vec<(&str, String)> = Vec::new();
    for s in ctx.containers() {
        let r = &s.resources;
        for (set, controller, field) in [
            (r.cpus.is_some(), "cpu", "cpus"),
            (r.memory.is_some(), "memory", "memory"),
            (r.pids.is_some(), "pids", "pids"),
        ] {
            if set && !need.iter().any(|(c, _)| *c == controller) {
                need.push((controller, format!("services.{}.resources.{field}", s.name)));
            }
        }
    }
    if need.is_empty() {
        let processes = ctx.selected.iter().any(|s| {
            matches!(s.workload, orchestra_manifest::Workload::Process { .. })
                && (s.resources.cpus.is_some()
                    || s.resources.memory.is_some()
                    || s.resources.pids.is_some())
        });
        return Check::skip(
            ID,
            if processes {
                "only containers get resource limits, and no selected container service sets `resources.cpus`, `memory` or `pids` (a process service's are not enforced)"
            } else {
                "no selected container service sets `resources.cpus`, `memory` or `pids`"
            },
        );
    }
    let fix = |c: &str| {
        format!(
            "enable the {c} controller: on cgroup v2 add it to /sys/fs/cgroup/cgroup.subtree_control (rootless Docker also needs it delegated to the user's slice); on cgroup v1 boot with `cgroup_enable={c}`; then restart the Docker Engine"
        )
    };
    // The Engine's own answer is the one that counts (it may run in a VM).
    if let Probe::Reached(e) = probe
        && e.runtimes.is_some()
    {
        let missing: Vec<&(&str, String)> = need
            .iter()
            .filter(|(c, _)| {
                let ok = match *c {
                    "cpu" => e.cpu_cfs_quota,
                    "memory" => e.memory_limit,
                    _ => e.pids_limit,
                };
                ok == Some(false)
            })
            .collect();
        let version = e.cgroup_version.as_deref().unwrap_or("?");
        return match missing.first() {
            Some((c, field)) => Check::fail(
                ID,
                format!(
                    "the Docker Engine cannot enforce {} limits (cgroup v{version}), which {field} sets",
                    missing
                        .iter()
                        .map(|(c, _)| *c)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                fix(c),
            ),
            None => Check::pass(
                ID,
                format!(
                    "the Docker Engine enforces {} limits (cgroup v{version})",
                    need.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
                ),
            ),
        };
    }
    let (version, available) = local_controllers();
    let missing: Vec<&(&str, String)> = need
        .iter()
        .filter(|(c, _)| !available.iter().any(|a| a == c))
        .collect();
    match missing.first() {
        Some((c, field)) => Check::fail(
            ID,
            format!(
                "this machine's cgroup v{version} has no {} controller, which {field} needs (read from /sys/fs/cgroup: the Docker Engine did not answer)",
                missing
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fix(c),
        ),
        None => Check::pass(
            ID,
            format!(
                "cgroup v{version} has the {} controllers (read from /sys/fs/cgroup: the Docker Engine did not answer)",
                need.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

/// This machine's cgroup version and enabled controllers.
fn local_controllers() -> (u8, Vec<String>) {
    if let Ok(text) = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers") {
        return (2, text.split_whitespace().map(str::to_owned).collect());
    }
    // v1: `/proc/cgroups` lists `name hierarchy num_cgroups enabled`.
    let text = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let enabled = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3) == Some(&"1")).then(|| f.first().map(|n| (*n).to_owned()))?
        })
        .collect();
    (1, enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_as_numbers() {
        assert!(api_pair("1.9").unwrap() < api_pair("1.41").unwrap());
        assert!(api_pair("1.44").unwrap() >= TESTED_API);
        assert_eq!(api_pair("x"), None);
    }
}
