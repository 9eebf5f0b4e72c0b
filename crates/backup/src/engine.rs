//! The edge: the tools that take and restore backups of a running service, and the
//! files they write. Every failure carries the tool's stderr; nothing here stops or
//! starts a service (the daemon does, around [`install_file`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use orchestra_manifest::{BackupKind, BackupSpec};
use orchestra_secrets::{Identity, Recipient, Zeroizing};
use tokio::io::AsyncWriteExt;

use crate::catalog::{self, Entry};
use crate::{BackupError, Result, retention};

/// Where the running service is reached: its port and environment (`${PORT}` filled).
#[derive(Debug, Clone)]
pub struct Target {
    /// The port the service's (first) replica listens on.
    pub port: u16,
    /// Its environment, which the tools get too (`PGPASSWORD`, `REDISCLI_AUTH`...).
    pub env: BTreeMap<String, String>,
    /// The directory the tools run in (the service's working directory).
    pub cwd: PathBuf,
}

impl Target {
    /// `argv` with `${PORT}` replaced by the port.
    pub fn expand(&self, argv: &[String]) -> Vec<String> {
        let port = self.port.to_string();
        argv.iter().map(|a| a.replace("${PORT}", &port)).collect()
    }
}

/// One backup to take.
#[derive(Debug)]
pub struct Job<'a> {
    /// The service.
    pub service: &'a str,
    /// Its `backup:` block.
    pub spec: &'a BackupSpec,
    /// Where its backups go ([`catalog::dir_for`]).
    pub dir: PathBuf,
    /// The project's age recipients; empty: the backup is stored in the clear.
    pub recipients: Vec<Recipient>,
    /// The release this is the restore point of.
    pub release: Option<i64>,
}

/// A backup taken, and what retention removed after it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Taken {
    /// The new backup.
    pub entry: Entry,
    /// Ids of the backups retention removed.
    pub removed: Vec<String>,
}

/// What a kind's backup file holds, and the extension it gets.
pub fn format_of(kind: &BackupKind) -> (&'static str, &'static str) {
    match kind {
        BackupKind::Redis => ("rdb", "rdb"),
        BackupKind::Postgres { all: false, .. } => ("pg_dump-custom", "dump"),
        BackupKind::Postgres { all: true, .. } => ("pg_dumpall-sql", "sql"),
        BackupKind::Command { .. } => ("stdout", "bak"),
    }
}

/// The command that writes the backup of `kind` to `out` (`None`: it writes to stdout).
pub fn dump_command(kind: &BackupKind, target: &Target, out: &Path) -> (Vec<String>, bool) {
    let port = target.port.to_string();
    let out = out.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    match kind {
        BackupKind::Redis => (
            s(&["redis-cli", "-h", "127.0.0.1", "-p", &port, "--rdb", &out]),
            false,
        ),
        BackupKind::Postgres {
            database,
            user,
            all: false,
        } => (
            s(&[
                "pg_dump",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                user,
                "-Fc",
                "-f",
                &out,
                database,
            ]),
            false,
        ),
        BackupKind::Postgres {
            user, all: true, ..
        } => (
            s(&[
                "pg_dumpall",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                user,
                "--clean",
                "--if-exists",
                "-f",
                &out,
            ]),
            false,
        ),
        BackupKind::Command { command, .. } => (target.expand(command), true),
    }
}

