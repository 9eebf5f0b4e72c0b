//! `committed-binary-or-archive`: executables, libraries, packages, archives and bytecode
//! committed next to the source, editor and merge leftovers (`*.bak`, `*.orig`, `*.swp`,
//! `*~`), and stray files from an unquoted shell redirect (`pip install x>=2.7.0` writes a
//! file named `=2.7.0`). Decided by name, and for extension-less binaries by their magic
//! bytes (read from disk: binary files are not loaded). A directory with many of them is
//! one finding with the count, so a vendored tree is not hundreds.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::finding::{Confidence, Location, Severity};
use crate::parse::Document;
use crate::repo::{ParsedFile, Repository};
use crate::rule::{Rule, RuleMeta, Sink};

/// Reports committed binaries, archives, backups and stray files.
pub struct CommittedBinaryOrArchive;

static META: RuleMeta = RuleMeta {
    id: "committed-binary-or-archive",
    title: "Binary, archive or backup file committed",
    family: "hygiene",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "Remove the file (`git rm --cached FILE`) and add its pattern to .gitignore; \
           build binaries and packages in CI, fetch dependencies from a registry, and keep \
           large assets that must be versioned in Git LFS.",
};

/// More than this many in one directory are reported as one finding.
const GROUP_OVER: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Executables and shared libraries: code nobody reviewed, run as is.
    Executable,
    /// Packages of code (jar, wheel, …).
    Package,
    /// Plain archives.
    Archive,
    /// Compiled bytecode.
    Bytecode,
    /// Editor, merge and patch leftovers.
    Backup,
    /// Output of an unquoted shell redirect.
    Stray,
}

impl Class {
    fn severity(self) -> Severity {
        match self {
            Class::Executable | Class::Package => Severity::Medium,
            _ => Severity::Low,
        }
    }
}

const EXECUTABLE: &[(&str, &str)] = &[
    (".exe", "Windows executable"),
    (".dll", "Windows library"),
    (".msi", "Windows installer"),
    (".so", "shared library"),
    (".dylib", "macOS library"),
];
const PACKAGE: &[(&str, &str)] = &[
    (".jar", "Java archive"),
    (".war", "Java web archive"),
    (".ear", "Java enterprise archive"),
    (".whl", "Python wheel"),
    (".egg", "Python egg"),
    (".nupkg", "NuGet package"),
    (".deb", "Debian package"),
    (".rpm", "RPM package"),
];
const ARCHIVE: &[(&str, &str)] = &[
    (".tar.gz", "archive"),
    (".tar.bz2", "archive"),
    (".tar.xz", "archive"),
    (".tar.zst", "archive"),
    (".tgz", "archive"),
    (".tbz2", "archive"),
    (".txz", "archive"),
    (".tar", "archive"),
    (".zip", "archive"),
    (".7z", "archive"),
    (".rar", "archive"),
    (".gz", "compressed file"),
];
const BYTECODE: &[(&str, &str)] = &[
    (".pyc", "Python bytecode"),
    (".pyo", "Python bytecode"),
    (".class", "Java class file"),
];
const BACKUP: &[(&str, &str)] = &[
    (".bak", "backup file"),
    (".orig", "merge leftover"),
    (".rej", "rejected patch hunk"),
    (".swp", "editor swap file"),
    (".swo", "editor swap file"),
];

/// Directories whose binaries are test inputs, not build output.
const FIXTURE_DIRS: &[&str] = &[
    "testdata",
    "test-data",
    "test_data",
    "fixtures",
    "fixture",
    "__fixtures__",
    "test-fixtures",
];

/// Committed on purpose by the tools that own them: wrapper jars, Yarn's zero-install
/// cache.
fn is_tool_owned(path: &str, name: &str) -> bool {
    name == "gradle-wrapper.jar"
        || name == "maven-wrapper.jar"
        || path.starts_with(".yarn/")
        || path.contains("/.yarn/")
}

/// `=2.7.0`, `2.7.0`: what `pip install pkg>=2.7.0` (or `>2.7.0`) leaves behind.
fn is_stray_specifier(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix('=') {
        return !rest.is_empty();
    }
    name.starts_with(|c: char| c.is_ascii_digit())
        && name.contains('.')
        && name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn by_suffix(lower: &str) -> Option<(Class, &'static str)> {
    let tables: [(Class, &[(&str, &str)]); 5] = [
        (Class::Executable, EXECUTABLE),
        (Class::Package, PACKAGE),
        (Class::Archive, ARCHIVE),
        (Class::Bytecode, BYTECODE),
        (Class::Backup, BACKUP),
    ];
    for (class, table) in tables {
        for (ext, what) in table {
            if lower.ends_with(ext) && lower.len() > ext.len() {
                return Some((class, what));
            }
        }
    }
    // Versioned shared libraries: `libssl.so.3`, `libfoo.so.1.2.0`.
    if let Some((_, version)) = lower.rsplit_once(".so.")
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Some((Class::Executable, "shared library"));
    }
    None
}

