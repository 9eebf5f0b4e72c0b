//! Secrets given as files (`as: file`): written for each revision into a
//! private directory on tmpfs, never on persistent disk, and removed when the
//! revision stops. A process finds each in `NAME_FILE`.
//!
//! Layout: `/dev/shm/orchestra-<uid>/<project>/<service>@<revision>/<file>`,
//! directories 0700, files 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use orchestra_manifest::Service;

/// Where tmpfs is on Linux.
const TMPFS: &str = "/dev/shm";

/// This user's root of secret files (/proc/self belongs to the effective uid).
fn root() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    Path::new(TMPFS).join(format!("orchestra-{uid}"))
}

/// A project's folder of secret files.
pub fn project_dir(project: &str) -> PathBuf {
    root().join(sanitize(project))
}

/// One revision's folder of secret files.
pub fn instance_dir(project: &str, instance: &str) -> PathBuf {
    project_dir(project).join(sanitize(instance))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The file name of secret `name`: the last component of its `target`, else the name.
fn file_name(svc: &Service, name: &str) -> String {
    svc.secret_options
        .get(name)
        .and_then(|o| o.target.as_deref())
        .and_then(|t| Path::new(t).file_name())
        .map(|f| sanitize(&f.to_string_lossy()))
        .filter(|f| !f.is_empty() && f != "." && f != "..")
        .unwrap_or_else(|| name.to_owned())
}

/// Where a container finds its secret files.
pub const CONTAINER_DIR: &str = "/run/secrets";

/// Write `svc`'s file secrets for `instance`; returns `NAME_FILE` variables.
/// Idempotent: every replica of the revision shares the files.
///
/// For a container (`container`), the revision's folder is bind-mounted
/// read-only at [`CONTAINER_DIR`] and its files are readable by any user in
/// the container (0444, as Swarm's secrets are): the container's user is
/// not ours. The folders above it stay 0700, so no other user of the host
/// reaches them.
pub fn write(
    project: &str,
    instance: &str,
    svc: &Service,
    container: bool,
) -> std::io::Result<BTreeMap<String, String>> {
    write_files(project, instance, svc, container, None)
}

/// [`write`] for a process that runs as another user (`owner`: uid, gid): its
/// folder and files belong to that user (still 0700 and 0600), and the folders
/// above become 0711 so that it can reach them without listing them.
pub fn write_for(
    project: &str,
    instance: &str,
    svc: &Service,
    owner: Option<(u32, u32)>,
) -> std::io::Result<BTreeMap<String, String>> {
    write_files(project, instance, svc, false, owner)
}

fn write_files(
    project: &str,
    instance: &str,
    svc: &Service,
    container: bool,
    owner: Option<(u32, u32)>,
) -> std::io::Result<BTreeMap<String, String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut vars = BTreeMap::new();
    if svc.secret_files.is_empty() {
        return Ok(vars);
    }
    let dir = instance_dir(project, instance);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    if let Some((uid, gid)) = owner {
        for d in [root(), project_dir(project)] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711))?;
        }
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    let (dir_mode, file_mode) = if container {
        (0o755, 0o444)
    } else {
        (0o700, 0o600)
    };
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode))?;
    for (name, value) in &svc.secret_files {
        let path = dir.join(file_name(svc, name));
        let tmp = dir.join(format!(".{}.tmp", file_name(svc, name)));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(value.as_bytes())?;
        drop(f);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(file_mode))?;
        std::fs::rename(&tmp, &path)?;
        let seen = if container {
            Path::new(CONTAINER_DIR).join(file_name(svc, name))
        } else {
            path
        };
        vars.insert(format!("{name}_FILE"), seen.to_string_lossy().into_owned());
    }
    Ok(vars)
}

/// Remove one revision's secret files (it stopped).
pub fn remove(project: &str, instance: &str) {
    let _ = std::fs::remove_dir_all(instance_dir(project, instance));
}

/// Remove every secret file of a project (a daemon starts, or stops all).
pub fn remove_project(project: &str) {
    let _ = std::fs::remove_dir_all(project_dir(project));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_on_tmpfs_and_go_with_their_revision() {
        let yaml = "services:\n  api:\n    command: [x]\n    secrets: [{ name: TLS_KEY, as: file, target: /run/secrets/server.key }, { name: B, as: file }]\n";
        let m = orchestra_manifest::load_str(
            yaml,
            Path::new("/nonexistent/orchestra.yaml"),
            &orchestra_manifest::LoadOptions::default(),
        )
        .unwrap();
        let mut svc = m.services[0].clone();
        svc.secret_files
            .insert("TLS_KEY".into(), "-----KEY-----".into());
        svc.secret_files.insert("B".into(), "b-value".into());
        let project = format!("unit-test-{}", std::process::id());
        let vars = write(&project, "api@r1", &svc, false).unwrap();
        let key = PathBuf::from(&vars["TLS_KEY_FILE"]);
        assert!(key.starts_with("/dev/shm"), "{}", key.display());
        assert_eq!(key.file_name().unwrap(), "server.key");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "-----KEY-----");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let dir = key.parent().unwrap();
        assert_eq!(
            std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(std::fs::read_to_string(&vars["B_FILE"]).unwrap(), "b-value");
        remove(&project, "api@r1");
        assert!(!key.exists());
        // For a container: the path it sees, files any container user can read.
        let vars = write(&project, "api@r2", &svc, true).unwrap();
        assert_eq!(vars["TLS_KEY_FILE"], "/run/secrets/server.key");
        let host = instance_dir(&project, "api@r2").join("server.key");
        assert_eq!(
            std::fs::metadata(&host).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(
            std::fs::metadata(project_dir(&project))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        remove_project(&project);
        assert!(!project_dir(&project).exists());
    }

    #[test]
    #[cfg_attr(not_root, ignore = "gives files to another user: needs root")]
    fn files_for_another_user_are_theirs_and_still_private() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "giving files to another user needs root and CI is set"
            );
            eprintln!("SKIP: not root: skipping a test that gives secret files to another user");
            return;
        }
        let yaml = "services:\n  db:\n    command: [x]\n    secrets: [{ name: PW, as: file }]\n";
        let m = orchestra_manifest::load_str(
            yaml,
            Path::new("/nonexistent/orchestra.yaml"),
            &orchestra_manifest::LoadOptions::default(),
        )
        .unwrap();
        let mut svc = m.services[0].clone();
        svc.secret_files.insert("PW".into(), "pw-value".into());
        let project = format!("unit-test-owner-{}", std::process::id());
        let vars = write_for(&project, "db@r1", &svc, Some((65534, 65534))).unwrap();
        let file = PathBuf::from(&vars["PW_FILE"]);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (65534, 65534, 0o600)
        );
        let dir = std::fs::metadata(file.parent().unwrap()).unwrap();
        assert_eq!((dir.uid(), dir.mode() & 0o777), (65534, 0o700));
        // Above it: reachable, not listable.
        let above = std::fs::metadata(project_dir(&project)).unwrap();
        assert_eq!(above.mode() & 0o777, 0o711);
        remove_project(&project);
    }
}
