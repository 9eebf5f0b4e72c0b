//! This machine: free disk space, the open-file limit, and the project's
//! `.orchestra/` directory and state database.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use orchestra_state::{StateError, StateStore};

use super::{Check, Ctx, mode_str};

/// Below this much free space for `.orchestra/`, warn.
const LOW_DISK: u64 = 1 << 30;

/// Below this soft open-file limit, warn.
const LOW_NOFILE: u64 = 4096;

/// Free space on the file system `.orchestra/` is (or will be) on.
pub fn disk(ctx: &Ctx<'_>) -> Check {
    const ID: &str = "disk";
    let at = if ctx.paths.root.exists() {
        ctx.paths.root.as_path()
    } else {
        ctx.manifest.dir.as_path()
    };
    match nix::sys::statvfs::statvfs(at) {
        Err(e) => Check::warn(
            ID,
            format!("cannot read the free space of {}: {e}", at.display()),
            "check that the project's directory is readable",
        ),
        Ok(st) => {
            // fsblkcnt_t is narrower than u64 on some 32-bit targets.
            #[allow(clippy::useless_conversion)]
            let free = u64::from(st.blocks_available()).saturating_mul(st.fragment_size());
            let summary = format!("{} free for .orchestra/ ({})", bytes(free), at.display());
            if free < LOW_DISK {
                Check::warn(
                    ID,
                    format!("only {summary}; state.db and the logs need room"),
                    format!(
                        "free space on that file system (under {} old rotated logs, `*.log.N` in .orchestra/logs/, may go)",
                        bytes(LOW_DISK)
                    ),
                )
            } else {
                Check::pass(ID, summary)
            }
        }
    }
}

fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let f = n as f64;
    if f >= GIB {
        format!("{:.1} GiB", f / GIB)
    } else {
        format!("{:.0} MiB", f / MIB)
    }
}

/// The soft open-file limit: every replica, its pipes, log files and proxy
/// connections take descriptors from the daemon's.
pub fn open_files(ctx: &Ctx<'_>) -> Check {
    const ID: &str = "open-files";
    let (soft, hard) =
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok(l) => l,
            Err(e) => {
                return Check::warn(
                    ID,
                    format!("cannot read the open-file limit: {e}"),
                    "check `ulimit -n`",
                );
            }
        };
    // A proxied connection takes two descriptors (client and upstream).
    let proxy = ctx
        .manifest
        .proxy
        .max_connections
        .filter(|_| ctx.routed())
        .map(|c| u64::from(c) * 2 + 1024);
    let want = proxy.unwrap_or(0).max(LOW_NOFILE);
    let why = match proxy {
        Some(p) if p > LOW_NOFILE => format!(
            "proxy.max_connections {} needs about {p}",
            ctx.manifest.proxy.max_connections.unwrap_or(0)
        ),
        _ => format!("under {LOW_NOFILE}"),
    };
    let unlimited = nix::libc::RLIM_INFINITY;
    let show = |n: u64| {
        if n == unlimited {
            "unlimited".to_owned()
        } else {
            n.to_string()
        }
    };
    if soft >= want {
        return Check::pass(
            ID,
            format!("open-file limit {} (hard {})", show(soft), show(hard)),
        );
    }
    let fix = if hard >= want {
        let to = if hard == unlimited {
            want.max(65536)
        } else {
            hard.min(want.max(65536))
        };
        format!(
            "run `ulimit -n {to}` in the shell that starts `orchestra up` (the hard limit allows {})",
            show(hard)
        )
    } else {
        format!(
            "raise the hard limit to at least {want} (`nofile` in /etc/security/limits.conf, or LimitNOFILE= in a systemd unit), then `ulimit -n {want}`"
        )
    };
    Check::warn(
        ID,
        format!(
            "open-file limit {} (hard {}): {why}",
            show(soft),
            show(hard)
        ),
        fix,
    )
}

