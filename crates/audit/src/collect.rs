//! File collection: a parallel, `.gitignore`-aware walk and classification by name.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use crate::AuditError;

/// What a file is, decided from its path (and, for scripts, its first line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// `Dockerfile*`, `*.Dockerfile`, `Containerfile*`.
    Dockerfile,
    /// `.dockerignore` (or `<name>.Dockerfile.dockerignore`).
    Dockerignore,
    /// `docker-compose*.yml|yaml`, `compose*.yml|yaml`.
    Compose,
    /// `.github/workflows/*.yml|yaml`.
    Workflow,
    /// `action.yml|yaml` (a composite or Docker action).
    Action,
    /// `devcontainer.json` / `.devcontainer.json` (JSONC).
    DevContainer,
    /// `orchestra.yaml|yml`, the Orchestra manifest.
    OrchestraManifest,
    /// `pyproject.toml`.
    PyProject,
    /// `poetry.lock` (TOML).
    PoetryLock,
    /// `uv.lock` (TOML).
    UvLock,
    /// `requirements*.txt`, `requirements/*.txt`, `constraints*.txt`.
    Requirements,
    /// `package.json`.
    PackageJson,
    /// `package-lock.json`, `npm-shrinkwrap.json`.
    PackageLock,
    /// `yarn.lock` (text).
    YarnLock,
    /// `pnpm-lock.yaml`.
    PnpmLock,
    /// `Cargo.lock`.
    CargoLock,
    /// `.env`, `.env.*`, `*.env`.
    Env,
    /// Shell scripts (`*.sh`, `*.bash`, or a shell shebang).
    Shell,
    /// Terraform `*.tf` / `*.tfvars` (HCL, read as text).
    Terraform,
    /// Terraform state `*.tfstate`, `*.tfstate.backup` (JSON).
    TerraformState,
    /// `Pulumi.yaml`, `Pulumi.<stack>.yaml`.
    Pulumi,
    /// `.tool-versions` (asdf / mise).
    ToolVersions,
    /// `.python-version`.
    PythonVersion,
    /// `.nvmrc`, `.node-version`.
    NodeVersion,
    /// `.htpasswd`.
    Htpasswd,
    /// Private key material by name (`*.pem`, `*.key`, `id_rsa`, `*.p12`, …).
    KeyFile,
    /// `vercel.json` (Vercel project configuration).
    VercelJson,
    /// Anything else that is text (scanned by text-wide rules such as secrets).
    Other,
}

/// The syntax a kind is parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Our Dockerfile parser.
    Dockerfile,
    /// YAML (saphyr).
    Yaml,
    /// JSON with comments allowed.
    Json,
    /// TOML.
    Toml,
    /// Lines of text.
    Text,
}

impl FileKind {
    /// The syntax this kind is parsed with.
    #[must_use]
    pub fn format(self) -> Format {
        match self {
            FileKind::Dockerfile => Format::Dockerfile,
            FileKind::Compose
            | FileKind::Workflow
            | FileKind::Action
            | FileKind::OrchestraManifest
            | FileKind::PnpmLock
            | FileKind::Pulumi => Format::Yaml,
            FileKind::DevContainer
            | FileKind::PackageJson
            | FileKind::PackageLock
            | FileKind::TerraformState
            | FileKind::VercelJson => Format::Json,
            FileKind::PyProject | FileKind::PoetryLock | FileKind::UvLock | FileKind::CargoLock => {
                Format::Toml
            }
            _ => Format::Text,
        }
    }

    /// Lockfiles (generated; `fix rename-id` skips them unless asked).
    #[must_use]
    pub fn is_lockfile(self) -> bool {
        matches!(
            self,
            FileKind::PoetryLock
                | FileKind::UvLock
                | FileKind::PackageLock
                | FileKind::YarnLock
                | FileKind::PnpmLock
                | FileKind::CargoLock
        )
    }

