//! `orchestra backup`: take, list, restore and verify backups of data services.
//! `run` and `restore` go through the daemon (it knows the running instance's port and
//! environment, and holds dependents); `list` and `verify` read the catalog directly.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use orchestra_backup::{catalog, engine, scratch};
use orchestra_server::client::Client;
use serde_json::{Value, json};

use crate::project;

const BACKUP_HELP: &str = "\
A service with a `backup:` block can be backed up and restored:

  redis:
    command: [redis-server, --port, \"${PORT}\", --dir, ./data/redis, --save, \"\"]
    backup: { kind: redis, keep: 7 }          # redis | postgres | command

Backups go to `backup.dir` (default .orchestra/backups/<service>/ beside the manifest),
one file per backup with a catalog entry (ID.json) holding its sha256. When the project
has age recipients (secrets/recipients.txt) every backup is encrypted to them.

Examples:
  orchestra backup run redis                  # now, from the running instance
  orchestra backup list redis --json
  orchestra backup verify redis               # restore into a scratch server, check it
  orchestra backup restore redis --from 20261202T030000.000Z";

/// `orchestra backup ...`
#[derive(Debug, Args)]
#[command(after_help = BACKUP_HELP)]
pub struct BackupArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BackupCommand,
}

/// `orchestra backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up a running service now (then apply its retention).
    Run(RunArgs),
    /// The service's backups: id, time, size, sha256, encrypted, kind.
    List(ListArgs),
    /// Stop, restore, start (gated on health), with the service's dependents held meanwhile.
    Restore(FromArgs),
    /// Restore into a scratch instance on an ephemeral port and check it; nothing running is touched.
    Verify(FromArgs),
}

/// `backup run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The service.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// Print the new catalog entry as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `backup list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The service.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// Print the catalog entries as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `backup restore` / `backup verify`
#[derive(Debug, Args)]
pub struct FromArgs {
    /// The service.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// The backup's id (default: the newest).
    #[arg(long, value_name = "ID")]
    pub from: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `orchestra backup`
pub async fn run(file: Option<&Path>, a: BackupArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        BackupCommand::Run(r) => take(file, &r).await,
        BackupCommand::List(l) => list(file, &l),
        BackupCommand::Restore(f) => restore(file, &f.service, f.from.as_deref(), f.json).await,
        BackupCommand::Verify(f) => verify(file, &f).await,
    }
}

async fn take(file: Option<&Path>, a: &RunArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&project::project_paths(file)?.socket);
    let r = c.post(&format!("/v1/backups/{}", a.service)).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let e = &r["entry"];
    println!(
        "✓ {}: backup {} ({}, {}, sha256 {})",
        a.service,
        e["id"].as_str().unwrap_or("?"),
        size(e["size"].as_u64().unwrap_or(0)),
        if e["encrypted"].as_bool().unwrap_or(false) {
            "encrypted"
        } else {
            "not encrypted"
        },
        e["sha256"].as_str().unwrap_or("?"),
    );
    for id in r["removed"].as_array().into_iter().flatten() {
        println!("  retention removed {}", id.as_str().unwrap_or("?"));
    }
    Ok(ExitCode::SUCCESS)
}

fn spec_and_dir(
    file: Option<&Path>,
    service: &str,
) -> anyhow::Result<Option<(orchestra_manifest::BackupSpec, std::path::PathBuf)>> {
    let Some(m) = project::load_or_report(file, None)? else {
        return Ok(None);
    };
    let svc = m
        .service(service)
        .ok_or_else(|| anyhow::anyhow!("no service `{service}` in {}", m.file.display()))?;
    let spec = svc
        .backup
        .clone()
        .ok_or_else(|| orchestra_backup::BackupError::NotConfigured(service.to_owned()))?;
    let dir = catalog::dir_for(&m.dir, service, &spec);
    Ok(Some((spec, dir)))
}

fn list(file: Option<&Path>, a: &ListArgs) -> anyhow::Result<ExitCode> {
    let Some((_, dir)) = spec_and_dir(file, &a.service)? else {
        return Ok(ExitCode::FAILURE);
    };
    let entries = catalog::list(&dir)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "dir": dir, "backups": entries }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no backups of {} in {}", a.service, dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:26} {:20} {:>10}  {:9} {:8} {:16} NOTE",
        "ID", "TIME", "SIZE", "ENCRYPTED", "KIND", "SHA256"
    );
    for e in entries.iter().rev() {
        let note = e
            .release
            .map(|r| format!("restore point of release {r}"))
            .unwrap_or_default();
        println!(
            "{:26} {:20} {:>10}  {:9} {:8} {:16} {note}",
            e.id,
            orchestra_clock::format_secs(e.created_at_ms),
            size(e.size),
            if e.encrypted { "yes" } else { "no" },
            e.kind,
            &e.sha256[..e.sha256.len().min(16)],
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup restore` (and `rollback --restore-data`): through the daemon.
pub async fn restore(
    file: Option<&Path>,
    service: &str,
    from: Option<&str>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let c = Client::new(&project::project_paths(file)?.socket);
    let mut path = format!("/v1/backups/{service}/restore");
    if let Some(id) = from {
        path.push_str(&format!("?from={id}"));
    }
    let r = c.post(&path).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let held: Vec<&str> = r["held"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "✓ {service}: restored backup {} ({}){}",
        r["backup"].as_str().unwrap_or("?"),
        orchestra_clock::format_secs(r["created_at_ms"].as_i64().unwrap_or(0)),
        if held.is_empty() {
            String::new()
        } else {
            format!("; held and started again: {}", held.join(", "))
        },
    );
    for n in r["notes"].as_array().into_iter().flatten() {
        eprintln!("  ! {}", n.as_str().unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(file: Option<&Path>, a: &FromArgs) -> anyhow::Result<ExitCode> {
    let Some((spec, dir)) = spec_and_dir(file, &a.service)? else {
        return Ok(ExitCode::FAILURE);
    };
    let entries = catalog::list(&dir)?;
    let entry = catalog::select(&entries, &a.service, &dir, a.from.as_deref())?;
    let payload = engine::payload(&dir, entry, || {
        let key = orchestra_secrets::default_key_path()?;
        Ok(orchestra_secrets::Identity::load(&key)?)
    })?;
    let report = scratch::verify(&spec, entry, &payload).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "✓ {}: backup {} restores: {} (sha256 ok; checked with `{}`)",
        a.service, report.backup, report.summary, report.check
    );
    Ok(ExitCode::SUCCESS)
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
