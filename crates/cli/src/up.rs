//! `orchestra up`: in the foreground (the daemon runs in this process, with
//! live progress, then logs), or detached (`-d`: a daemon in its own session;
//! this process reports progress and exits once the start has settled).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use orchestra_runtime::logs::Stream;
use orchestra_runtime::status::{self, PlatformStatus, ServiceStatus, Settled};
use orchestra_server::client::Client;
use orchestra_server::daemon::DEFAULT_ADMIN;
use orchestra_server::{AdminListen, Daemon, DaemonOptions};

use crate::args::UpArgs;
use crate::project;

/// Validate, select and plan; `None` when the manifest has errors (already printed).
/// `inject`: put the secrets' values into the definitions (the process that runs the
/// daemon), or only check that they exist (`up -d`, which hands over to one).
fn prepare(file: Option<&Path>, a: &UpArgs, inject: bool) -> anyhow::Result<Option<DaemonOptions>> {
    let Some(m) = project::load_or_report(file, a.environment.as_deref())? else {
        return Ok(None);
    };
    let mut m = m;
    let selected = orchestra_plan::select(&m, &a.profiles, &a.services)?;
    let plan = orchestra_plan::plan(&m, &selected)?;
    // Secrets become environment variables; nothing starts with a partial set.
    let store = orchestra_secrets::Store::open(orchestra_secrets::store_dir(&m.dir));
    let checked = if inject {
        crate::inject::inject(&mut m, &store, &plan.order, load_identity).map(|_| ())
    } else {
        crate::inject::check(&m, &store, &plan.order)
            .and_then(|()| crate::inject::check_key(&m, &store, &plan.order, load_identity))
    };
    if let Err(diags) = checked {
        eprint!("{}", project::render_diagnostics(&diags));
        return Ok(None);
    }
    let admin = match a.admin.as_deref().or(m.admin_listen.as_deref()) {
        Some("off") => AdminListen::Off,
        Some(addr) => AdminListen::Addr(addr.to_owned()),
        None => AdminListen::Addr(DEFAULT_ADMIN.to_owned()),
    };
    let control = match a.control.as_deref().or(m.control_listen.as_deref()) {
        None | Some("off") => None,
        Some(addr) => {
            // The manifest's is validated with the rest; the flag's is checked here.
            if addr.parse::<std::net::SocketAddr>().is_err() {
                anyhow::bail!(
                    "--control {addr}: not a listen address; expected an IP address and port such as 127.0.0.1:7071, or `off`"
                );
            }
            Some(addr.to_owned())
        }
    };
    let routed = plan
        .order
        .iter()
        .any(|n| m.service(n).is_some_and(|s| s.route.is_some()));
    let proxy = match a.proxy.as_deref().or(m.proxy.listen.as_deref()) {
        Some("off") => None,
        _ if !routed => None,
        Some(addr) => Some(addr.to_owned()),
        None => Some(orchestra_server::daemon::DEFAULT_PROXY.to_owned()),
    };
    let exe = std::env::current_exe().context("cannot find the orchestra executable")?;
    let secrets = Arc::new(crate::inject::StoreValues::new(&m));
    Ok(Some(DaemonOptions {
        proxy,
        manifest: Arc::new(m),
        plan,
        profiles: a.profiles.clone(),
        admin,
        control,
        shim: vec![exe.to_string_lossy().into_owned(), "__shim".into()],
        restore: a.restore,
        secrets,
    }))
}

/// The user's age identity, for reading secret values.
fn load_identity() -> Result<orchestra_secrets::Identity, String> {
    let path = orchestra_secrets::default_key_path().map_err(|e| e.to_string())?;
    orchestra_secrets::Identity::load(&path).map_err(|e| e.to_string())
}

/// Resolves on SIGINT or SIGTERM; a second one exits at once (the shims then
/// take every service down with the process).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers only `orchestra down` stops the daemon.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("orchestra: second signal, exiting now");
        std::process::exit(130);
    });
}

/// Prints a line whenever a service's state or reason changes.
struct Progress {
    last: HashMap<String, (status::Phase, String)>,
    width: usize,
    t0: Instant,
}

impl Progress {
    fn new(services: &[ServiceStatus]) -> Self {
        Self {
            last: HashMap::new(),
            width: services
                .iter()
                .map(|s| s.name.len())
                .max()
                .unwrap_or(4)
                .max(4),
            t0: Instant::now(),
        }
    }

    fn show(&mut self, services: &[ServiceStatus]) {
        for s in services {
            let now = (s.phase, s.reason.clone());
            if self.last.get(&s.name) != Some(&now) {
                let phase = serde_json::to_value(s.phase)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                println!(
                    "{:>6.2}s  {:w$}  {:14} {}",
                    self.t0.elapsed().as_secs_f64(),
                    s.name,
                    phase,
                    s.reason,
                    w = self.width
                );
                self.last.insert(s.name.clone(), now);
            }
        }
    }
}

