//! The daemon's side of backups: it knows each running service's port and environment,
//! so `backup run`, `backup restore` and the restore points of deploys go through it.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | /v1/backups/{service} | take a backup now |
//! | POST | /v1/backups/{service}/restore?from=ID | restore one (default: the newest) |
//!
//! A restore checks the backup's sum (and decrypts it) before anything is stopped; it
//! holds the service's running dependents (stopped, dependents first) while the data
//! changes, and starts them again afterwards, whatever the outcome.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use orchestra_backup::engine::{self, Job, Taken, Target};
use orchestra_backup::{BackupError, Entry, catalog};
use orchestra_manifest::{BackupKind, BackupSpec};
use orchestra_runtime::Runtime;
use orchestra_runtime::status::Settled;
use serde::Deserialize;
use serde_json::json;

use crate::daemon::Shared;

/// How long a restored service (and each held dependent) may take to become healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(120);

/// The backup routes (merged into the control API).
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/v1/backups/{service}", post(run))
        .route("/v1/backups/{service}/restore", post(restore))
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

fn failed(e: &BackupError) -> Response {
    let code = match e {
        BackupError::NotConfigured(_)
        | BackupError::NoBackups { .. }
        | BackupError::UnknownBackup { .. } => StatusCode::NOT_FOUND,
        BackupError::Checksum { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error(code, e.to_string())
}

async fn run(State(s): State<Shared>, Path(service): Path<String>) -> Response {
    match take(&s.runtime, &service, None).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Debug, Deserialize)]
struct RestoreQuery {
    from: Option<String>,
}

async fn restore(
    State(s): State<Shared>,
    Path(service): Path<String>,
    Query(q): Query<RestoreQuery>,
) -> Response {
    match restore_service(&s.runtime, &service, q.from.as_deref()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failed(&e),
    }
}

/// The service's `backup:` block and backup directory.
fn spec_of(rt: &Runtime, service: &str) -> Result<(BackupSpec, PathBuf), BackupError> {
    let m = rt.manifest();
    let svc = m
        .service(service)
        .ok_or_else(|| BackupError::Service(format!("no service `{service}` in this platform")))?;
    let spec = svc
        .backup
        .clone()
        .ok_or_else(|| BackupError::NotConfigured(service.to_owned()))?;
    let dir = catalog::dir_for(&m.dir, service, &spec);
    Ok((spec, dir))
}

/// Where the running service is: its live revision's first replica's port, and that
/// revision's environment.
fn target_of(rt: &Runtime, service: &str) -> Result<Target, BackupError> {
    let not_running = || {
        BackupError::Service(format!(
            "`{service}` is not running; start it (`orchestra start {service}`) and try again"
        ))
    };
    let key = rt.live_key(service).ok_or_else(not_running)?;
    let st = rt.instance(&key).ok_or_else(not_running)?;
    let port = st
        .replicas
        .iter()
        .find(|r| r.healthy)
        .and_then(|r| r.port)
        .ok_or_else(not_running)?;
    let def = rt.instance_def(&key).ok_or_else(not_running)?;
    let p = port.to_string();
    let env = def
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("${PORT}", &p)))
        .collect();
    let cwd = def
        .working_dir
        .clone()
        .unwrap_or_else(|| rt.manifest().dir.clone());
    Ok(Target { port, env, cwd })
}

/// Take a backup of the running `service` now (encrypted to the project's age recipients
/// when it has any), then apply its retention.
pub async fn take(rt: &Runtime, service: &str, release: Option<i64>) -> Result<Taken, BackupError> {
    let (spec, dir) = spec_of(rt, service)?;
    let target = target_of(rt, service)?;
    let store = orchestra_secrets::Store::open(orchestra_secrets::store_dir(&rt.manifest().dir));
    let recipients = store.recipients()?;
    let job = Job {
        service,
        spec: &spec,
        dir,
        recipients,
        release,
    };
    engine::take(&job, &target, orchestra_clock::now_ms()).await
}

/// Running services that depend on `service`, directly or not, in start order.
fn dependents(rt: &Runtime, service: &str) -> Vec<String> {
    let plan = rt.plan();
    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![service.to_owned()];
    while let Some(s) = frontier.pop() {
        for (name, edges) in &plan.deps {
            if edges.iter().any(|e| e.service == s) && held.insert(name.clone()) {
                frontier.push(name.clone());
            }
        }
    }
    plan.order
        .iter()
        .filter(|n| held.contains(*n))
        .filter(|n| {
            rt.service(n)
                .is_some_and(|st| st.replicas.iter().any(|r| r.pid.is_some() || r.healthy))
        })
        .cloned()
        .collect()
}

