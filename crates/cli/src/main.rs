//! `orchestra`: the command line. Only this binary decides how errors are
//! printed and which exit code they give.

mod args;
mod backup;
mod control;
mod deploy;
mod doctor;
mod export;
mod inject;
mod inspect;
mod jobs;
mod manual;
mod project;
mod restore_point;
mod secrets;
mod up;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, FixCommand};

// A request through the proxy or an audit of a large repository allocates many small,
// short-lived objects across threads; mimalloc serves those with fewer page faults and
// `mprotect` calls than glibc's per-thread arenas (see bench/audit and bench/proxy).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // mimalloc asks for transparent huge pages on its arenas. Long-running processes (the
    // daemon, one shim per service) would each carry about 6 MiB more RSS for it, so they are
    // off before anything is allocated; an audit, a short batch over many files, turns them
    // back on (about 10 % faster from fewer page faults). The shim gives a service the machine's
    // own policy back before starting it, since the flag is inherited.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    let cli = Cli::parse();
    #[cfg(target_os = "linux")]
    if matches!(cli.command, Command::Audit(_)) {
        let _ = nix::sys::prctl::set_thp_disable(false);
    }
    // The shim must stay tiny and synchronous: no runtime, no logging setup.
    if let Command::Shim(a) = &cli.command {
        let code = orchestra_runtime::shim::run(&a.argv, a.user.as_deref());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCHESTRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let daemon_log = match &cli.command {
        Command::Daemon(a) => project::project_paths(a.file.as_deref().or(cli.file.as_deref()))
            .ok()
            .map(|p| DaemonLog::open(&p.daemon_log)),
        _ => None,
    };
    match daemon_log {
        Some(log) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(log))
            .init(),
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    control::set_remote(cli.control.clone());
    match cli.command {
        Command::Completions(a) => manual::completions(&a),
        Command::Man(a) => manual::man(&a),
        Command::Validate(a) => project::validate(a.file.as_deref().or(cli.file.as_deref()), &a),
        Command::Import(a) => project::import(&a),
        Command::Export(a) => export::run(cli.file.as_deref(), &a),
        Command::Secrets(a) => secrets::run(cli.file.as_deref(), a),
        Command::Audit(a) => {
            let mut out = std::io::stdout().lock();
            audit_exit(
                orchestra_audit::cli::run_audit(&a, &mut out).and_then(|code| {
                    out.flush()?;
                    Ok(code)
                }),
            )
        }
        Command::Fix(FixCommand::RenameId(a)) => {
            let mut out = std::io::stdout().lock();
            audit_exit(
                orchestra_audit::cli::run_rename_id(&a, &mut out).and_then(|code| {
                    out.flush()?;
                    Ok(code)
                }),
            )
        }
        Command::Shim(_) => Ok(ExitCode::SUCCESS),
        other => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async_command(cli.file, other))
        }
    }
}

async fn async_command(file: Option<std::path::PathBuf>, cmd: Command) -> anyhow::Result<ExitCode> {
    let file = file.as_deref();
    match cmd {
        Command::Doctor(a) => doctor::run(a.file.as_deref().or(file), &a).await,
        Command::Up(a) if a.detach => up::detached(a.file.as_deref().or(file), &a).await,
        Command::Up(a) => up::foreground(a.file.as_deref().or(file), &a).await,
        Command::Daemon(a) => up::daemon(a.file.as_deref().or(file), &a).await,
        Command::Ps(a) => inspect::ps(file, a.json).await,
        Command::Health(a) => inspect::health(file, a.json).await,
        Command::Logs(a) => inspect::logs(file, &a).await,
        Command::Events(a) => inspect::events(file, &a).await,
        Command::Start(a) => inspect::control(file, &a.service, "start").await,
        Command::Stop(a) => inspect::control(file, &a.service, "stop").await,
        Command::Restart(a) => inspect::control(file, &a.service, "restart").await,
        Command::Down(a) => inspect::down(file, a.volumes).await,
        Command::Jobs(a) => jobs::run(file, &a).await,
        Command::Deploy(a) => deploy::deploy(file, &a).await,
        Command::Promote(a) => inspect::control(file, &a.service, "promote").await,
        Command::Abort(a) => inspect::control(file, &a.service, "abort").await,
        Command::Rollback(a) => deploy::rollback(file, &a).await,
        Command::Backup(a) => backup::run(file, a).await,
        Command::History(a) => deploy::history(file, &a).await,
        Command::Pause(a) => inspect::control(file, &a.service, "pause").await,
        Command::Resume(a) => inspect::control(file, &a.service, "resume").await,
        Command::Maintenance(a) => {
            inspect::control(file, &a.service, &format!("maintenance-{}", a.state)).await
        }
        Command::Control(c) => control::run(file, &c).await,
        Command::Validate(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Import(_)
        | Command::Export(_)
        | Command::Secrets(_)
        | Command::Audit(_)
        | Command::Fix(_)
        | Command::Shim(_) => Ok(ExitCode::SUCCESS),
    }
}

/// `audit` and `fix` exit as their docs say: 0 clean, 1 findings at `--fail-on`,
/// 2 when the audit itself failed (bad arguments, config, unreadable path).
fn audit_exit(r: Result<i32, orchestra_audit::AuditError>) -> anyhow::Result<ExitCode> {
    match r {
        Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(2))),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The daemon's own log: size-rotated like the services' logs. Its stdout and
/// stderr (a panic's message) follow the current file after each rotation.
struct DaemonLog(orchestra_runtime::logs::RotatingFile);

impl DaemonLog {
    fn open(path: &std::path::Path) -> Self {
        use orchestra_runtime::logs::{ROTATE_BYTES, ROTATE_KEEP, RotatingFile};
        Self(RotatingFile::open(path, ROTATE_BYTES, ROTATE_KEEP))
    }
}

impl std::io::Write for DaemonLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.write(buf)
            && let Some(f) = self.0.file()
        {
            let _ = nix::unistd::dup2_stdout(f);
            let _ = nix::unistd::dup2_stderr(f);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