/// Take a backup of the running service now, record it, then apply retention.
pub async fn take(job: &Job<'_>, target: &Target, now_ms: i64) -> Result<Taken> {
    create_private_dir(&job.dir)?;
    let existing = catalog::list(&job.dir)?;
    let id = catalog::new_id(now_ms, &existing);
    let (format, ext) = format_of(&job.spec.kind);
    let partial = job.dir.join(format!(".{id}.partial"));
    let (argv, to_stdout) = dump_command(&job.spec.kind, target, &partial);
    let result = if to_stdout {
        run(&argv, target, None, Some(&partial)).await.map(|_| ())
    } else {
        run(&argv, target, None, None).await.map(|_| ())
    };
    let bytes = result
        .and_then(|()| std::fs::read(&partial).map_err(|e| BackupError::io("read", &partial, e)));
    let _ = std::fs::remove_file(&partial);
    let bytes = bytes?;
    if bytes.is_empty() {
        return Err(BackupError::Service(format!(
            "`{}` wrote an empty backup; nothing was recorded",
            argv.join(" ")
        )));
    }
    let encrypted = !job.recipients.is_empty();
    let file = if encrypted {
        format!("{id}.{ext}.age")
    } else {
        format!("{id}.{ext}")
    };
    let path = job.dir.join(&file);
    let stored = if encrypted {
        orchestra_secrets::encrypt_to(&job.recipients, &bytes, &path)?
    } else {
        bytes
    };
    orchestra_secrets::replace_file(&path, &stored, 0o600)?;
    let entry = Entry {
        id,
        service: job.service.to_owned(),
        kind: job.spec.kind.name().to_owned(),
        format: format.to_owned(),
        created_at_ms: now_ms,
        file,
        size: stored.len() as u64,
        sha256: catalog::sha256(&stored),
        encrypted,
        release: job.release,
    };
    catalog::write(&job.dir, &entry)?;
    let all = catalog::list(&job.dir)?;
    let mut removed = Vec::new();
    for old in retention::expired(&all, job.spec.keep, job.spec.keep_for, now_ms) {
        catalog::remove(&job.dir, old)?;
        removed.push(old.id.clone());
    }
    Ok(Taken { entry, removed })
}

/// The backup's bytes, decrypted: refused when its sum does not match the catalog.
/// `identity` is asked for only when the backup is encrypted.
pub fn payload(
    dir: &Path,
    entry: &Entry,
    identity: impl FnOnce() -> Result<Identity>,
) -> Result<Zeroizing<Vec<u8>>> {
    let file = catalog::checked(dir, entry)?;
    if entry.encrypted {
        let id = identity()?;
        Ok(orchestra_secrets::decrypt_file(&file, &id)?)
    } else {
        let bytes = std::fs::read(&file).map_err(|e| BackupError::io("read", &file, e))?;
        Ok(Zeroizing::new(bytes))
    }
}

/// Where the running redis server keeps its RDB file (`CONFIG GET dir` + `dbfilename`).
pub async fn redis_rdb_path(target: &Target) -> Result<PathBuf> {
    let get = |key: &'static str| {
        let argv: Vec<String> = [
            "redis-cli",
            "-h",
            "127.0.0.1",
            "-p",
            &target.port.to_string(),
            "--raw",
            "CONFIG",
            "GET",
            key,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        async move {
            let out = run(&argv, target, None, None).await?;
            let text = String::from_utf8_lossy(&out).into_owned();
            // `--raw` prints the key, then its value.
            text.lines()
                .nth(1)
                .map(str::to_owned)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    BackupError::Service(format!(
                        "redis did not answer `CONFIG GET {key}`: {}",
                        text.trim()
                    ))
                })
        }
    };
    let dir = get("dir").await?;
    let name = get("dbfilename").await?;
    Ok(Path::new(&dir).join(name))
}

/// Put `bytes` at `path` atomically (a temporary file beside it, renamed over it),
/// keeping the file it replaces as `path` + `.before-restore`, which is returned.
pub fn install_file(path: &Path, bytes: &[u8]) -> Result<Option<PathBuf>> {
    let keep = PathBuf::from(format!("{}.before-restore", path.display()));
    let had = match std::fs::rename(path, &keep) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(BackupError::io("move aside", path, e)),
    };
    if let Err(e) = orchestra_secrets::replace_file(path, bytes, 0o600) {
        if had {
            let _ = std::fs::rename(&keep, path);
        }
        return Err(e.into());
    }
    Ok(had.then_some(keep))
}

