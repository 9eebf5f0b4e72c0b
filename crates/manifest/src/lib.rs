//! The Orchestra manifest: find, read and validate `orchestra.yaml`.
//!
//! Loading runs as named passes over data, each collecting diagnostics so that one
//! load reports every problem:
//!
//! 1. **parse**: YAML to a node tree with locations (anchors, aliases, `<<` merges);
//! 2. **interpolate**: Compose-style `${VAR}` in scalar values (`${PORT}` is kept);
//! 3. **overlay**: deep-merge `env.<name>` for `--env <name>`, then drop `env:`;
//! 4. **convert**: strict typed conversion into [`Manifest`];
//! 5. **env files**: read each service's `env_file`s under its `env`;
//! 6. **semantic checks**: dependencies, cycles, ports, routes, volumes, profiles.
//!
//! The only I/O is reading the manifest, the `.env` beside it, `env_file`s, the
//! `proxy.tls` certificate and key files (checked to exist and to hold PEM blocks), and
//! hashing the directories static routes serve ([`site`]).
//!
//! [`compose::import_str`] turns a `docker-compose.yml` into manifest text, explaining
//! every key it changes or cannot carry over.

pub mod backup;
pub mod compose;
mod convert;
pub mod credential;
mod error;
mod interpolate;
pub mod model;
mod node;
mod overlay;
mod revision;
pub mod schedule;
mod semantic;
pub mod site;
mod suggest;
mod units;
pub mod user;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use backup::{BackupKind, BackupSpec};
pub use error::{Diagnostic, LoadError};
pub use model::*;
pub use schedule::{Concurrency, JobSchedule, Schedule, ScheduleError, parse_schedule};
pub use units::parse_duration;

use crate::convert::{Ctx, Meta};

/// File names a manifest may have, in order of preference.
pub const MANIFEST_NAMES: &[&str] = &["orchestra.yaml", "orchestra.yml"];

/// Compose files, in Compose's own order of preference: where a directory has one and no
/// manifest, it is imported in memory ([`compose::import_str`]) and run as one.
pub const COMPOSE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Whether `path` is a Compose file by name (one of [`COMPOSE_NAMES`]).
#[must_use]
pub fn is_compose_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| COMPOSE_NAMES.contains(&n))
}

/// How to load a manifest.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--env NAME`: the overlay under top-level `env:` to deep-merge.
    pub environment: Option<String>,
    /// Variables for interpolation, normally the process environment (injected so tests
    /// need no `set_var`). They take precedence over the `.env` file.
    pub vars: BTreeMap<String, String>,
}

/// Walks up from `start` (a directory, or a file whose directory is used) to find a
/// manifest named one of [`MANIFEST_NAMES`], or else, in the same directory, a Compose
/// file named one of [`COMPOSE_NAMES`]: the nearest directory with either wins.
///
/// # Errors
/// [`LoadError::NotFound`] when no directory up to the root has one.
pub fn find_manifest(start: &Path) -> Result<PathBuf, LoadError> {
    let abs = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let first = if abs.is_file() {
        abs.parent().map(Path::to_path_buf)
    } else {
        Some(abs)
    };
    let mut dir = first;
    while let Some(d) = dir {
        for name in MANIFEST_NAMES.iter().chain(COMPOSE_NAMES) {
            let candidate = d.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    Err(LoadError::NotFound {
        start: start.to_path_buf(),
    })
}

/// Reads the manifest at `path`, the `.env` beside it and its `env_file`s, then
/// interpolates, applies the overlay and validates.
///
/// # Errors
/// [`LoadError::Io`] if the manifest cannot be read, [`LoadError::Invalid`] with every
/// problem found (in file order) if it is not a valid manifest.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Manifest, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if is_compose_file(path) {
        return load_compose(&source, path, opts);
    }
    load_str(&source, path, opts)
}

/// A Compose file imported in memory and loaded as the manifest it becomes. The
/// manifest's `file` stays the Compose file (the daemon loads it the same way); problems
/// of the import's output name that output, since its lines are not the Compose file's.
fn load_compose(source: &str, path: &Path, opts: &LoadOptions) -> Result<Manifest, LoadError> {
    let imported = compose::import_str(source, path).map_err(|e| match e {
        compose::ImportError::Syntax(d) | compose::ImportError::NotCompose(d) => {
            LoadError::Invalid(vec![*d])
        }
        compose::ImportError::Invalid(diags) => LoadError::Invalid(diags),
        compose::ImportError::Io { path, source } => LoadError::Io { path, source },
    })?;
    load_str(&imported.yaml, path, opts).map_err(|e| match e {
        LoadError::Invalid(mut diags) => {
            let shown = path.with_file_name(format!(
                "orchestra.yaml (imported from {})",
                path.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ));
            for d in diags.iter_mut().filter(|d| d.file == path) {
                d.file.clone_from(&shown);
            }
            LoadError::Invalid(diags)
        }
        other => other,
    })
}