fn print_reports(services: &[ServiceStatus], failed: &[String]) {
    for s in services.iter().filter(|s| failed.contains(&s.name)) {
        match &s.report {
            Some(r) => eprint!("\n{}", r.render()),
            None => eprintln!("\n✗ {}: {}", s.name, s.reason),
        }
    }
}

/// `db running, not healthy yet; nothing waits on it being healthy`: the services
/// `up` did not wait for (healthchecks with `on_failure: none`).
fn not_waited(services: &[ServiceStatus]) -> String {
    let names: Vec<String> = services
        .iter()
        .filter(|s| !s.phase.is_good())
        .map(|s| {
            let how = if s.phase == status::Phase::Unhealthy {
                "unhealthy"
            } else {
                "not healthy yet"
            };
            format!("{} running, {how}", s.name)
        })
        .collect();
    format!(
        "{}; nothing waits on {} being healthy",
        names.join(", "),
        if names.len() == 1 { "it" } else { "them" }
    )
}

/// `orchestra up` in the foreground.
pub async fn foreground(file: Option<&Path>, a: &UpArgs) -> anyhow::Result<ExitCode> {
    project::report_import(file);
    let Some(opts) = prepare(file, a, true)? else {
        return Ok(ExitCode::FAILURE);
    };
    let n = opts.plan.order.len();
    let project = opts.manifest.name.clone();
    let lenient = orchestra_plan::running_is_enough(&opts.manifest, &opts.plan);
    let daemon = Daemon::start(opts).await?;
    let admin = daemon
        .admin_addr()
        .map(|a| format!(", admin http://{a}"))
        .unwrap_or_default();
    let control = daemon
        .control_addr()
        .map(|a| format!(", control http://{a} (bearer token)"))
        .unwrap_or_default();
    println!(
        "orchestra: starting `{project}`: {n} services{admin}{control}; Ctrl-C stops everything"
    );
    for (svc, note) in daemon.recovered() {
        println!("↺ {svc}: {note}");
    }
    let rt = daemon.runtime().clone();
    let mut events = daemon.subscribe();
    let printer = tokio::spawn(async move {
        let width = rt
            .services()
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4);
        let t0 = Instant::now();
        let mut changed = rt.subscribe();
        let mut settled = false;
        let mut logs = rt.logs().subscribe();
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(e) => {
                        let who = match e.replica {
                            Some(r) if rt.manifest().service(&e.service).is_some_and(|s| s.replicas > 1) => format!("{}.{r}", e.service),
                            _ => e.service.clone(),
                        };
                        println!("{:>6.2}s  {who:width$}  {:14} {}", t0.elapsed().as_secs_f64(), e.kind.as_str(), e.reason);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                },
                r = changed.changed(), if !settled => {
                    if r.is_err() { return; }
                    let services = rt.services();
                    match status::settled_with(&services, &lenient) {
                        Settled::Up => {
                            settled = true;
                            let healthy = services.iter().filter(|s| s.phase.is_good()).count();
                            let what = if healthy == services.len() {
                                format!("all {healthy} services healthy")
                            } else {
                                format!("{healthy}/{} services healthy, {}", services.len(), not_waited(&services))
                            };
                            println!("orchestra: {what} in {:.2}s; logs follow", t0.elapsed().as_secs_f64());
                        }
                        Settled::Failed(names) => {
                            settled = true;
                            print_reports(&services, &names);
                            println!("orchestra: {} did not come up; still supervising, logs follow", names.join(", "));
                        }
                        Settled::Pending => {}
                    }
                }
                line = logs.recv(), if settled => match line {
                    Ok(l) if l.stream != Stream::Orchestra => println!("{}.{} | {}", l.service, l.replica, l.text),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                },
            }
        }
    });
    daemon.run_until(shutdown_signal()).await?;
    printer.abort();
    println!("orchestra: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The detached daemon (`orchestra __daemon`, started by `up -d`).
pub async fn daemon(file: Option<&Path>, a: &UpArgs) -> anyhow::Result<ExitCode> {
    // Its own session: the terminal's signals and hangup are not ours.
    let _ = nix::unistd::setsid();
    let Some(opts) = prepare(file, a, true)? else {
        return Ok(ExitCode::FAILURE);
    };
    let daemon = Daemon::start(opts).await?;
    eprintln!("orchestra daemon {} started", std::process::id());
    daemon.run_until(shutdown_signal()).await?;
    eprintln!("orchestra daemon {} stopped", std::process::id());
    Ok(ExitCode::SUCCESS)
}

/// `orchestra up -d`
pub async fn detached(file: Option<&Path>, a: &UpArgs) -> anyhow::Result<ExitCode> {
    let timeout = orchestra_manifest::parse_duration(&a.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout {}: {e}", a.timeout))?;
    // Validate here so errors print in this terminal, not in a log file.
    project::report_import(file);
    let Some(opts) = prepare(file, a, false)? else {
        return Ok(ExitCode::FAILURE);
    };
    let manifest = project::manifest_path(file)?;
    let paths = project::project_paths(file)?;
    let client = Client::new(&paths.socket);
    if client.is_running().await {
        anyhow::bail!(
            "orchestra is already running for this project; run `orchestra down` first, or `orchestra ps` to see it"
        );
    }
    paths
        .prepare()
        .with_context(|| format!("cannot create {}", paths.root.display()))?;
    // The daemon rotates its log as it writes; a full one is moved aside here
    // so the start-up tail below reads one file.
    orchestra_runtime::logs::rotate_if_full(
        &paths.daemon_log,
        orchestra_runtime::logs::ROTATE_BYTES,
        orchestra_runtime::logs::ROTATE_KEEP,
    );
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&paths.daemon_log)
        .with_context(|| format!("cannot open {}", paths.daemon_log.display()))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().context("cannot find the orchestra executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("-f")
        .arg(&manifest)
        .arg("__daemon")
        .arg("--timeout")
        .arg(&a.timeout);
    if let Some(e) = &a.environment {
        cmd.arg("--env").arg(e);
    }
    for p in &a.profiles {
        cmd.arg("--profile").arg(p);
    }
    if let Some(ad) = &a.admin {
        cmd.arg("--admin").arg(ad);
    }
    if let Some(p) = &a.proxy {
        cmd.arg("--proxy").arg(p);
    }
    if let Some(c) = &a.control {
        cmd.arg("--control").arg(c);
    }
    if a.restore {
        cmd.arg("--restore");
    }
    cmd.args(&a.services);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut child = cmd.spawn().context("cannot start the orchestra daemon")?;

    let t0 = Instant::now();
    let daemon_log_tail = || {
        let text = std::fs::read_to_string(&paths.daemon_log).unwrap_or_default();
        let start = usize::try_from(log_start).unwrap_or(0).min(text.len());
        text.get(start..).unwrap_or_default().trim().to_owned()
    };
    loop {
        if client.is_running().await {
            break;
        }
        if let Some(st) = child.try_wait()? {
            anyhow::bail!(
                "the daemon exited ({st}) before it was ready:\n{}",
                daemon_log_tail()
            );
        }
        if t0.elapsed() > Duration::from_secs(30) {
            anyhow::bail!(
                "the daemon did not answer within 30s; see {}",
                paths.daemon_log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let info = client.get("/v1/daemon").await?;
    for note in info["recovered"].as_array().into_iter().flatten() {
        println!(
            "↺ {}: {}",
            note[0].as_str().unwrap_or("?"),
            note[1].as_str().unwrap_or_default()
        );
    }
    let lenient = orchestra_plan::running_is_enough(&opts.manifest, &opts.plan);
    let mut progress: Option<Progress> = None;
    let deadline = t0 + timeout;
    loop {
        let st: PlatformStatus = serde_json::from_value(client.get("/v1/status").await?)
            .context("unexpected status answer from the daemon")?;
        let p = progress.get_or_insert_with(|| Progress::new(&st.services));
        p.show(&st.services);
        match status::settled_with(&st.services, &lenient) {
            Settled::Up => {
                let admin = info
                    .get("admin")
                    .and_then(|v| v.as_str())
                    .map(|a| format!("; admin http://{a}/health"))
                    .unwrap_or_default();
                let proxy = info
                    .get("proxy")
                    .and_then(|v| v.as_str())
                    .map(|a| format!("; proxy http://{a}"))
                    .unwrap_or_default();
                let tls = info
                    .get("proxy_tls")
                    .and_then(|v| v.as_str())
                    .map(|a| format!(", https://{a}"))
                    .unwrap_or_default();
                let proxy = format!("{proxy}{tls}");
                let control = info
                    .get("control")
                    .and_then(|v| v.as_str())
                    .map(|a| format!("; control http://{a} (bearer token)"))
                    .unwrap_or_default();
                let admin = format!("{admin}{proxy}{control}");
                let rest = if st.healthy == st.total {
                    String::new()
                } else {
                    format!(" ({})", not_waited(&st.services))
                };
                println!(
                    "✓ {}: {}/{} services healthy{rest} in {:.2}s{admin}",
                    st.project,
                    st.healthy,
                    st.total,
                    t0.elapsed().as_secs_f64()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Settled::Failed(names) => {
                print_reports(&st.services, &names);
                eprintln!(
                    "\n✗ {} did not become healthy; stopping what was started",
                    names.join(", ")
                );
                let _ = client.post("/v1/down").await;
                let _ = child.wait();
                let _ = opts;
                return Ok(ExitCode::FAILURE);
            }
            Settled::Pending => {}
        }
        if Instant::now() > deadline {
            let waiting: Vec<&str> = st
                .services
                .iter()
                .filter(|s| !s.phase.is_good())
                .map(|s| s.name.as_str())
                .collect();
            eprintln!(
                "✗ timed out after {} waiting for: {}; stopping what was started",
                a.timeout,
                waiting.join(", ")
            );
            let _ = client.post("/v1/down").await;
            let _ = child.wait();
            return Ok(ExitCode::FAILURE);
        }
        // A status request over the socket costs well under a millisecond.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