/// Put back the file [`install_file`] moved aside (a restore that did not come up).
pub fn undo_install(path: &Path, kept: Option<&Path>) -> Result<()> {
    match kept {
        Some(k) => std::fs::rename(k, path).map_err(|e| BackupError::io("put back", path, e)),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(BackupError::io("remove", path, e))
            }
            _ => Ok(()),
        },
    }
}

/// Restore a postgres dump into the running server: `pg_restore --clean --if-exists` in
/// one transaction (a failure changes nothing), or `psql` for a `pg_dumpall` script.
pub async fn postgres_restore(kind: &BackupKind, target: &Target, bytes: &[u8]) -> Result<()> {
    let BackupKind::Postgres {
        database,
        user,
        all,
    } = kind
    else {
        return Err(BackupError::Service("not a postgres backup".into()));
    };
    let tmp = tempfile::Builder::new()
        .prefix("orchestra-restore")
        .tempdir()
        .map_err(|e| BackupError::io("create", std::env::temp_dir(), e))?;
    let file = tmp.path().join("backup");
    std::fs::write(&file, bytes).map_err(|e| BackupError::io("write", &file, e))?;
    let port = target.port.to_string();
    let f = file.display().to_string();
    let argv: Vec<String> = if *all {
        vec![
            "psql",
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            user,
            "-d",
            "postgres",
            "-f",
            &f,
        ]
    } else {
        vec![
            "pg_restore",
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            user,
            "-d",
            database,
            &f,
        ]
    }
    .into_iter()
    .map(str::to_owned)
    .collect();
    run(&argv, target, None, None).await.map(|_| ())
}

/// Restore a `kind: command` backup: its `restore:` argv reads the backup on stdin.
pub async fn command_restore(restore: &[String], target: &Target, bytes: &[u8]) -> Result<()> {
    run(&target.expand(restore), target, Some(bytes), None)
        .await
        .map(|_| ())
}

/// Run `argv` in the target's directory and environment; its stdout is returned (or
/// written to `stdout_to`), a failure carries its stderr.
pub async fn run(
    argv: &[String],
    target: &Target,
    stdin: Option<&[u8]>,
    stdout_to: Option<&Path>,
) -> Result<Vec<u8>> {
    let mut env = target.env.clone();
    env.insert("PORT".into(), target.port.to_string());
    run_in(argv, &target.cwd, &env, stdin, stdout_to).await
}

