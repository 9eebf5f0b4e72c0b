//! `demo-service`: a small, fast HTTP/1.1 service that stands in for an AI
//! platform's api, worker, store or web component in Orchestra's demos, tests
//! and benchmarks. Flags inject the behaviours a supervisor has to cope with:
//! slow starts, failures, latency, going unhealthy, crashing, one-shot jobs.

mod body;
mod depends;
mod duration;
mod server;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::Instant;

use crate::depends::{Dependency, parse_dependency};
use crate::duration::parse_duration;
use crate::server::{State, handle, json_string};

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
const DRAIN_CAP: Duration = Duration::from_secs(10);

const AFTER_HELP: &str = "\
Endpoints:
  GET  /                   JSON {service, version, path, pid, port, requests};
                           any other path answers the same (--fail-rate and
                           --latency apply to these app paths only)
  GET  /health             200 {\"status\":\"ok\"}, 503 after --unhealthy-after
                           (path set by --health-path; /health then answers 404)
  GET  /ready              200, or 503 during --not-ready-for
  GET  /stream?n=5&interval=100ms
                           Server-Sent Events: n events `data: {\"i\":k,\"version\":v}`
  POST /echo               streams the request body back
  GET  /headers            the request's headers as JSON (what a proxy sent)
  GET  /sleep?d=2s         answers after d (default 1s), for drain tests

Durations: 500ms, 2s, 1.5s, 1m, 1h (a bare 0 is also accepted).
Timers for --unhealthy-after and --not-ready-for start when the port is bound;
--exit-after counts from process start, so it can fire during --startup-delay.

Output: stdout gets `demo-service NAME VERSION listening on HOST:PORT` (the real
port, also with --port 0) and `... shutting down` on SIGTERM/SIGINT; errors go
to stderr. SIGTERM/SIGINT stop accepting, let in-flight requests finish (at
most 10s) and exit 0.

Examples:
  demo-service --port 8080 --name api --version v2 --depends-on http://127.0.0.1:8081/health
  demo-service --port 0 --startup-delay 2s --not-ready-for 1s --fail-rate 0.1
  demo-service --job --startup-delay 1s --exit-code 0";

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(
    name = "demo-service",
    about = "A small, fast HTTP/1.1 service for Orchestra demos, tests and benchmarks",
    after_help = AFTER_HELP
)]
struct Args {
    /// Port to listen on; 0 lets the OS pick (the real port is printed).
    /// Required unless --job.
    #[arg(long, env = "PORT", required_unless_present = "job")]
    port: Option<u16>,

    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Service name reported in answers and log lines.
    #[arg(long, env = "ORCHESTRA_SERVICE", default_value = "demo")]
    name: String,

    /// Version reported in answers (lets tests tell old and new replicas apart).
    #[arg(long = "version", value_name = "V", default_value = "v1")]
    app_version: String,

    /// Sleep this long before binding the port (models slow model loading);
    /// in --job mode, how long the job runs.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    startup_delay: Option<Duration>,

    /// Fraction (0.0-1.0) of app requests answered 500. Never applies to
    /// health, /ready, /stream, /echo, /headers or /sleep.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    fail_rate: f64,

    /// Delay added to each app request.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    latency: Option<Duration>,

    /// After this long, health answers 503 forever.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    unhealthy_after: Option<Duration>,

    /// /ready answers 503 until this long after the port is bound.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    not_ready_for: Option<Duration>,

    /// Exit with --exit-code this long after the process started (crash tests).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    exit_after: Option<Duration>,

    /// Exit code for --exit-after (default 1) and --job (default 0).
    #[arg(long, value_name = "CODE")]
    exit_code: Option<u8>,

    /// One-shot mode modelling a migration job: print progress, run for
    /// --startup-delay, exit with --exit-code. Serves no HTTP.
    #[arg(long)]
    job: bool,

    /// Path that serves health.
    #[arg(long, value_name = "PATH", default_value = "/health", value_parser = parse_path)]
    health_path: String,

    /// At startup, GET this http:// URL once and exit 1 if it is unreachable
    /// or answers 5xx. Repeatable.
    #[arg(long = "depends-on", value_name = "URL", value_parser = parse_dependency)]
    depends_on: Vec<Dependency>,

    /// Tokio worker threads.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,

    /// Print a stdout line per request (off by default: it costs throughput).
    #[arg(long)]
    log_requests: bool,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0.0 and 1.0")),
    }
}

fn parse_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(format!("{text:?} must start with '/'"))
    }
}

/// Prints one line to stdout and flushes it, ignoring a closed pipe: a
/// supervisor that stopped reading must not make the service panic.
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.job {
        return ExitCode::from(run_job(&args));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo-service: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(args));
    // Connection tasks still running (past the drain cap) are abandoned.
    runtime.shutdown_background();
    ExitCode::from(code)
}

