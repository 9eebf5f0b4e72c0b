//! The content of a static site directory (`route.static`): which files it
//! holds and a digest of their relative paths and bytes.
//!
//! The digest is part of the service's revision, so a rebuilt directory is a
//! new revision; the runtime lists the directory again with the same rules
//! when it snapshots a revision, and checks that the digest still matches.
//!
//! Hidden entries (a name starting with `.`, except `.well-known`) are left
//! out, as the proxy never serves them: `.git`, `.env` or a project's own
//! `.orchestra/` inside the directory are neither hashed nor copied.

use std::hash::Hasher;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFile {
    /// Path relative to the site's root, `/`-separated.
    pub path: String,
    /// Where its bytes are read from (a symbolic link inside the root is read
    /// through to its target).
    pub source: PathBuf,
    /// Size in bytes.
    pub len: u64,
    /// FNV-1a 64 of its bytes.
    pub hash: u64,
}

/// Every file of a site, sorted by relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The files.
    pub files: Vec<SiteFile>,
}

impl Listing {
    /// 16 hex characters over every file's relative path, size and content hash.
    #[must_use]
    pub fn digest(&self) -> String {
        let mut h = fnv::FnvHasher::default();
        for f in &self.files {
            h.write(f.path.as_bytes());
            h.write(&[0]);
            h.write(&f.len.to_le_bytes());
            h.write(&f.hash.to_le_bytes());
        }
        format!("{:016x}", h.finish())
    }

    /// Total size of the files in bytes.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.len).sum()
    }

    /// The file at this relative path.
    #[must_use]
    pub fn file(&self, path: &str) -> Option<&SiteFile> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Why a site directory cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The directory does not exist.
    #[error("static directory not found: {}", .0.display())]
    NotFound(PathBuf),
    /// The path exists but is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A symbolic link points outside the directory (the proxy would never serve it).
    #[error("{} links outside the static directory (to {})", .link.display(), .target.display())]
    Escapes {
        /// The link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A name that is not UTF-8, or an entry that is neither a file nor a directory.
    #[error("{}: {why}", .path.display())]
    Unsupported {
        /// The entry.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Reading failed.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Whether a path segment names a hidden entry, which is neither listed nor served.
#[must_use]
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('.') && name != ".well-known"
}

/// Lists and hashes every file under `dir`.
///
/// # Errors
/// [`SiteError`] naming the entry that could not be listed or read.
pub fn scan(dir: &Path) -> Result<Listing, SiteError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SiteError::Io { path, source }
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SiteError::NotFound(dir.to_path_buf()));
        }
        Err(e) => return Err(io(dir)(e)),
    };
    if !meta.is_dir() {
        return Err(SiteError::NotADirectory(dir.to_path_buf()));
    }
    let root = std::fs::canonicalize(dir).map_err(io(dir))?;
    let mut files = Vec::new();
    // (real directory, its path relative to the root, the real directories it is listed
    // under): a link to one of those would list forever.
    let mut stack = vec![(root.clone(), String::new(), Vec::new())];
    while let Some((real_dir, rel_dir, mut above)) = stack.pop() {
        above.push(real_dir.clone());
        let entries = std::fs::read_dir(&real_dir).map_err(io(&real_dir))?;
        for entry in entries {
            let entry = entry.map_err(io(&real_dir))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(SiteError::Unsupported {
                    path,
                    why: "the name is not UTF-8",
                });
            };
            if is_hidden(&name) {
                continue;
            }
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            let kind = entry.file_type().map_err(io(&path))?;
            let real = if kind.is_symlink() {
                let target = std::fs::canonicalize(&path).map_err(io(&path))?;
                if !target.starts_with(&root) {
                    return Err(SiteError::Escapes { link: path, target });
                }
                target
            } else {
                path.clone()
            };
            let meta = std::fs::metadata(&real).map_err(io(&real))?;
            if meta.is_dir() {
                if above.contains(&real) {
                    return Err(SiteError::Unsupported {
                        path,
                        why: "links to a directory it is inside of",
                    });
                }
                stack.push((real, rel, above.clone()));
            } else if meta.is_file() {
                let (len, hash) = hash_file(&real).map_err(io(&real))?;
                files.push(SiteFile {
                    path: rel,
                    source: real,
                    len,
                    hash,
                });
            } else {
                return Err(SiteError::Unsupported {
                    path,
                    why: "neither a file nor a directory",
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Listing { files })
}

/// The size and FNV-1a 64 hash of a file's bytes, read in blocks.
///
/// # Errors
/// The OS error reading it.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut h = fnv::FnvHasher::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.write(&buf[..n]);
        len += n as u64;
    }
    Ok((len, h.finish()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn lists_files_sorted_and_skips_hidden_ones() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "index.html", "<h1>hi</h1>");
        write(d.path(), "assets/app-3f2a9c1b.js", "console.log(1)");
        write(d.path(), ".git/HEAD", "ref");
        write(d.path(), ".well-known/security.txt", "contact");
        write(d.path(), "assets/.env", "KEY=1");
        let l = scan(d.path()).unwrap();
        let paths: Vec<&str> = l.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".well-known/security.txt",
                "assets/app-3f2a9c1b.js",
                "index.html"
            ]
        );
        assert_eq!(l.bytes(), 7 + 14 + 11);
        assert_eq!(l.file("index.html").unwrap().len, 11);
    }

    #[test]
    fn the_digest_follows_paths_and_bytes_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "index.html", "v1");
        write(b.path(), "index.html", "v1");
        let da = scan(a.path()).unwrap().digest();
        assert_eq!(da, scan(b.path()).unwrap().digest());
        write(b.path(), "index.html", "v2");
        assert_ne!(da, scan(b.path()).unwrap().digest());
        // Same bytes under another name.
        let c = tempfile::tempdir().unwrap();
        write(c.path(), "main.html", "v1");
        assert_ne!(da, scan(c.path()).unwrap().digest());
    }

    #[test]
    fn links_inside_are_read_through_and_links_outside_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(d.path(), "real.txt", "x");
        write(outside.path(), "secret", "s");
        std::os::unix::fs::symlink(d.path().join("real.txt"), d.path().join("alias.txt")).unwrap();
        let l = scan(d.path()).unwrap();
        assert_eq!(l.files.len(), 2);
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("leak")).unwrap();
        let e = scan(d.path()).unwrap_err();
        assert!(matches!(e, SiteError::Escapes { .. }), "{e}");
        std::fs::remove_file(d.path().join("leak")).unwrap();
        std::os::unix::fs::symlink(d.path(), d.path().join("loop")).unwrap();
        let e = scan(d.path()).unwrap_err();
        assert!(e.to_string().contains("inside of"), "{e}");
        // A link to a sibling directory is an alias, not a loop.
        std::fs::remove_file(d.path().join("loop")).unwrap();
        write(d.path(), "v2/app.js", "2");
        std::os::unix::fs::symlink(d.path().join("v2"), d.path().join("latest")).unwrap();
        let paths: Vec<String> = scan(d.path())
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            paths,
            ["alias.txt", "latest/app.js", "real.txt", "v2/app.js"]
        );
    }

    #[test]
    fn a_missing_directory_or_a_file_is_named() {
        let d = tempfile::tempdir().unwrap();
        let e = scan(&d.path().join("dist")).unwrap_err();
        assert!(matches!(e, SiteError::NotFound(_)), "{e}");
        write(d.path(), "file", "x");
        let e = scan(&d.path().join("file")).unwrap_err();
        assert!(matches!(e, SiteError::NotADirectory(_)), "{e}");
    }
}