pub(crate) async fn run_in(
    argv: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    stdin: Option<&[u8]>,
    stdout_to: Option<&Path>,
) -> Result<Vec<u8>> {
    let Some((program, args)) = argv.split_first() else {
        return Err(BackupError::Service("empty command".into()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .envs(env)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match stdout_to {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
                .map_err(|e| BackupError::io("create", p, e))?;
            cmd.stdout(f);
        }
        None => {
            cmd.stdout(Stdio::piped());
        }
    }
    let mut child = cmd.spawn().map_err(|source| BackupError::Spawn {
        program: program.clone(),
        source,
    })?;
    if let (Some(bytes), Some(mut w)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // Written beside the wait, so a tool that exits early does not block us.
        tokio::spawn(async move {
            let _ = w.write_all(&bytes).await;
            let _ = w.shutdown().await;
        });
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| BackupError::Spawn {
            program: program.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(BackupError::Tool {
            command: argv.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| BackupError::io("create", dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| BackupError::io("make private", dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(dir: &Path) -> Target {
        Target {
            port: 4242,
            env: BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]),
            cwd: dir.to_owned(),
        }
    }

    fn spec(kind: BackupKind, keep: Option<u32>) -> BackupSpec {
        BackupSpec {
            kind,
            schedule: None,
            keep,
            keep_for: None,
            dir: None,
            verify: None,
            location: Default::default(),
        }
    }

    fn sh(s: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), s.into()]
    }

    #[tokio::test]
    async fn a_command_backup_is_recorded_with_its_sum_and_retention_applies() {
        let d = tempfile::tempdir().unwrap();
        let spec = spec(
            BackupKind::Command {
                command: sh("printf '%s:%s' \"$GREETING\" ${PORT}"),
                restore: sh("cat > restored"),
            },
            Some(2),
        );
        let job = Job {
            service: "s",
            spec: &spec,
            dir: d.path().join("b"),
            recipients: vec![],
            release: None,
        };
        let t = target(d.path());
        let mut ids = Vec::new();
        for at in [1_000, 2_000, 3_000] {
            let taken = take(&job, &t, at).await.unwrap();
            ids.push(taken.entry.id.clone());
            if at == 3_000 {
                assert_eq!(taken.removed, vec![ids[0].clone()]);
            }
        }
        let all = catalog::list(&job.dir).unwrap();
        assert_eq!(
            all.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            ids[1..]
        );
        let e = &all[1];
        assert_eq!(
            (e.kind.as_str(), e.size, e.encrypted),
            ("command", 7, false)
        );
        let bytes = payload(&job.dir, e, || unreachable!()).unwrap();
        assert_eq!(&bytes[..], b"hi:4242");
        let BackupKind::Command { restore, .. } = &spec.kind else {
            unreachable!()
        };
        command_restore(restore, &t, &bytes).await.unwrap();
        assert_eq!(
            std::fs::read(d.path().join("restored")).unwrap(),
            b"hi:4242"
        );
    }

    #[tokio::test]
    async fn a_failing_tool_records_nothing_and_says_what_it_printed() {
        let d = tempfile::tempdir().unwrap();
        let spec = spec(
            BackupKind::Command {
                command: sh("echo partial; echo 'disk on fire' >&2; exit 3"),
                restore: sh("cat"),
            },
            None,
        );
        let job = Job {
            service: "s",
            spec: &spec,
            dir: d.path().join("b"),
            recipients: vec![],
            release: None,
        };
        let err = take(&job, &target(d.path()), 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("disk on fire") && err.contains("exit status: 3"),
            "{err}"
        );
        assert!(catalog::list(&job.dir).unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(&job.dir).unwrap().count(),
            0,
            "no partial file left"
        );
    }

    #[tokio::test]
    async fn an_encrypted_backup_decrypts_with_the_identity_and_a_flipped_byte_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let id = Identity::init(&d.path().join("age.key")).unwrap();
        let spec = spec(
            BackupKind::Command {
                command: sh("printf secret-data"),
                restore: sh("cat"),
            },
            None,
        );
        let job = Job {
            service: "s",
            spec: &spec,
            dir: d.path().join("b"),
            recipients: vec![id.recipient()],
            release: Some(4),
        };
        let taken = take(&job, &target(d.path()), 1).await.unwrap();
        let e = taken.entry;
        assert!(e.encrypted && e.file.ends_with(".bak.age") && e.release == Some(4));
        let stored = std::fs::read(job.dir.join(&e.file)).unwrap();
        assert!(
            !stored.windows(11).any(|w| w == b"secret-data"),
            "stored encrypted"
        );
        let key = d.path().join("age.key");
        let bytes = payload(&job.dir, &e, || Ok(Identity::load(&key)?)).unwrap();
        assert_eq!(&bytes[..], b"secret-data");
        let mut bad = stored.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(job.dir.join(&e.file), &bad).unwrap();
        let err = payload(&job.dir, &e, || Ok(Identity::load(&key)?)).unwrap_err();
        assert!(matches!(err, BackupError::Checksum { .. }), "{err}");
    }

    #[test]
    fn install_keeps_the_old_file_and_undo_puts_it_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dump.rdb");
        std::fs::write(&p, b"old").unwrap();
        let kept = install_file(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        undo_install(&p, kept.as_deref()).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
    }
}
