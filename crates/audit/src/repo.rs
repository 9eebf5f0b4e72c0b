//! The audited repository: every collected file, read once and parsed once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::AuditError;
use crate::collect::{self, FileKind};
use crate::config::Date;
use crate::ignore_comments::InlineIgnores;
use crate::parse::{self, Document, ParseIssue};
use crate::source::SourceFile;
use crate::views::{self, ServiceBuild};

/// Files of an unknown kind larger than this are not read (they are rarely config, and
/// reading them would dominate the run).
const MAX_OTHER_SIZE: u64 = 2 * 1024 * 1024;
/// Hard limit for any file.
const MAX_SIZE: u64 = 64 * 1024 * 1024;

/// One file: its text, kind, parsed document, parse issues and inline ignores.
#[derive(Clone, Debug)]
pub struct ParsedFile {
    /// Path and text.
    pub source: SourceFile,
    /// Classification.
    pub kind: FileKind,
    /// Parsed content.
    pub doc: Document,
    /// Problems that kept it from parsing fully.
    pub issues: Vec<ParseIssue>,
    /// `# orchestra: ignore[rule]` comments.
    pub ignores: InlineIgnores,
}

impl ParsedFile {
    /// Classify, parse and index `text` found at `path` (relative, `/`-separated).
    #[must_use]
    pub fn new(path: &str, text: String) -> Self {
        Self::with_kind(path, collect::classify(path), text)
    }

    /// Like [`ParsedFile::new`] with a known kind.
    #[must_use]
    pub fn with_kind(path: &str, mut kind: FileKind, text: String) -> Self {
        if kind == FileKind::Other && is_shell_shebang(&text) {
            kind = FileKind::Shell;
        }
        let source = SourceFile::new(path, text);
        let (doc, issues) = parse::parse(kind, &source);
        let ignores = InlineIgnores::scan(&source);
        Self {
            source,
            kind,
            doc,
            issues,
            ignores,
        }
    }

    /// A binary (or skipped) file: known by name only.
    #[must_use]
    pub fn binary(path: &str, kind: FileKind) -> Self {
        Self {
            source: SourceFile::new(path, String::new()),
            kind,
            doc: Document::Binary,
            issues: Vec::new(),
            ignores: InlineIgnores::default(),
        }
    }

    /// Relative path.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.source.path
    }

    /// Directory of the file relative to the root (`""` for the root).
    #[must_use]
    pub fn dir(&self) -> &str {
        self.source.path.rsplit_once('/').map_or("", |(d, _)| d)
    }

    /// File name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.source
            .path
            .rsplit_once('/')
            .map_or(self.source.path.as_str(), |(_, n)| n)
    }
}

fn is_shell_shebang(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("");
    first.starts_with("#!")
        && [
            "/sh", "/bash", "/ash", "/dash", "/zsh", "env sh", "env bash",
        ]
        .iter()
        .any(|s| first.contains(s))
}

/// Options rules may read: stale ids, the OSV database, per-rule config, today's date.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Identifiers that must not appear any more (`--stale-id`, config `stale-ids`).
    pub stale_ids: Vec<String>,
    /// Offline OSV database directory (`--osv-db`, `$OSV_DB`, config `osv-db`).
    pub osv_db: Option<PathBuf>,
    /// `[rules.<id>]` tables from the config file.
    pub rule_options: HashMap<String, toml::Table>,
    /// Today's date (injected so tests control time).
    pub today: Date,
}

impl Settings {
    /// The option `key` of rule `rule` (`[rules.<rule>] key = …`).
    #[must_use]
    pub fn option(&self, rule: &str, key: &str) -> Option<&toml::Value> {
        self.rule_options.get(rule)?.get(key)
    }

    /// The string option `key` of rule `rule`.
    #[must_use]
    pub fn option_str(&self, rule: &str, key: &str) -> Option<&str> {
        self.option(rule, key)?.as_str()
    }
}

/// The whole audited tree.
#[derive(Debug, Default)]
pub struct Repository {
    /// Root on disk (`None` for in-memory repositories in tests).
    pub root: Option<PathBuf>,
    /// All files, sorted by path.
    pub files: Vec<ParsedFile>,
    /// Rule settings.
    pub settings: Settings,
    /// Dependency directories in the tree, counted instead of read.
    pub dependency_trees: Vec<crate::collect::DependencyTree>,
    index: HashMap<String, usize>,
    by_kind: HashMap<FileKind, Vec<usize>>,
    dirs: HashSet<String>,
    builds: OnceLock<Vec<ServiceBuild>>,
    /// Directory listings read from disk for `exists` (one `read_dir` per directory
    /// instead of a `stat` per probed name).
    disk_dirs: Mutex<HashMap<String, Arc<HashSet<String>>>>,
}

impl Repository {
    /// Walk `root` and read + parse every file in parallel.
    ///
    /// # Errors
    /// Fails when `root` does not exist; unreadable files become parse issues.
    pub fn load(root: &Path, no_ignore: bool, settings: Settings) -> Result<Self, AuditError> {
        // Read and parse each file on the rayon pool as soon as the walk finds it, so
        // parsing overlaps the (system-call bound) walk instead of waiting for it.
        let parsed = Mutex::new(Vec::new());
        let trees = rayon::in_place_scope(|scope| {
            collect::walk_visit(root, no_ignore, |c| {
                let parsed = &parsed;
                scope.spawn(move |_| {
                    crate::heap::reserve_headroom();
                    let file = read_one(&c.abs, &c.rel, c.kind);
                    if let Ok(mut v) = parsed.lock() {
                        v.push(file);
                    }
                });
            })
        })?;
        let mut files = parsed.into_inner().unwrap_or_default();
        // Paths are unique: an unstable sort gives the same order.
        files.sort_unstable_by(|a, b| a.path().cmp(b.path()));
        let root_dir = if root.is_file() {
            root.parent().map(Path::to_path_buf)
        } else {
            Some(root.to_path_buf())
        };
        let mut repo = Self::build(root_dir, files, settings);
        repo.dependency_trees = trees;
        Ok(repo)
    }