    /// Stable lowercase name, for messages and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Dockerfile => "dockerfile",
            FileKind::Dockerignore => "dockerignore",
            FileKind::Compose => "compose",
            FileKind::Workflow => "workflow",
            FileKind::Action => "action",
            FileKind::DevContainer => "devcontainer",
            FileKind::OrchestraManifest => "orchestra-manifest",
            FileKind::PyProject => "pyproject",
            FileKind::PoetryLock => "poetry-lock",
            FileKind::UvLock => "uv-lock",
            FileKind::Requirements => "requirements",
            FileKind::PackageJson => "package-json",
            FileKind::PackageLock => "package-lock",
            FileKind::YarnLock => "yarn-lock",
            FileKind::PnpmLock => "pnpm-lock",
            FileKind::CargoLock => "cargo-lock",
            FileKind::Env => "env",
            FileKind::Shell => "shell",
            FileKind::Terraform => "terraform",
            FileKind::TerraformState => "terraform-state",
            FileKind::Pulumi => "pulumi",
            FileKind::ToolVersions => "tool-versions",
            FileKind::PythonVersion => "python-version",
            FileKind::NodeVersion => "node-version",
            FileKind::Htpasswd => "htpasswd",
            FileKind::KeyFile => "key-file",
            FileKind::VercelJson => "vercel-json",
            FileKind::Other => "other",
        }
    }
}

/// Classify a `/`-separated relative path by its name.
#[must_use]
pub fn classify(path: &str) -> FileKind {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let parent = path.rsplit('/').nth(1).unwrap_or("");
    let is_yaml = lower.ends_with(".yml") || lower.ends_with(".yaml");

    if lower.ends_with(".dockerignore") {
        return FileKind::Dockerignore;
    }
    if name.starts_with("Dockerfile")
        || name.starts_with("dockerfile")
        || name.starts_with("Containerfile")
        || lower.ends_with(".dockerfile")
        || lower.ends_with(".containerfile")
    {
        // `Dockerfile.md` is a doc about a Dockerfile and `dockerfile_rules.rs` is
        // source code, not Dockerfiles.
        const NOT_DOCKERFILES: &[&str] = &[
            ".md", ".txt", ".j2", ".rs", ".py", ".go", ".js", ".ts", ".java", ".rb", ".json",
            ".yml", ".yaml", ".toml", ".sh", ".tpl", ".tmpl", ".html", ".lock",
        ];
        if !NOT_DOCKERFILES.iter().any(|ext| lower.ends_with(ext)) {
            return FileKind::Dockerfile;
        }
    }
    if is_yaml && (lower.starts_with("docker-compose") || lower.starts_with("compose")) {
        return FileKind::Compose;
    }
    if is_yaml && path_has(path, ".github/workflows/") && parent == "workflows" {
        return FileKind::Workflow;
    }
    if is_yaml && (lower == "action.yml" || lower == "action.yaml") {
        return FileKind::Action;
    }
    if is_yaml && (lower == "orchestra.yaml" || lower == "orchestra.yml") {
        return FileKind::OrchestraManifest;
    }
    if is_yaml && (name == "Pulumi.yaml" || name == "Pulumi.yml" || name.starts_with("Pulumi.")) {
        return FileKind::Pulumi;
    }
    match lower.as_str() {
        "devcontainer.json" | ".devcontainer.json" => return FileKind::DevContainer,
        "pyproject.toml" => return FileKind::PyProject,
        "poetry.lock" => return FileKind::PoetryLock,
        "uv.lock" => return FileKind::UvLock,
        "package.json" => return FileKind::PackageJson,
        "package-lock.json" | "npm-shrinkwrap.json" => return FileKind::PackageLock,
        "yarn.lock" => return FileKind::YarnLock,
        "pnpm-lock.yaml" => return FileKind::PnpmLock,
        "cargo.lock" => return FileKind::CargoLock,
        ".tool-versions" => return FileKind::ToolVersions,
        ".python-version" => return FileKind::PythonVersion,
        ".nvmrc" | ".node-version" => return FileKind::NodeVersion,
        ".htpasswd" => return FileKind::Htpasswd,
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" => return FileKind::KeyFile,
        "vercel.json" => return FileKind::VercelJson,
        _ => {}
    }
    if lower.ends_with(".txt")
        && (lower.starts_with("requirements")
            || lower.starts_with("constraints")
            || parent == "requirements")
    {
        return FileKind::Requirements;
    }
    if lower == ".env" || lower.starts_with(".env.") || lower.ends_with(".env") {
        return FileKind::Env;
    }
    if lower.ends_with(".sh") || lower.ends_with(".bash") {
        return FileKind::Shell;
    }
    if lower.ends_with(".tf") || lower.ends_with(".tfvars") || lower.ends_with(".tf.json") {
        return FileKind::Terraform;
    }
    if lower.ends_with(".tfstate") || lower.ends_with(".tfstate.backup") {
        return FileKind::TerraformState;
    }
    if [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return FileKind::KeyFile;
    }
    FileKind::Other
}