/// The kind of executable `head` starts with (ELF, Mach-O, PE).
fn magic(head: &[u8]) -> Option<&'static str> {
    match head {
        [0x7f, b'E', b'L', b'F', ..] => Some("ELF executable"),
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
        | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
        | [0xca, 0xfe, 0xba, 0xbe, ..] => Some("Mach-O executable"),
        [b'M', b'Z', ..] => Some("Windows executable"),
        _ => None,
    }
}

fn read_head(root: &Path, rel: &str) -> Vec<u8> {
    let mut head = [0u8; 4];
    let Ok(mut f) = std::fs::File::open(root.join(rel)) else {
        return Vec::new();
    };
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    head[..n].to_vec()
}

fn size_on_disk(repo: &Repository, file: &ParsedFile) -> u64 {
    match &repo.root {
        Some(root) => std::fs::metadata(root.join(file.path())).map_or(0, |m| m.len()),
        None => file.source.text.len() as u64,
    }
}

fn human(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    if bytes >= MB {
        format!("{:.1} MiB", bytes as f64 / MB as f64)
    } else if bytes >= KB {
        format!("{:.1} KiB", bytes as f64 / KB as f64)
    } else {
        format!("{bytes} B")
    }
}

/// Patterns `.gitattributes` files store in Git LFS (`*.zip filter=lfs …`).
fn lfs_patterns(repo: &Repository) -> Option<GlobSet> {
    let mut b = GlobSetBuilder::new();
    let mut any = false;
    for f in repo.files.iter().filter(|f| f.name() == ".gitattributes") {
        let dir = f.dir();
        for line in f.source.text.lines() {
            let mut parts = line.split_whitespace();
            let Some(pattern) = parts.next() else {
                continue;
            };
            if pattern.starts_with('#') || !parts.any(|a| a == "filter=lfs") {
                continue;
            }
            let pattern = pattern.trim_start_matches('/');
            let rel = if line.trim_start().starts_with('/') || pattern.contains('/') {
                pattern.to_string()
            } else {
                format!("**/{pattern}")
            };
            let full = if dir.is_empty() {
                rel
            } else {
                format!("{dir}/{rel}")
            };
            if let Ok(g) = GlobBuilder::new(&full).literal_separator(true).build() {
                b.add(g);
                any = true;
            }
        }
    }
    any.then(|| b.build().ok()).flatten()
}

struct Hit<'a> {
    file: &'a ParsedFile,
    class: Class,
    what: &'static str,
    bytes: u64,
}

fn hit<'a>(repo: &Repository, file: &'a ParsedFile) -> Option<Hit<'a>> {
    let name = file.name();
    let path = file.path();
    let lower = name.to_ascii_lowercase();
    let binary = matches!(file.doc, Document::Binary);
    let (class, what) = if is_stray_specifier(name) {
        (Class::Stray, "stray file")
    } else if lower.ends_with('~') && name.len() > 1 {
        (Class::Backup, "backup file")
    } else if let Some(found) = by_suffix(&lower) {
        found
    } else if binary && !name.trim_start_matches('.').contains('.') {
        let head = repo
            .root
            .as_deref()
            .map(|root| read_head(root, path))
            .unwrap_or_default();
        (Class::Executable, magic(&head)?)
    } else {
        return None;
    };
    if matches!(
        class,
        Class::Executable | Class::Package | Class::Archive | Class::Bytecode
    ) {
        let in_fixtures = path
            .split('/')
            .rev()
            .skip(1)
            .any(|d| FIXTURE_DIRS.contains(&d));
        // A Git LFS pointer (the object was not fetched) is a text stub.
        let lfs_pointer = file
            .source
            .text
            .starts_with("version https://git-lfs.github.com/spec/");
        if in_fixtures || lfs_pointer || is_tool_owned(path, name) {
            return None;
        }
    }
    Some(Hit {
        file,
        class,
        what,
        bytes: size_on_disk(repo, file),
    })
}

fn report_one(h: &Hit<'_>, out: &mut Sink) {
    let name = h.file.name();
    let loc = Location::whole_file(h.file.path(), h.what);
    let (message, help) = match h.class {
        Class::Stray => (
            format!(
                "stray file `{name}` ({}) looks like the output of an unquoted shell \
                 redirect: `pip install pkg>={v}` writes pip's output to a file named `={v}`",
                human(h.bytes),
                v = name.trim_start_matches('=')
            ),
            "Delete the file and quote version specifiers in shell commands \
             (`pip install \"pkg>=2.7.0\"`), in scripts, Dockerfiles and CI steps alike.",
        ),
        Class::Backup => (
            format!("{} `{name}` is committed ({})", h.what, human(h.bytes)),
            "Delete the leftover (`git rm --cached FILE`) and ignore the pattern \
             (`*.bak`, `*.orig`, `*.rej`, `*.swp`, `*~`) in .gitignore or your global \
             excludes file.",
        ),
        _ => (
            format!("{} `{name}` is committed ({})", h.what, human(h.bytes)),
            META.help,
        ),
    };
    out.report(loc, message)
        .severity(h.class.severity())
        .help(help)
        .emit();
}

