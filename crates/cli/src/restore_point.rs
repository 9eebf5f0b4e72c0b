//! `orchestra rollback`'s data side: the restore point (backups taken before a release's
//! migrations, `deploy.backup_before`) of the release rolled back, named in the output
//! and restored with `--restore-data`.

use std::path::Path;
use std::process::ExitCode;

use orchestra_server::client::Client;

/// A release's restore point: (release id, [(service, backup id)]).
pub type Points = Option<(i64, Vec<(String, String)>)>;

/// The restore points of the newest release of `service` that was not itself a rollback.
pub async fn of_last_release(c: &Client, service: &str) -> anyhow::Result<Points> {
    let all = c
        .get(&format!("/v1/releases?service={service}&limit=50"))
        .await?;
    let Some(rel) = all
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["strategy"].as_str() != Some("rollback"))
    else {
        return Ok(None);
    };
    let points: Vec<(String, String)> = rel["restore_points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["service"].as_str()?.to_owned(),
                p["backup"].as_str()?.to_owned(),
            ))
        })
        .collect();
    Ok((!points.is_empty()).then(|| (rel["id"].as_i64().unwrap_or(0), points)))
}

/// Say what the restore point is, and restore it when asked.
pub async fn after_rollback(
    file: Option<&Path>,
    service: &str,
    points: Points,
    restore_data: bool,
) -> anyhow::Result<ExitCode> {
    let Some((release, points)) = points else {
        if restore_data {
            eprintln!(
                "{service}: the release rolled back has no restore point (no `deploy.backup_before`); no data was restored"
            );
            return Ok(ExitCode::FAILURE);
        }
        return Ok(ExitCode::SUCCESS);
    };
    for (svc, id) in &points {
        println!(
            "restore point of release {release}: {svc} backup {id} (taken before its migrations)"
        );
    }
    if !restore_data {
        println!(
            "data not restored; `orchestra rollback {service} --restore-data` restores it (`orchestra backup restore SERVICE --from ID` for one service)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (svc, id) in &points {
        let code = crate::backup::restore(file, svc, Some(id), false).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}