fn path_has(path: &str, needle: &str) -> bool {
    path.starts_with(needle) || path.contains(&format!("/{needle}"))
}

/// A file found by the walk.
#[derive(Clone, Debug)]
pub struct Collected {
    /// Absolute (or root-joined) path on disk.
    pub abs: PathBuf,
    /// Path relative to the root, `/`-separated.
    pub rel: String,
    /// Classification.
    pub kind: FileKind,
}

/// A directory of installed dependencies or build output that is in the tree
/// (`node_modules/`, `__pycache__/`, `site-packages/`): counted, never read, so a
/// committed one costs one finding and no parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyTree {
    /// The directory, relative to the root, `/`-separated, without a trailing `/`.
    pub dir: String,
    /// Files under it.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Directory names whose contents are installed or generated, not written.
const DEPENDENCY_DIRS: &[&str] = &["node_modules", "__pycache__", "site-packages"];

/// The dependency directory `rel` lies in (its outermost one), if any.
fn dependency_dir(rel: &str) -> Option<&str> {
    let mut end = 0;
    for part in rel.split('/') {
        end += part.len();
        if end >= rel.len() {
            return None; // the file name itself
        }
        if DEPENDENCY_DIRS.contains(&part) {
            return Some(&rel[..end]);
        }
        end += 1;
    }
    None
}

/// Files and dependency trees of one walk.
#[derive(Default)]
struct Trees(Mutex<std::collections::BTreeMap<String, (u64, u64)>>);

impl Trees {
    /// True when `rel` is inside a dependency tree (and was counted there).
    fn absorb(&self, rel: &str, abs: &Path) -> bool {
        let Some(dir) = dependency_dir(rel) else {
            return false;
        };
        let bytes = std::fs::symlink_metadata(abs).map_or(0, |m| m.len());
        if let Ok(mut t) = self.0.lock() {
            let e = t.entry(dir.to_owned()).or_default();
            e.0 += 1;
            e.1 += bytes;
        }
        true
    }

    fn into_vec(self) -> Vec<DependencyTree> {
        self.0
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .map(|(dir, (files, bytes))| DependencyTree { dir, files, bytes })
            .collect()
    }
}

/// Walk `root` in parallel, honoring `.gitignore`/`.ignore` unless `no_ignore`.
///
/// `.git/` is always skipped; other hidden paths (`.github/`, `.env`) are included.
/// Results are sorted by relative path so output order is stable.
///
/// # Errors
/// Fails when `root` does not exist.
pub fn walk(root: &Path, no_ignore: bool) -> Result<Vec<Collected>, AuditError> {
    let found = Mutex::new(Vec::new());
    walk_visit(root, no_ignore, |c| {
        if let Ok(mut v) = found.lock() {
            v.push(c);
        }
    })?;
    let mut files = found.into_inner().unwrap_or_default();
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// Every path git would commit under `root`: the index (committed files, whatever
/// `.gitignore` says now) plus untracked files that are not ignored. `None` when `root`
/// is not in a git work tree or git cannot run.
fn git_files(root: &Path) -> Option<Vec<String>> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut paths: Vec<String> = out
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    // A file both staged and changed is listed once per stage.
    paths.dedup();
    Some(paths)
}

