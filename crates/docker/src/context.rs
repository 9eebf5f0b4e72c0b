//! The build context: the context directory packed as a tar archive for the
//! Engine, leaving out what `.dockerignore` excludes.
//!
//! `.dockerignore` is followed roughly as Docker does: one pattern per line,
//! `#` comments, patterns anchored at the context root, `*` within one path
//! segment, `**` across segments, `!` re-includes, the last matching line
//! wins, and a pattern that matches a directory excludes what is inside it.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::error::DockerError;

/// The patterns of a `.dockerignore` file.
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<(GlobMatcher, bool)>,
    has_exceptions: bool,
}

impl Ignore {
    /// Parse the text of a `.dockerignore` file. Lines that are not valid
    /// patterns are skipped.
    pub fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pat = pat.trim_start_matches("./").trim_start_matches('/');
            let pat = pat.trim_end_matches('/');
            if pat.is_empty() {
                continue;
            }
            if let Ok(g) = GlobBuilder::new(pat)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher())
            {
                rules.push((g, include));
            }
        }
        let has_exceptions = rules.iter().any(|(_, inc)| *inc);
        Ignore {
            rules,
            has_exceptions,
        }
    }

    /// Whether `rel` (a path relative to the context, `/`-separated) is excluded.
    pub fn excludes(&self, rel: &str) -> bool {
        let mut excluded = false;
        for (glob, include) in &self.rules {
            // The pattern matches the path itself or one of its parents.
            let hit = std::iter::successors(Some(rel), |p| p.rsplit_once('/').map(|(a, _)| a))
                .any(|p| glob.is_match(p));
            if hit {
                excluded = !include;
            }
        }
        excluded
    }
}

/// Pack `context` into a tar archive, without what its `.dockerignore`
/// excludes; `dockerfile` (relative to the context) is always included.
pub fn pack(context: &Path, dockerfile: &Path) -> Result<Vec<u8>, DockerError> {
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(t) => Ignore::parse(&t),
        Err(_) => Ignore::default(),
    };
    let mut files = Vec::new();
    walk(context, context, &ignore, &mut files)?;
    let df = dockerfile.to_string_lossy().replace('\\', "/");
    if !files.iter().any(|(rel, _)| *rel == df) {
        files.push((df, context.join(dockerfile)));
    }
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    for (rel, path) in &files {
        b.append_path_with_name(path, rel)
            .map_err(|source| DockerError::Context {
                path: path.clone(),
                source,
            })?;
    }
    b.into_inner().map_err(|source| DockerError::Context {
        path: context.to_owned(),
        source,
    })
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &Ignore,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), DockerError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| DockerError::Context { path, source }
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(err(dir))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let excluded = ignore.excludes(&rel);
        let ft = e.file_type().map_err(err(&path))?;
        if ft.is_dir() {
            // Excluded directories are not even read, unless a `!` line may
            // bring something inside back.
            if excluded && !ignore.has_exceptions {
                continue;
            }
            if !excluded {
                out.push((rel, path.clone()));
            }
            walk(root, &path, ignore, out)?;
        } else if !excluded {
            out.push((rel, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_anchor_at_the_root_and_cover_directories() {
        let i = Ignore::parse("# comment\ntarget\n*.log\n**/node_modules\n!keep.log\n/secret/\n");
        assert!(i.excludes("target"));
        assert!(i.excludes("target/debug/app"));
        assert!(!i.excludes("src/target.rs"));
        assert!(i.excludes("app.log"));
        assert!(!i.excludes("logs/app.log"), "* stays within one segment");
        assert!(!i.excludes("keep.log"), "! re-includes");
        assert!(i.excludes("web/node_modules/x/y.js"));
        assert!(i.excludes("secret/key"));
        assert!(!i.excludes("Dockerfile"));
    }

    #[test]
    fn the_archive_leaves_out_ignored_files_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("target/debug")).unwrap();
        std::fs::write(d.join("target/debug/big"), "x").unwrap();
        std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.join("app.txt"), "hello").unwrap();
        std::fs::write(d.join(".dockerignore"), "target\nDockerfile\n").unwrap();
        let bytes = pack(d, Path::new("Dockerfile")).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "app.txt"]);
    }
}