/// `.orchestra/`: a directory only its owner can read (state, logs, the
/// control socket), writable by this user.
pub fn state_dir(ctx: &Ctx<'_>) -> Check {
    const ID: &str = "state.dir";
    let root = &ctx.paths.root;
    let shown = ctx.show(root);
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if ctx.fix {
                return match ctx.paths.prepare() {
                    Ok(()) => {
                        let mut c = Check::pass(ID, format!("{shown}/ created (mode 0700)"));
                        c.fixed
                            .push(format!("created {}/ with mode 0700", root.display()));
                        c
                    }
                    Err(e) => Check::fail(
                        ID,
                        format!("cannot create {shown}/: {e}"),
                        "make the project's directory writable by this user",
                    ),
                };
            }
            return Check::pass(
                ID,
                format!("{shown}/ does not exist yet; `orchestra up` creates it (mode 0700)"),
            );
        }
        Err(e) => {
            return Check::fail(
                ID,
                format!("cannot read {shown}/: {e}"),
                "make it readable by this user",
            );
        }
    };
    if !meta.is_dir() {
        return Check::fail(
            ID,
            format!("{shown} is not a directory"),
            format!(
                "move it aside (`mv {shown} {shown}.bak`); `orchestra up` then creates the directory"
            ),
        );
    }
    if nix::unistd::access(
        root,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_err()
    {
        return Check::fail(
            ID,
            format!("{shown}/ is not writable by this user"),
            format!("run orchestra as the directory's owner, or `chown -R $USER {shown}`"),
        );
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return Check::pass(ID, format!("{shown}/ is private (mode {})", mode_str(mode)));
    }
    if ctx.fix {
        return match std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)) {
            Ok(()) => {
                let mut c = Check::pass(ID, format!("{shown}/ is private (mode 0700)"));
                c.fixed.push(format!(
                    "chmod 700 {} (was {})",
                    root.display(),
                    mode_str(mode)
                ));
                c
            }
            Err(e) => Check::warn(
                ID,
                format!(
                    "{shown}/ has mode {} and cannot be changed: {e}",
                    mode_str(mode)
                ),
                format!("chmod 700 {shown}"),
            ),
        };
    }
    Check::warn(
        ID,
        format!(
            "{shown}/ has mode {}: others may read the state and the logs",
            mode_str(mode)
        ),
        format!("chmod 700 {shown} (or run `orchestra doctor --fix`)"),
    )
}

/// `.orchestra/state.db`: opens read-only, with a schema this build knows,
/// readable by its owner only.
pub fn state_db(ctx: &Ctx<'_>) -> Check {
    const ID: &str = "state.db";
    let db = &ctx.paths.db;
    let shown = ctx.show(db);
    let meta = match std::fs::metadata(db) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::pass(
                ID,
                format!("{shown} does not exist yet; the first `orchestra up` creates it"),
            );
        }
        Err(e) => {
            return Check::fail(
                ID,
                format!("cannot read {shown}: {e}"),
                "make it readable by this user (it is the project's state: runs, releases, events)",
            );
        }
    };
    let known = StateStore::known_schema_version();
    let version = match StateStore::read_schema_version(db) {
        Ok(v) => v,
        Err(e) => {
            let why = match &e {
                StateError::Open { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            return Check::fail(
                ID,
                format!("{shown} cannot be read: {why}"),
                format!(
                    "if it is corrupt, stop the daemon (`orchestra down`) and move it aside (`mv {shown} {shown}.bad`): `up` starts an empty one (the release history stays in the old file)"
                ),
            );
        }
    };
    if version > known {
        return Check::fail(
            ID,
            format!(
                "{shown} has schema version {version}; this orchestra knows up to {known} (a newer orchestra wrote it)"
            ),
            "use the newer orchestra that wrote it (check `orchestra --version` and PATH)",
        );
    }
    let summary = format!("{shown} is readable, schema version {version} of {known}");
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return Check::pass(ID, summary);
    }
    let files = db_files(db);
    if ctx.fix {
        let mut c = Check::pass(ID, format!("{summary}, mode 0600"));
        for f in &files {
            match std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => c.fixed.push(format!("chmod 600 {}", f.display())),
                Err(e) => {
                    return Check::warn(
                        ID,
                        format!(
                            "{summary}, but mode {} cannot be changed: {e}",
                            mode_str(mode)
                        ),
                        format!("chmod 600 {shown}"),
                    );
                }
            }
        }
        return c;
    }
    Check::warn(
        ID,
        format!(
            "{summary}, but its mode {} lets others read the releases and events",
            mode_str(mode)
        ),
        format!(
            "chmod 600 {} (or run `orchestra doctor --fix`)",
            files
                .iter()
                .map(|f| ctx.show(f))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )
}

/// The database and its WAL files that exist.
fn db_files(db: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![db.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if p.exists() {
            out.push(p);
        }
    }
    out
}