/// The walk of [`walk`], handing each file to `visit` as it is found (from the walker's
/// threads, in no particular order) instead of collecting them. Files inside
/// dependency directories are not visited; they come back as [`DependencyTree`]s.
///
/// In a git work tree (and without `no_ignore`) the files are the ones git tracks plus
/// the untracked ones it does not ignore: a committed file is audited even when
/// `.gitignore` matches it. Elsewhere, `.gitignore` and `.ignore` decide.
///
/// # Errors
/// Fails when `root` does not exist.
pub(crate) fn walk_visit(
    root: &Path,
    no_ignore: bool,
    visit: impl Fn(Collected) + Sync,
) -> Result<Vec<DependencyTree>, AuditError> {
    if !root.exists() {
        return Err(AuditError::NotFound {
            path: root.to_path_buf(),
        });
    }
    if root.is_file() {
        let rel = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        visit(Collected {
            abs: root.to_path_buf(),
            kind: classify(&rel),
            rel,
        });
        return Ok(Vec::new());
    }
    let trees = Trees::default();
    // An empty listing is a directory git ignores as a whole (a corpus checked out
    // under an ignored folder): the walk below still reads it.
    if !no_ignore && let Some(paths) = git_files(root).filter(|p| !p.is_empty()) {
        for rel in paths {
            let abs = root.join(&rel);
            // Deleted but still in the index, a submodule, a symlink: nothing to read.
            if !std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_file()) {
                continue;
            }
            if trees.absorb(&rel, &abs) {
                continue;
            }
            let kind = classify(&rel);
            visit(Collected { abs, rel, kind });
        }
        return Ok(trees.into_vec());
    }
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .require_git(false)
        .git_ignore(!no_ignore)
        .git_global(!no_ignore)
        .git_exclude(!no_ignore)
        .ignore(!no_ignore)
        .parents(!no_ignore)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git");
    let visit = &visit;
    let absorbed = &trees;
    builder.build_parallel().run(|| {
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let abs = entry.into_path();
            let stripped = abs.strip_prefix(root).unwrap_or(&abs);
            // The components joined with `/`: the path's own text when it is already in
            // that form (walker paths are), without collecting the components.
            let rel = match stripped.to_str() {
                Some(t) if is_normal_relative(t) => t.to_string(),
                _ => stripped
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            };
            if absorbed.absorb(&rel, &abs) {
                return WalkState::Continue;
            }
            let kind = classify(&rel);
            visit(Collected { abs, rel, kind });
            WalkState::Continue
        })
    });
    Ok(trees.into_vec())
}

/// Is `path` a relative path whose text is exactly its components joined with `/` (no
/// empty, `.` or `..` parts, no leading or trailing `/`)?
fn is_normal_relative(path: &str) -> bool {
    std::path::MAIN_SEPARATOR == '/'
        && !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_dirs_are_the_outermost_one_and_never_the_file_name() {
        assert_eq!(
            dependency_dir("web/node_modules/x/index.js"),
            Some("web/node_modules")
        );
        assert_eq!(
            dependency_dir("node_modules/a/node_modules/b.js"),
            Some("node_modules")
        );
        assert_eq!(
            dependency_dir("app/__pycache__/m.cpython-311.pyc"),
            Some("app/__pycache__")
        );
        assert_eq!(dependency_dir("docs/node_modules"), None);
        assert_eq!(dependency_dir("src/node_modules_helper.rs"), None);
        assert_eq!(dependency_dir("a.js"), None);
    }

    #[test]
    fn classifies_names() {
        let cases = [
            ("Dockerfile", FileKind::Dockerfile),
            ("svc/Dockerfile.prod", FileKind::Dockerfile),
            ("api.Dockerfile", FileKind::Dockerfile),
            ("Containerfile", FileKind::Dockerfile),
            ("src/rules/dockerfile_root_user.rs", FileKind::Other),
            ("src/parse/dockerfile.rs", FileKind::Other),
            ("Dockerfile.dockerignore", FileKind::Dockerignore),
            ("docker-compose.override.yml", FileKind::Compose),
            ("deploy/compose.yaml", FileKind::Compose),
            (".github/workflows/ci.yml", FileKind::Workflow),
            (".github/ci.yml", FileKind::Other),
            (".devcontainer/devcontainer.json", FileKind::DevContainer),
            ("requirements-dev.txt", FileKind::Requirements),
            ("requirements/base.txt", FileKind::Requirements),
            (".env.production", FileKind::Env),
            ("scripts/deploy.sh", FileKind::Shell),
            ("infra/main.tf", FileKind::Terraform),
            ("terraform.tfstate", FileKind::TerraformState),
            ("Pulumi.dev.yaml", FileKind::Pulumi),
            (".nvmrc", FileKind::NodeVersion),
            ("certs/server.key", FileKind::KeyFile),
            ("Cargo.lock", FileKind::CargoLock),
            ("apps/web/vercel.json", FileKind::VercelJson),
            (".vercel/project.json", FileKind::Other),
            ("README.md", FileKind::Other),
        ];
        for (path, kind) in cases {
            assert_eq!(classify(path), kind, "{path}");
        }
    }
}
