//! `backup verify`: restore a backup into a scratch instance — a fresh `redis-server` or
//! `postgres` on an ephemeral port in a temporary directory — and run a check against it.
//! The scratch server is this process's child in its own process group, stopped (and
//! its directory removed) when the check is done, or when this is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use orchestra_manifest::{BackupKind, BackupSpec};
use serde::Serialize;

use crate::engine::run_in;
use crate::{BackupError, Entry, Result};

/// How long a scratch server may take to come up.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// What a verification found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The backup checked.
    pub backup: String,
    /// The check run against the scratch instance.
    pub check: String,
    /// What it printed (trimmed).
    pub output: String,
    /// A one-line summary, e.g. `3 keys` or `2 tables: public.a, public.b`.
    pub summary: String,
}

/// Restore `payload` (the backup's decrypted bytes) into a scratch instance of the
/// backup's kind and run the block's `verify:` argv (`${PORT}` is the scratch port), else
/// the kind's own check. A `kind: command` backup has no scratch server: `verify:` gets
/// the backup on stdin.
pub async fn verify(spec: &BackupSpec, entry: &Entry, payload: &[u8]) -> Result<Report> {
    let dir = tempfile::Builder::new()
        .prefix("orchestra-verify")
        .tempdir()
        .map_err(|e| BackupError::io("create", std::env::temp_dir(), e))?;
    let env = BTreeMap::new();
    let (check, output, summary) = match &spec.kind {
        BackupKind::Redis => redis(spec, dir.path(), payload).await?,
        BackupKind::Postgres { database, all, .. } => {
            postgres(spec, dir.path(), payload, database, *all).await?
        }
        BackupKind::Command { .. } => match &spec.verify {
            Some(argv) => {
                let out = run_in(argv, dir.path(), &env, Some(payload), None).await?;
                let text = String::from_utf8_lossy(&out).trim().to_owned();
                (
                    argv.join(" "),
                    text,
                    "the verify command accepted the backup".into(),
                )
            }
            None => (
                String::new(),
                String::new(),
                "checksum matches (no `verify:` command to run for kind: command)".into(),
            ),
        },
    };
    Ok(Report {
        backup: entry.id.clone(),
        check,
        output,
        summary,
    })
}

async fn redis(spec: &BackupSpec, dir: &Path, payload: &[u8]) -> Result<(String, String, String)> {
    let rdb = dir.join("dump.rdb");
    std::fs::write(&rdb, payload).map_err(|e| BackupError::io("write", &rdb, e))?;
    let port = free_port()?;
    let p = port.to_string();
    let d = dir.display().to_string();
    let argv = strings(&[
        "redis-server",
        "--port",
        &p,
        "--bind",
        "127.0.0.1",
        "--dir",
        &d,
        "--dbfilename",
        "dump.rdb",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]);
    let mut server = Server::spawn(&argv, dir, None)?;
    let ping = strings(&["redis-cli", "-h", "127.0.0.1", "-p", &p, "ping"]);
    server
        .wait_until(dir, &ping, |out| out.trim() == "PONG")
        .await?;
    let check = spec
        .verify
        .as_ref()
        .map(|v| expand(v, port))
        .unwrap_or_else(|| strings(&["redis-cli", "-h", "127.0.0.1", "-p", &p, "DBSIZE"]));
    let res = run_in(&check, dir, &port_env(port), None, None).await;
    server.stop().await;
    let text = String::from_utf8_lossy(&res?).trim().to_owned();
    let summary = if spec.verify.is_none() {
        format!("{text} keys")
    } else {
        "the verify command passed".into()
    };
    Ok((check.join(" "), text, summary))
}