/// Like [`load`], from a string. `file` names the manifest in messages and its parent is
/// the base directory; a `.env` and `env_file`s there are still read if present.
///
/// # Errors
/// [`LoadError::Invalid`] with every problem found, in file order.
pub fn load_str(source: &str, file: &Path, opts: &LoadOptions) -> Result<Manifest, LoadError> {
    let dir = manifest_dir(file);
    let environment = opts.environment.as_deref();
    let mut diags = Vec::new();

    let mut root = match node::parse(source, file) {
        Ok(root) => root,
        Err(d) => return Err(invalid(file, d)),
    };

    let dotenv = read_dotenv(&dir.join(".env"), &mut diags);
    let lookup = |name: &str| opts.vars.get(name).or_else(|| dotenv.get(name)).cloned();

    if let Some(root) = root.as_mut() {
        interpolate::interpolate_tree(root, environment, &lookup, file, &mut diags);
        overlay::apply_overlay(root, environment, file, &mut diags);
    }

    let default_name = dir.file_name().map_or_else(
        || "orchestra".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut ctx = Ctx {
        file,
        dir: &dir,
        lookup: &lookup,
        diags: Vec::new(),
    };
    let (mut manifest, meta) = convert::convert(root.as_ref(), &mut ctx, default_name);
    diags.append(&mut ctx.diags);
    manifest.environment = opts.environment.clone();

    apply_env_files(&mut manifest, &meta, &mut diags);
    semantic::check(&manifest, &meta, &mut diags);

    if diags.is_empty() {
        Ok(manifest)
    } else {
        Err(invalid(file, diags))
    }
}

fn invalid(file: &Path, mut diags: Vec<Diagnostic>) -> LoadError {
    error::sort_diagnostics(file, &mut diags);
    LoadError::Invalid(diags)
}

/// The manifest's directory, absolute and without `.` components.
fn manifest_dir(file: &Path) -> PathBuf {
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(parent)
        .unwrap_or_else(|_| parent.to_path_buf())
        .components()
        .collect()
}

/// The `.env` beside the manifest; absent is fine.
fn read_dotenv(path: &Path, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (vars, errors) = interpolate::parse_dotenv(&text);
            diags.extend(interpolate::dotenv_diagnostics(path, errors));
            vars
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            diags.push(Diagnostic::new(
                path,
                Location { line: 1, col: 1 },
                "",
                format!("cannot read .env file: {e}"),
            ));
            BTreeMap::new()
        }
    }
}

/// Pass 5: each service's environment is its `env_file`s (later files win) overlaid by `env`.
fn apply_env_files(manifest: &mut Manifest, meta: &Meta, diags: &mut Vec<Diagnostic>) {
    let file = manifest.file.clone();
    for (service, sm) in manifest.services.iter_mut().zip(&meta.services) {
        if service.env_files.is_empty() {
            continue;
        }
        let mut env = BTreeMap::new();
        for (path, (loc, field, required)) in service.env_files.iter().zip(&sm.env_files) {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let (vars, errors) = interpolate::parse_dotenv(&text);
                    diags.extend(interpolate::dotenv_diagnostics(path, errors));
                    env.extend(vars);
                }
                // `required: false`: a missing file is fine.
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    let message = if e.kind() == std::io::ErrorKind::NotFound {
                        "env file not found".to_owned()
                    } else {
                        format!("cannot read env file: {e}")
                    };
                    diags.push(
                        Diagnostic::new(&file, *loc, field, message)
                            .found(path.display().to_string()),
                    );
                }
            }
        }
        let inline = std::mem::take(&mut service.env);
        service.env_file_vars = env
            .keys()
            .filter(|k| !inline.contains_key(*k))
            .cloned()
            .collect();
        env.extend(inline);
        service.env = env;
    }
}

#[cfg(test)]
mod backup_tests;
#[cfg(test)]
mod tests;
