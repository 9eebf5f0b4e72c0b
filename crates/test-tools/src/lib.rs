//! Used from a build script: for each tool a crate's tests need, emit a
//! `missing_*` cfg when it is not installed, so those tests are compiled with
//! `#[cfg_attr(missing_x, ignore = "...")]` and show as ignored, never as
//! passed. Under `CI` nothing is ever marked missing: the tests run and fail,
//! naming what to install.

use std::path::{Path, PathBuf};

/// A tool the tests need: the cfg set when it is missing, and the programs
/// that must all be found (names looked up on `PATH`, or absolute paths
/// where one `*` component is allowed, such as Postgres's versioned directory;
/// `a|b` is found when either is).
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub cfg: &'static str,
    pub programs: &'static [&'static str],
}

/// Emit the cargo instructions for these tools and for the Docker and root
/// conditions: `skip_docker` (ORCHESTRA_SKIP_DOCKER_TESTS=1 outside CI) and
/// `not_root` (the tests that run a process as another user need root).
pub fn emit(tools: &[Tool]) {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=ORCHESTRA_SKIP_DOCKER_TESTS");
    // A tool installed later lands in one of these directories.
    for dir in path_dirs() {
        if dir.is_dir() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
    for t in tools {
        println!("cargo::rustc-check-cfg=cfg({})", t.cfg);
        if !ci && !t.programs.iter().all(|p| found(p)) {
            println!("cargo::rustc-cfg={}", t.cfg);
        }
    }
    println!("cargo::rustc-check-cfg=cfg(skip_docker)");
    if !ci && std::env::var("ORCHESTRA_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_docker");
    }
    println!("cargo::rustc-check-cfg=cfg(not_root)");
    if !is_root() {
        println!("cargo::rustc-cfg=not_root");
    }
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// Whether `program` (or one of `a|b`) is installed.
pub fn found(program: &str) -> bool {
    if program.contains('|') {
        return program.split('|').any(found);
    }
    if program.starts_with('/') {
        return matches_glob(Path::new(program));
    }
    path_dirs().iter().any(|d| is_executable(&d.join(program)))
}

/// An absolute path with at most one `*` component.
fn matches_glob(path: &Path) -> bool {
    let s = path.to_string_lossy();
    let Some((before, after)) = s.split_once('*') else {
        return is_executable(path);
    };
    // `/usr/lib/postgresql/*/bin/postgres`: the directory, and what the entry starts with.
    let Some((dir, prefix)) = before.rsplit_once('/') else {
        return false;
    };
    let after = after.trim_start_matches('/');
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with(prefix)
                && is_executable(&e.path().join(after))
        })
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_root() -> bool {
    // The effective uid is the second field of `Uid:`.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_on_path_is_found_and_a_made_up_one_is_not() {
        assert!(found("sh"));
        assert!(!found("no-such-program-3f9c1"));
        assert!(found("no-such-program-3f9c1|sh"));
    }

    #[test]
    fn one_star_matches_a_versioned_directory() {
        let dir = std::env::temp_dir().join(format!("probe-{}", std::process::id()));
        let bin = dir.join("15/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("postgres");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let glob = format!("{}/*/bin/postgres", dir.display());
        assert!(!found(&glob), "not executable yet");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(found(&glob));
        assert!(!found(&format!("{}/*/bin/initdb", dir.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
