//! `orchestra deploy`, `rollback`, `history`: the client side of releases.
//! Definitions are interpolated here, with this shell's environment — so
//! `DEMO_VERSION=v2 orchestra deploy api` ships what that variable says.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use orchestra_runtime::logs::format_ts;
use orchestra_state::ReleaseStatus;
use serde_json::{Value, json};

use crate::args::{DeployArgs, HistoryArgs, RollbackArgs};
use crate::project;

/// `orchestra deploy`
pub async fn deploy(file: Option<&Path>, a: &DeployArgs) -> anyhow::Result<ExitCode> {
    let Some(mut m) = project::load_or_report(file, a.environment.as_deref())? else {
        return Ok(ExitCode::FAILURE);
    };
    let c = crate::control::client(file)?;
    let status = c.get("/v1/status").await?;
    let running: Vec<String> = status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    for name in &a.services {
        if m.service(name).is_none() {
            anyhow::bail!("no service `{name}` in {}", m.file.display());
        }
        if m.service(name).is_some_and(|s| s.schedule.is_some()) {
            anyhow::bail!(
                "`{name}` is a scheduled job: the daemon reads its definition when it starts; run `orchestra down` then `orchestra up` to change it"
            );
        }
        if !running.contains(name) {
            anyhow::bail!("`{name}` is not running in this platform; start it with `orchestra up`");
        }
    }
    // The latest version of each secret: a rotated secret makes a new revision.
    let names: Vec<String> = m
        .services
        .iter()
        .filter(|s| running.contains(&s.name))
        .filter(|s| a.services.is_empty() || a.services.contains(&s.name))
        .map(|s| s.name.clone())
        .collect();
    let store = orchestra_secrets::Store::open(orchestra_secrets::store_dir(&m.dir));
    if let Err(diags) = crate::inject::inject(&mut m, &store, &names, || {
        let path = orchestra_secrets::default_key_path().map_err(|e| e.to_string())?;
        orchestra_secrets::Identity::load(&path).map_err(|e| e.to_string())
    }) {
        eprint!("{}", project::render_diagnostics(&diags));
        return Ok(ExitCode::FAILURE);
    }
    let defs: Vec<&orchestra_manifest::Service> = m
        .services
        .iter()
        .filter(|s| running.contains(&s.name))
        .filter(|s| a.services.is_empty() || a.services.contains(&s.name))
        .collect();
    let body = json!({ "services": defs, "strategy": a.strategy });
    let started = c.post_json("/v1/deploy", &body).await?;
    let mut releases: BTreeMap<i64, String> = BTreeMap::new();
    let mut refused = false;
    for s in started.as_array().into_iter().flatten() {
        let svc = s["service"].as_str().unwrap_or("?");
        let result = s["result"].as_str().unwrap_or("?");
        match s["release"].as_i64() {
            Some(id) => {
                println!("{svc}: release {id} started");
                releases.insert(id, svc.to_owned());
            }
            None if result == "unchanged" => {
                if !a.services.is_empty() {
                    println!("{svc}: unchanged (revision already live)");
                }
            }
            None => {
                refused = true;
                eprintln!("{svc}: {result}");
            }
        }
    }
    if releases.is_empty() && !refused {
        println!("nothing to deploy: every service runs its current definition");
    }
    if !a.wait || releases.is_empty() {
        return Ok(if refused {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let mut failed = refused;
    let mut last_line: BTreeMap<String, (String, std::time::Instant)> = BTreeMap::new();
    while !releases.is_empty() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(routes) = c.get("/v1/routes").await {
            for r in routes["routes"].as_array().into_iter().flatten() {
                let svc = r["service"].as_str().unwrap_or_default().to_owned();
                if !releases.values().any(|s| *s == svc) {
                    continue;
                }
                let (head, line) = progress_line(r);
                let due = last_line
                    .get(&svc)
                    .is_none_or(|(h, at)| *h != head || at.elapsed() >= Duration::from_secs(2));
                if due {
                    println!("{svc}: {line}");
                    last_line.insert(svc, (head, std::time::Instant::now()));
                }
            }
        }
        let all = c.get("/v1/releases?limit=200").await?;
        for r in all.as_array().into_iter().flatten() {
            let (Some(id), Some(st)) = (
                r["id"].as_i64(),
                r["status"].as_str().and_then(ReleaseStatus::parse),
            ) else {
                continue;
            };
            // Live is settled too: the switch is done, the watch goes on.
            if releases.contains_key(&id) && st.is_settled() {
                let svc = releases.remove(&id).unwrap_or_default();
                let reason = r["reason"].as_str().unwrap_or_default();
                let ok = matches!(st, ReleaseStatus::Live | ReleaseStatus::Succeeded);
                failed |= !ok;
                if ok {
                    println!("✓ {svc}: release {id} {st}: {reason}");
                } else {
                    eprintln!("✗ {svc}: release {id} {st}: {reason}");
                    let figures = &r["figures"];
                    if figures.get("canary").is_some() {
                        eprintln!(
                            "  canary: {}\n  stable: {}",
                            fig(&figures["canary"]),
                            fig(&figures["stable"])
                        );
                    }
                    for p in figures["probes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .rev()
                        .take(3)
                    {
                        eprintln!("  probe: {}", p.as_str().unwrap_or_default());
                    }
                    let logs = figures["logs"].as_array().cloned().unwrap_or_default();
                    if !logs.is_empty() {
                        eprintln!("  last log lines:");
                        for l in logs.iter().rev().take(10).rev() {
                            eprintln!("    {}", l.as_str().unwrap_or_default());
                        }
                    }
                    if let Some(report) = r["figures"].get("report").filter(|v| !v.is_null())
                        && let Ok(rep) = serde_json::from_value::<
                            orchestra_runtime::status::FailureReport,
                        >(report.clone())
                    {
                        eprint!("{}", rep.render());
                    }
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `N requests, M failed (x%), p99 Yms` from a figures object; `p99_ms` is
/// the proxy's live form, `p99` (a serialized Duration) the verifier's window.
fn fig(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    let req = v["requests"].as_u64().unwrap_or(0);
    let err = v["errors"].as_u64().unwrap_or(0);
    let rate = if req == 0 {
        0.0
    } else {
        err as f64 * 100.0 / req as f64
    };
    let p99 = v["p99_ms"].as_f64().unwrap_or_else(|| {
        v["p99"]["secs"].as_f64().unwrap_or(0.0) * 1000.0
            + v["p99"]["nanos"].as_f64().unwrap_or(0.0) / 1e6
    });
    format!("{req} requests, {err} failed ({rate:.1}%), p99 {p99:.1}ms")
}

fn progress_line(r: &Value) -> (String, String) {
    let head = format!("{}|{}", r["stable"], r["canary"]);
    let line = match r["canary"].as_object() {
        Some(c) => format!(
            "canary {} at {}% — canary {} | stable {} {}",
            c.get("revision").and_then(Value::as_str).unwrap_or("?"),
            c.get("weight").and_then(Value::as_u64).unwrap_or(0),
            fig(&r["stats"]["canary"]),
            r["stable"].as_str().unwrap_or("?"),
            fig(&r["stats"]["stable"]),
        ),
        None => format!(
            "100% on {} — {}",
            r["stable"].as_str().unwrap_or("?"),
            fig(&r["stats"]["stable"])
        ),
    };
    (head, line)
}

/// `orchestra rollback`
pub async fn rollback(file: Option<&Path>, a: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let c = crate::control::client(file)?;
    let mut path = format!("/v1/services/{}/rollback", a.service);
    if let Some(to) = &a.to {
        path.push_str(&format!("?to={to}"));
    }
    // The release rolled back, read before the rollback adds its own.
    let points = crate::restore_point::of_last_release(&c, &a.service).await?;
    let r = c.post(&path).await?;
    let result = r["result"].as_str().unwrap_or_default();
    println!("{}: {result}", a.service);
    if result.starts_with("rollback failed") {
        return Ok(ExitCode::FAILURE);
    }
    crate::restore_point::after_rollback(file, &a.service, points, a.restore_data).await
}

/// `orchestra history`
pub async fn history(file: Option<&Path>, a: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let c = crate::control::client(file)?;
    let mut path = "/v1/releases?limit=100".to_owned();
    if let Some(s) = &a.service {
        path.push_str(&format!("&service={s}"));
    }
    let r = c.get(&path).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>4}  {:10} {:10} {:27} {:12} {:24} {:>8}  REASON",
        "ID", "SERVICE", "STRATEGY", "FROM -> TO", "STATUS", "STARTED", "TOOK"
    );
    let all: Vec<&Value> = r.as_array().into_iter().flatten().collect();
    for (i, rel) in all.iter().enumerate() {
        let started = rel["started_at_ms"].as_i64().unwrap_or(0);
        let took = rel["ended_at_ms"]
            .as_i64()
            .map(|e| format!("{:.1}s", (e - started) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>4}  {:10} {:10} {:27} {:12} {:24} {:>8}  {}",
            rel["id"].as_i64().unwrap_or(0),
            rel["service"].as_str().unwrap_or(""),
            rel["strategy"].as_str().unwrap_or(""),
            format!(
                "{} -> {}",
                rel["from_revision"].as_str().unwrap_or("-"),
                rel["to_revision"].as_str().unwrap_or("")
            ),
            rel["status"].as_str().unwrap_or(""),
            format_ts(started),
            took,
            rel["reason"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or(""),
        );
        // Secret changes beside definition changes: against the service's previous release.
        let before = all[i + 1..]
            .iter()
            .find(|r| r["service"] == rel["service"])
            .map(|r| &r["secrets"]);
        if let Some(line) = secret_changes(&rel["secrets"], before) {
            println!("{:>4}  {line}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `secrets: MODEL_TOKEN v2 -> v3, DB_PASSWORD v1` when a release's secret versions
/// differ from those of the one before it.
fn secret_changes(now: &Value, before: Option<&Value>) -> Option<String> {
    let now = now.as_object().filter(|m| !m.is_empty())?;
    let mut parts = Vec::new();
    for (name, v) in now {
        match before.and_then(|b| b.get(name)) {
            Some(old) if old == v => {}
            Some(old) => parts.push(format!("{name} v{old} -> v{v}")),
            None => parts.push(format!("{name} v{v}")),
        }
    }
    (!parts.is_empty()).then(|| format!("secrets: {}", parts.join(", ")))
}
