//! `orchestra jobs`: the scheduled jobs of the running platform, and runs on demand.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use orchestra_server::client::Client;
use serde_json::Value;

use crate::project;

/// More help for `orchestra jobs --help`.
pub const HELP: &str = "\
A service with `schedule:` is a job: `up` does not start it; the daemon runs it at each
tick of its schedule (a 5-field cron expression in `timezone:`, default UTC, or
`@every DURATION`), with the same environment, secrets, user and logs as any service.
`concurrency: skip` (default) drops a tick while a run is still going; `queue` runs it
right after. Each run's start and end (exit code, last 20 log lines) are in
`orchestra events`.

  orchestra jobs               schedule, next run, the run going and the last runs
  orchestra jobs --json        the same as JSON (times in ms since the epoch)
  orchestra jobs run NAME      start a run now (under `queue`, after the one going)";

/// `orchestra jobs [--json] [run NAME]`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct JobsArgs {
    /// What to do (default: list the jobs).
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `orchestra jobs ...`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Start a run of a scheduled job now.
    Run {
        /// The job (a service with `schedule:`).
        name: String,
    },
}

/// `orchestra jobs`
pub async fn run(file: Option<&Path>, a: &JobsArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&project::project_paths(file)?.socket);
    if let Some(JobsCommand::Run { name }) = &a.command {
        let r = c.post(&format!("/v1/jobs/{name}/run")).await?;
        let result = r.get("result").and_then(Value::as_str).unwrap_or("started");
        println!("{name}: {result}");
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = c.get("/v1/jobs").await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = jobs.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no scheduled jobs (a service with `schedule:` is one)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:<24} {:<8} {:<21} LAST RUNS",
        "JOB", "SCHEDULE", "POLICY", "NEXT RUN"
    );
    for j in &list {
        let s = |k: &str| j.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
        let next = j
            .get("next_run_at_ms")
            .and_then(Value::as_i64)
            .map_or_else(|| "never".to_owned(), orchestra_clock::format_secs);
        let mut runs: Vec<String> = j
            .get("runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .rev()
            .take(3)
            .map(describe_run)
            .collect();
        if let Some(r) = j.get("running").filter(|r| !r.is_null()) {
            runs.insert(0, describe_run(r));
        }
        if j.get("queued").and_then(Value::as_bool) == Some(true) {
            runs.insert(0, "one queued".to_owned());
        }
        let last = if runs.is_empty() {
            "(none yet)".to_owned()
        } else {
            runs.join("; ")
        };
        println!(
            "{:<16} {:<24} {:<8} {:<21} {last}",
            s("name"),
            s("schedule"),
            s("concurrency"),
            next
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `#3 2026-12-02T06:40:02Z 1.2s exit 0`, or `#4 ... running`.
fn describe_run(r: &Value) -> String {
    let n = r.get("run").and_then(Value::as_u64).unwrap_or(0);
    let at = r
        .get("started_at_ms")
        .and_then(Value::as_i64)
        .map(orchestra_clock::format_secs)
        .unwrap_or_default();
    let outcome = r.get("outcome").and_then(Value::as_str).unwrap_or("");
    if outcome == "running" {
        return format!("#{n} {at} running");
    }
    let took = r
        .get("duration_ms")
        .and_then(Value::as_i64)
        .map(|d| format!(" {:.1}s", d as f64 / 1000.0))
        .unwrap_or_default();
    let exit = r
        .get("exit_code")
        .and_then(Value::as_i64)
        .map_or_else(|| format!(" {outcome}"), |c| format!(" exit {c}"));
    format!("#{n} {at}{took}{exit}")
}