async fn healthy(rt: &Runtime, service: &str) -> Result<(), String> {
    let Some(key) = rt.live_key(service) else {
        return Err(format!("`{service}` has no live revision"));
    };
    match tokio::time::timeout(HEALTHY_WITHIN, rt.instance_settled(&key)).await {
        Ok(Settled::Up) => Ok(()),
        Ok(_) => {
            let reason = rt.instance(&key).map(|s| s.reason).unwrap_or_default();
            Err(format!("`{service}` did not become healthy: {reason}"))
        }
        Err(_) => Err(format!(
            "`{service}` did not become healthy within {}s",
            HEALTHY_WITHIN.as_secs()
        )),
    }
}

/// Restore `service` from a backup (`from`, else the newest): the sum is checked first, the
/// running dependents are held meanwhile, and the service is gated on its health after.
pub async fn restore_service(
    rt: &Runtime,
    service: &str,
    from: Option<&str>,
) -> Result<serde_json::Value, BackupError> {
    let (spec, dir) = spec_of(rt, service)?;
    let entries = catalog::list(&dir)?;
    let entry: Entry = catalog::select(&entries, service, &dir, from)?.clone();
    // Checked and decrypted before anything stops: a bad backup changes nothing.
    let payload = engine::payload(&dir, &entry, || {
        let key = orchestra_secrets::default_key_path()?;
        Ok(orchestra_secrets::Identity::load(&key)?)
    })?;
    let target = target_of(rt, service)?;
    // Asked while the server runs: the file a restart reads.
    let rdb = match spec.kind {
        BackupKind::Redis => Some(engine::redis_rdb_path(&target).await?),
        _ => None,
    };
    let held = dependents(rt, service);
    for d in held.iter().rev() {
        rt.stop_service(d)
            .await
            .map_err(|e| BackupError::Service(format!("cannot hold `{d}`: {e}")))?;
    }
    let outcome = match &spec.kind {
        BackupKind::Redis => restore_rdb(rt, service, rdb.as_deref(), &payload).await,
        BackupKind::Postgres { .. } => {
            engine::postgres_restore(&spec.kind, &target, &payload).await
        }
        BackupKind::Command { restore, .. } => {
            engine::command_restore(restore, &target, &payload).await
        }
    };
    let mut notes = Vec::new();
    for d in &held {
        match rt.start_service(d) {
            Ok(_) => {
                if let Err(e) = healthy(rt, d).await {
                    notes.push(e);
                }
            }
            Err(e) => notes.push(format!("cannot start `{d}` again: {e}")),
        }
    }
    outcome?;
    Ok(json!({
        "service": service,
        "backup": entry.id,
        "kind": entry.kind,
        "created_at_ms": entry.created_at_ms,
        "held": held,
        "notes": notes,
    }))
}

/// Redis: stop, put the RDB in place, start, gate on health; a restored file that does not
/// come up is swapped back for the one it replaced, and the server started on that.
async fn restore_rdb(
    rt: &Runtime,
    service: &str,
    rdb: Option<&std::path::Path>,
    payload: &[u8],
) -> Result<(), BackupError> {
    let Some(rdb) = rdb else {
        return Err(BackupError::Service("no RDB path".into()));
    };
    let svc_err = |e: orchestra_runtime::ControlError| BackupError::Service(e.to_string());
    rt.stop_service(service).await.map_err(svc_err)?;
    let kept = match engine::install_file(rdb, payload) {
        Ok(k) => k,
        Err(e) => {
            rt.start_service(service).map_err(svc_err)?;
            return Err(e);
        }
    };
    rt.start_service(service).map_err(svc_err)?;
    match healthy(rt, service).await {
        Ok(()) => {
            if let Some(k) = kept {
                let _ = std::fs::remove_file(k);
            }
            Ok(())
        }
        Err(why) => {
            rt.stop_service(service).await.map_err(svc_err)?;
            engine::undo_install(rdb, kept.as_deref())?;
            rt.start_service(service).map_err(svc_err)?;
            let back = healthy(rt, service)
                .await
                .err()
                .unwrap_or_else(|| "it is healthy again".into());
            Err(BackupError::Service(format!(
                "the restored data did not come up ({why}); the previous RDB file is back in place and `{service}` was started on it: {back}"
            )))
        }
    }
}

/// Restore points for deploys: a backup through this daemon's runtime.
pub struct DaemonRestorePoints(pub Runtime);

impl orchestra_deploy::RestorePoints for DaemonRestorePoints {
    fn take(
        &self,
        service: String,
        release: i64,
    ) -> orchestra_deploy::restore_points::BoxFuture<Result<orchestra_deploy::RestorePoint, String>>
    {
        let rt = self.0.clone();
        Box::pin(async move {
            let t = take(&rt, &service, Some(release))
                .await
                .map_err(|e| e.to_string())?;
            Ok(orchestra_deploy::RestorePoint {
                service,
                backup: t.entry.id,
                kind: t.entry.kind,
            })
        })
    }
}

/// Hand the deployer its restore-point taker.
pub fn install(deployer: &orchestra_deploy::Deployer, rt: &Runtime) {
    deployer.set_restore_points(Arc::new(DaemonRestorePoints(rt.clone())));
}