fn run_job(args: &Args) -> u8 {
    let prefix = format!("demo-service {} {}", args.name, args.app_version);
    say(&format!("{prefix} job starting"));
    say(&format!("{prefix} migrating..."));
    if let Some(delay) = args.startup_delay {
        std::thread::sleep(delay);
    }
    say(&format!("{prefix} applied 3 migrations"));
    let code = args.exit_code.unwrap_or(0);
    if code != 0 {
        eprintln!("{prefix} job exiting with code {code}");
    }
    code
}

/// Which signal asked us to stop.
async fn stop_signal(term: &mut Signal, int: &mut Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Runs the HTTP service until a signal or --exit-after; returns the exit code.
async fn run(args: Args) -> u8 {
    let started = Instant::now();
    let prefix = format!("demo-service {} {}", args.name, args.app_version);
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{prefix}: cannot install signal handlers: {e}");
            return 1;
        }
    };
    let exit_code = args.exit_code.unwrap_or(1);
    let exit_timer = async {
        match args.exit_after {
            Some(after) => tokio::time::sleep_until(started + after).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(exit_timer);

    // Startup: dependency checks, then the modelled load time. Signals and
    // --exit-after are honoured here too, as a real slow starter would.
    let startup = async {
        for dep in &args.depends_on {
            match depends::check(dep).await {
                Ok(status) => say(&format!(
                    "{prefix} dependency {} reachable (HTTP {status})",
                    dep.url
                )),
                Err(e) => {
                    eprintln!("{prefix}: dependency {} is unreachable: {e}", dep.url);
                    return Err(());
                }
            }
        }
        if let Some(delay) = args.startup_delay {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    };
    tokio::select! {
        result = startup => if result.is_err() { return 1 },
        name = stop_signal(&mut term, &mut int) => {
            say(&format!("{prefix} shutting down ({name}, before listening)"));
            return 0;
        }
        () = &mut exit_timer => {
            eprintln!("{prefix}: exiting with code {exit_code} (--exit-after)");
            return exit_code;
        }
    }

    let port = args.port.unwrap_or(0);
    let listener = match TcpListener::bind((args.host.as_str(), port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("{prefix}: cannot listen on {}:{port}: {e}", args.host);
            return 1;
        }
    };
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("{prefix}: cannot read the bound address: {e}");
            return 1;
        }
    };
    let bound = Instant::now();
    let pid = std::process::id();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(pid);
    let state = Arc::new(State {
        name_json: json_string(&args.name),
        version_json: json_string(&args.app_version).into(),
        name: args.name.clone(),
        port: local.port(),
        pid,
        requests: AtomicU64::new(0),
        rng: AtomicU64::new(seed),
        fail_rate: args.fail_rate,
        latency: args.latency,
        health_path: args.health_path.clone(),
        unhealthy_at: args.unhealthy_after.map(|d| bound + d),
        ready_at: bound + args.not_ready_for.unwrap_or(Duration::ZERO),
        log_requests: args.log_requests,
    });
    say(&format!("{prefix} listening on {local}"));

    let mut builder = http1::Builder::new();
    // No header-read timeout: it would also close idle keep-alive connections
    // after 30s, which upsets pooling proxies in long benchmarks.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let graceful = GracefulShutdown::new();

    let signal_name = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small answers must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let st = state.clone();
                    let service = service_fn(move |req| handle(req, st.clone()));
                    let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        if let Err(e) = connection.await
                            && !is_benign(&e)
                        {
                            eprintln!("demo-service: connection error: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    eprintln!("{prefix}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            name = stop_signal(&mut term, &mut int) => break name,
            () = &mut exit_timer => {
                eprintln!("{prefix}: exiting with code {exit_code} (--exit-after)");
                return exit_code;
            }
        }
    };

    // Stop accepting before announcing it, so anyone who reads the line can
    // rely on new connections being refused.
    drop(listener);
    say(&format!("{prefix} shutting down ({signal_name})"));
    tokio::select! {
        drained = tokio::time::timeout(DRAIN_CAP, graceful.shutdown()) => {
            if drained.is_err() {
                eprintln!("{prefix}: requests still in flight after {DRAIN_CAP:?}; exiting anyway");
            }
        }
        name = stop_signal(&mut term, &mut int) => {
            eprintln!("{prefix}: second {name}; exiting without waiting for requests");
        }
    }
    0
}

/// Errors that only mean the client went away; not worth a stderr line.
fn is_benign(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() || e.is_canceled() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            return matches!(
                io.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
            );
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn fractions() {
        assert_eq!(parse_fraction("0"), Ok(0.0));
        assert_eq!(parse_fraction("1.0"), Ok(1.0));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("-0.1").is_err());
        assert!(parse_fraction("NaN").is_err());
        assert!(parse_fraction("x").is_err());
    }
}