async fn postgres(
    spec: &BackupSpec,
    dir: &Path,
    payload: &[u8],
    database: &str,
    all: bool,
) -> Result<(String, String, String)> {
    let as_postgres = nix::unistd::geteuid().is_root();
    let data = dir.join("data");
    if as_postgres {
        // Postgres refuses to run as root: the scratch cluster belongs to `postgres`.
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or_else(|| {
                BackupError::Service(
                    "running as root, and there is no `postgres` user to run the scratch server as"
                        .into(),
                )
            })?;
        nix::unistd::chown(dir, Some(user.uid), Some(user.gid))
            .map_err(|e| BackupError::io("chown", dir, e.into()))?;
    }
    let wrap = |argv: Vec<String>| -> Vec<String> {
        if as_postgres {
            let mut v = strings(&["runuser", "-u", "postgres", "--"]);
            v.extend(argv);
            v
        } else {
            argv
        }
    };
    let env = BTreeMap::new();
    let initdb = pg_bin("initdb");
    run_in(
        &wrap(strings(&[
            &initdb,
            "-D",
            &data.display().to_string(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ])),
        dir,
        &env,
        None,
        None,
    )
    .await?;
    let port = free_port()?;
    let p = port.to_string();
    let argv = wrap(strings(&[
        &pg_bin("postgres"),
        "-D",
        &data.display().to_string(),
        "-k",
        &dir.display().to_string(),
        "-p",
        &p,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
    ]));
    let mut server = Server::spawn(&argv, dir, Some(nix::sys::signal::Signal::SIGINT))?;
    let psql = |db: &str, sql: &str| {
        strings(&[
            "psql",
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ])
    };
    let ready = psql("postgres", "SELECT 1");
    let res = async {
        server.wait_until(dir, &ready, |out| out.trim() == "1").await?;
        let file = dir.join("backup");
        std::fs::write(&file, payload).map_err(|e| BackupError::io("write", &file, e))?;
        let f = file.display().to_string();
        let restore = if all {
            strings(&["psql", "-X", "-q", "-h", "127.0.0.1", "-p", &p, "-U", "postgres", "-d", "postgres", "-f", &f])
        } else {
            // A fresh cluster has `postgres` already; any other database is made first.
            if database != "postgres" {
                let create = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
                run_in(&psql("postgres", &create), dir, &env, None, None).await?;
            }
            strings(&[
                "pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "-h", "127.0.0.1", "-p",
                &p, "-U", "postgres", "-d", database, &f,
            ])
        };
        run_in(&restore, dir, &env, None, None).await?;
        let check = match &spec.verify {
            Some(v) => expand(v, port),
            None if all => psql("postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"),
            None => psql(
                database,
                "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            ),
        };
        let out = run_in(&check, dir, &port_env(port), None, None).await?;
        Ok::<_, BackupError>((check, String::from_utf8_lossy(&out).trim().to_owned()))
    }
    .await;
    server.stop().await;
    let (check, text) = res?;
    let summary = if spec.verify.is_some() {
        "the verify command passed".into()
    } else {
        let items: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        let what = if all { "databases" } else { "tables" };
        format!("{} {what}: {}", items.len(), items.join(", "))
    };
    Ok((check.join(" "), text, summary))
}

/// A postgres server binary: on PATH, else the newest in /usr/lib/postgresql/*/bin.
fn pg_bin(name: &str) -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()));
    if on_path {
        return name.to_owned();
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin").join(name);
            bin.is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, p)| p.display().to_string())
        .unwrap_or_else(|| name.to_owned())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn expand(argv: &[String], port: u16) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace("${PORT}", &port.to_string()))
        .collect()
}

fn port_env(port: u16) -> BTreeMap<String, String> {
    BTreeMap::from([("PORT".to_owned(), port.to_string())])
}

/// A port that was free a moment ago (the scratch server binds it next).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BackupError::io("bind", "127.0.0.1:0", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| BackupError::io("bind", "127.0.0.1:0", e))
}

/// A scratch server: the leader of its own process group, killed with it.
struct Server {
    child: Option<tokio::process::Child>,
    pgid: nix::unistd::Pid,
    log: PathBuf,
    stop_signal: nix::sys::signal::Signal,
}

impl Server {
    fn spawn(argv: &[String], dir: &Path, stop: Option<nix::sys::signal::Signal>) -> Result<Self> {
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).map_err(|e| BackupError::io("create", &log, e))?;
        let err = out
            .try_clone()
            .map_err(|e| BackupError::io("create", &log, e))?;
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| BackupError::Service("empty command".into()))?;
        let child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BackupError::Spawn {
                program: program.clone(),
                source,
            })?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| BackupError::Service(format!("`{program}` exited at once")))?;
        Ok(Server {
            child: Some(child),
            pgid: nix::unistd::Pid::from_raw(pid),
            log,
            stop_signal: stop.unwrap_or(nix::sys::signal::Signal::SIGTERM),
        })
    }

    /// Poll `probe` until `ok` says its output is right, the server exits, or the deadline.
    async fn wait_until(
        &mut self,
        dir: &Path,
        probe: &[String],
        ok: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        let env = BTreeMap::new();
        loop {
            if let Ok(out) = run_in(probe, dir, &env, None, None).await
                && ok(&String::from_utf8_lossy(&out))
            {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(BackupError::Service(format!(
                    "the scratch server exited ({status}) before it was ready; it printed:\n{}",
                    self.tail()
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackupError::Service(format!(
                    "the scratch server was not ready within {}s; it printed:\n{}",
                    START_DEADLINE.as_secs(),
                    self.tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Its stop signal to the group, then SIGKILL after 10 s; reaped either way.
    async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = nix::sys::signal::killpg(self.pgid, self.stop_signal);
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = nix::sys::signal::killpg(self.pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait().await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = nix::sys::signal::killpg(self.pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