    /// An in-memory repository of `(path, text)` pairs (tests, editors).
    #[must_use]
    pub fn from_memory(files: &[(&str, &str)], settings: Settings) -> Self {
        let mut parsed: Vec<ParsedFile> = files
            .iter()
            .map(|(p, t)| ParsedFile::new(p, (*t).to_string()))
            .collect();
        parsed.sort_by(|a, b| a.path().cmp(b.path()));
        Self::build(None, parsed, settings)
    }

    fn build(root: Option<PathBuf>, files: Vec<ParsedFile>, settings: Settings) -> Self {
        let mut index = HashMap::with_capacity(files.len());
        let mut by_kind: HashMap<FileKind, Vec<usize>> = HashMap::new();
        let mut dirs = HashSet::new();
        dirs.insert(String::new());
        for (i, f) in files.iter().enumerate() {
            index.insert(f.path().to_string(), i);
            by_kind.entry(f.kind).or_default().push(i);
            let mut p = f.path();
            while let Some((d, _)) = p.rsplit_once('/') {
                if !dirs.insert(d.to_string()) {
                    break;
                }
                p = d;
            }
        }
        Self {
            root,
            files,
            settings,
            dependency_trees: Vec::new(),
            index,
            by_kind,
            dirs,
            builds: OnceLock::new(),
            disk_dirs: Mutex::new(HashMap::new()),
        }
    }

    /// The file at `path` (relative, `/`-separated), if collected.
    #[must_use]
    pub fn file(&self, path: &str) -> Option<&ParsedFile> {
        self.index.get(path).map(|&i| &self.files[i])
    }

    /// Files of one kind, in path order (indexed: cheap to call per file).
    pub fn files_of(&self, kind: FileKind) -> impl Iterator<Item = &ParsedFile> {
        self.by_kind
            .get(&kind)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&i| &self.files[i])
    }

    /// Does `path` (relative, normalized) exist as a file or directory? Checks collected
    /// files first, then the disk (ignored files such as `.env` exist but are not collected).
    #[must_use]
    pub fn exists(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        if self.index.contains_key(path) || self.dirs.contains(path) {
            return true;
        }
        let Some(root) = &self.root else {
            return false;
        };
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.disk_listing(root, dir).contains(name)
    }

    /// Names in directory `dir` (relative) on disk, cached; empty if it does not exist.
    fn disk_listing(&self, root: &Path, dir: &str) -> Arc<HashSet<String>> {
        if let Ok(cache) = self.disk_dirs.lock()
            && let Some(names) = cache.get(dir)
        {
            return Arc::clone(names);
        }
        let names: HashSet<String> = std::fs::read_dir(root.join(dir))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let names = Arc::new(names);
        if let Ok(mut cache) = self.disk_dirs.lock() {
            cache.insert(dir.to_string(), Arc::clone(&names));
        }
        names
    }

    /// Services (compose or orchestra manifest) that build an image, with the Dockerfile
    /// each builds and its healthcheck, computed once.
    pub fn service_builds(&self) -> &[ServiceBuild] {
        self.builds.get_or_init(|| views::service_builds(self))
    }
}

fn read_one(abs: &Path, rel: &str, kind: FileKind) -> ParsedFile {
    let limit = if kind == FileKind::Other {
        MAX_OTHER_SIZE
    } else {
        MAX_SIZE
    };
    let unreadable = |e: std::io::Error| {
        let mut f = ParsedFile::binary(rel, kind);
        f.doc = Document::Invalid;
        f.issues.push(ParseIssue {
            message: format!("cannot read file: {e}"),
            span: crate::source::Span::default(),
        });
        f
    };
    // Open once and size from the handle: no separate `stat` of the path.
    let mut file = match std::fs::File::open(abs) {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return ParsedFile::binary(rel, kind);
    }
    // With the size known, one `read` fills the buffer: `File::read_to_end` would `stat`
    // and `lseek` the handle again for its size hint, then probe for EOF with another
    // `read`. An empty size (procfs-style files) reads to the end.
    let bytes = if size == 0 {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut file, &mut bytes) {
            return unreadable(e);
        }
        bytes
    } else {
        let mut bytes = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < bytes.len() {
            match std::io::Read::read(&mut file, &mut bytes[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return unreadable(e),
            }
        }
        bytes.truncate(filled);
        bytes
    };
    // NUL in the first 8 KiB: binary, like git's heuristic.
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return ParsedFile::binary(rel, kind);
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    ParsedFile::with_kind(rel, kind, text)
}

/// Join `rel` onto directory `base` (both relative, `/`-separated), resolving `.` and
/// `..`. Returns `None` for absolute paths or paths that leave the root.
#[must_use]
pub fn join_path(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.starts_with('~') || rel.contains("://") {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths() {
        assert_eq!(join_path("a/b", "../c").as_deref(), Some("a/c"));
        assert_eq!(join_path("", "./x/").as_deref(), Some("x"));
        assert_eq!(join_path("", "../x"), None);
        assert_eq!(join_path("a", "/etc"), None);
    }

    #[test]
    fn in_memory_repo_knows_dirs() {
        let r = Repository::from_memory(&[("svc/api/Dockerfile", "FROM x\n")], Settings::default());
        assert!(r.exists("svc"));
        assert!(r.exists("svc/api/"));
        assert!(r.exists("svc/api/Dockerfile"));
        assert!(!r.exists("svc/web"));
    }
}
