//! Shared by the export tests: fixtures, secrets, files on disk, kubernetes-validate.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use orchestra_export::{Export, OutputFile, SecretVersion};
use orchestra_manifest::{LoadOptions, Manifest};
use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn opts() -> LoadOptions {
    LoadOptions {
        environment: None,
        vars: BTreeMap::new(),
    }
}

/// The manifest at `path`, which must load.
pub fn load(path: &Path) -> Manifest {
    orchestra_manifest::load(path, &opts()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Compose file imported (as `orchestra import` does) and loaded as the manifest
/// written beside it.
pub fn import(compose: &Path) -> (String, Manifest) {
    let imported = orchestra_manifest::compose::import_file(compose).unwrap();
    let beside = compose.with_file_name("orchestra.yaml");
    let m = orchestra_manifest::load_str(&imported.yaml, &beside, &opts())
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", compose.display(), imported.yaml));
    (imported.yaml, m)
}

/// Versions for every secret `m` references (version 3, or the pinned one), with values
/// when `values`.
pub fn secrets(m: &Manifest, values: bool) -> BTreeMap<String, SecretVersion> {
    let mut out = BTreeMap::new();
    for s in &m.services {
        for name in &s.secrets {
            let version = s
                .secret_options
                .get(name)
                .and_then(|o| o.version)
                .unwrap_or(3);
            out.insert(
                name.clone(),
                SecretVersion {
                    version,
                    digest: orchestra_export::digest(format!("{name}-{version}").as_bytes()),
                    value: values.then(|| format!("value of {name}").into_bytes()),
                },
            );
        }
    }
    out
}

/// Every document of every file, parsed back.
pub fn documents(files: &[OutputFile]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|f| {
            orchestra_export::yaml::parse_documents(&f.contents)
                .unwrap_or_else(|e| panic!("{} does not parse back: {e}\n{}", f.path, f.contents))
        })
        .collect()
}

pub fn write(export: &Export, dir: &Path) {
    for f in &export.files {
        std::fs::write(dir.join(&f.path), &f.contents).unwrap();
    }
}

/// The `kubernetes-validate` command, if it runs: a failure under CI=true when it does
/// not (scripts/test.sh installs it with pip), else `None` after saying so.
pub fn kubernetes_validate() -> Option<PathBuf> {
    let works = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(PathBuf::from("kubernetes-validate"));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "kubernetes-validate is missing and CI is set: install it with \
         `pip install kubernetes-validate` (scripts/test.sh does)"
    );
    eprintln!(
        "SKIP: kubernetes-validate is not installed (pip install kubernetes-validate): \
         skipping the schema validation of exported Kubernetes files"
    );
    None
}

/// The Kubernetes versions every file must validate against.
pub const KUBERNETES_VERSIONS: &[&str] =
    &["1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0"];

/// Runs `kubernetes-validate --strict` on `files` (in `dir`) for every version, all at
/// once; panics with its output on a failure.
pub fn validate_strict(tool: &Path, dir: &Path, files: &[&str]) {
    assert!(!files.is_empty(), "nothing to validate");
    let children: Vec<_> = KUBERNETES_VERSIONS
        .iter()
        .map(|v| {
            let child = Command::new(tool)
                .arg("--strict")
                .args(["-k", v])
                .args(files)
                .current_dir(dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (v, child)
        })
        .collect();
    for (v, child) in children {
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "kubernetes-validate --strict -k {v} failed:\n{text}"
        );
        // Every object was checked against a schema (none skipped as unknown).
        assert!(
            !text.contains("WARN") && !text.contains("ERROR"),
            "kubernetes-validate -k {v}:\n{text}"
        );
        let passed = text.matches(" passed for resource ").count();
        assert!(
            passed > 0,
            "kubernetes-validate -k {v} said nothing:\n{text}"
        );
    }
}