impl Rule for CommittedBinaryOrArchive {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        let lfs = lfs_patterns(repo);
        let mut by_dir: BTreeMap<&str, Vec<Hit<'_>>> = BTreeMap::new();
        for file in &repo.files {
            if let Some(h) = hit(repo, file) {
                if lfs.as_ref().is_some_and(|g| g.is_match(file.path())) {
                    continue;
                }
                by_dir.entry(file.dir()).or_default().push(h);
            }
        }
        for (dir, hits) in by_dir {
            if hits.len() <= GROUP_OVER {
                for h in &hits {
                    report_one(h, out);
                }
                continue;
            }
            let bytes: u64 = hits.iter().map(|h| h.bytes).sum();
            let severity = hits
                .iter()
                .map(|h| h.class.severity())
                .max()
                .unwrap_or(META.severity);
            let names: Vec<&str> = hits.iter().take(3).map(|h| h.file.name()).collect();
            let shown = if dir.is_empty() { "." } else { dir };
            out.report(
                Location::whole_file(hits[0].file.path(), format!("{} files", hits.len())),
                format!(
                    "`{shown}/` holds {} committed binaries, archives or leftovers ({}): {}, …",
                    hits.len(),
                    human(bytes),
                    names.join(", ")
                ),
            )
            .severity(severity)
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Settings;
    use crate::testing::{run_repo_rule, run_rule};

    #[test]
    fn reports_binaries_archives_backups_and_stray_files() {
        let f = run_rule(
            &CommittedBinaryOrArchive,
            &[
                ("dist/app.exe", "x"),
                ("lib/libssl.so.3", "x"),
                ("release/site.tar.gz", "x"),
                ("wheels/requests-2.31.0-py3-none-any.whl", "x"),
                ("app/models.pyc", "x"),
                ("src/main.rs.orig", "x"),
                ("notes.txt~", "x"),
                ("=2.7.0", "Requirement already satisfied: requests\n"),
            ],
        );
        assert_eq!(f.len(), 8, "{f:?}");
        let by = |p: &str| f.iter().find(|x| x.locations[0].path == p).unwrap();
        assert_eq!(by("dist/app.exe").severity, Severity::Medium);
        assert_eq!(
            by("lib/libssl.so.3").message,
            "shared library `libssl.so.3` is committed (1 B)"
        );
        assert_eq!(by("release/site.tar.gz").severity, Severity::Low);
        assert!(by("=2.7.0").message.contains("`pip install pkg>=2.7.0`"));
        assert!(by("=2.7.0").help.contains("quote"));
        assert!(by("notes.txt~").message.starts_with("backup file"));
    }

    #[test]
    fn many_in_one_directory_are_one_finding() {
        let names: Vec<String> = (0..40)
            .map(|i| format!("vendor/jars/lib{i:02}.jar"))
            .collect();
        let mut files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "xx")).collect();
        files.push(("vendor/other/one.zip", "x"));
        let f = run_rule(&CommittedBinaryOrArchive, &files);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(
            f[0].message,
            "`vendor/jars/` holds 40 committed binaries, archives or leftovers (80 B): \
             lib00.jar, lib01.jar, lib02.jar, …"
        );
        assert_eq!(f[0].severity, Severity::Medium);
    }

    #[test]
    fn fixtures_wrappers_lfs_and_ordinary_files_are_fine() {
        let f = run_rule(
            &CommittedBinaryOrArchive,
            &[
                ("tests/fixtures/sample.zip", "x"),
                ("pkg/testdata/hello.exe", "x"),
                ("gradle/wrapper/gradle-wrapper.jar", "x"),
                (".yarn/cache/lodash-npm-4.17.21.zip", "x"),
                (
                    ".gitattributes",
                    "*.psd filter=lfs diff=lfs merge=lfs -text\nassets/** filter=lfs\n",
                ),
                ("design/logo.psd", "x"),
                ("assets/video.zip", "x"),
                (
                    "models/weights.tar.gz",
                    "version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3\n",
                ),
                ("docs/logo.png", "x"),
                ("src/zip.rs", "x"),
                ("migrations/0001_initial.py", "x"),
                ("bin/run", "#!/bin/sh\necho\n"),
                ("v1.2", "x"),
                ("so", "x"),
                (".bak", "x"),
                ("~", "x"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn extensionless_executables_by_magic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        elf.extend_from_slice(&[0u8; 64]);
        std::fs::write(dir.path().join("bin/server"), &elf).unwrap();
        let mut data = b"DATA".to_vec();
        data.extend_from_slice(&[0u8; 64]);
        std::fs::write(dir.path().join("bin/blob"), &data).unwrap();
        std::fs::write(dir.path().join("bin/tool"), "#!/bin/sh\n").unwrap();
        let repo = Repository::load(dir.path(), true, Settings::default()).unwrap();
        let f = run_repo_rule(&CommittedBinaryOrArchive, &repo);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].locations[0].path, "bin/server");
        assert_eq!(f[0].message, "ELF executable `server` is committed (72 B)");
        assert_eq!(f[0].severity, Severity::Medium);
    }
}
