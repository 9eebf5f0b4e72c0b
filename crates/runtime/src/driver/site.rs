//! The static driver: a static site (`route.static`) runs nothing. Starting
//! its one replica snapshots the directory into the project's state
//! (`<static_dir>/<service>/<revision>/`), so that the revision stays
//! servable after the directory is rebuilt in place; the proxy serves the
//! snapshot ([`crate::Runtime::site_root`]).
//!
//! A snapshot is made once per revision and never changes. A file whose
//! path and content an earlier snapshot of the service already holds is
//! hard-linked from there; any other is copied (the kernel shares the
//! blocks where the filesystem can). Links into the directory being
//! rebuilt are never made: a build that rewrote a file in place would
//! change the old revision's content with it. The newest
//! [`KEEP_SNAPSHOTS`] snapshots of a service and those in use stay; older
//! ones are pruned.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use orchestra_manifest::Workload;
use orchestra_manifest::site::{self, Listing};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{BoxFuture, Driver, Replica, ReplicaSpec, StartError};
use crate::backoff::Exit;
use crate::probe::ExecContext;

/// Snapshots kept per service beyond those in use: enough for `rollback` to
/// reach the last few revisions, cold.
pub const KEEP_SNAPSHOTS: usize = 5;

/// Where the snapshot of one revision of a static service lives.
pub fn snapshot_dir(static_dir: &Path, service: &str, revision: &str) -> PathBuf {
    static_dir.join(service).join(revision)
}

/// The index written beside a snapshot: what it holds, for linking later
/// snapshots to it. Its modification time orders snapshots for pruning.
fn index_path(snapshot: &Path) -> PathBuf {
    snapshot.with_extension("index")
}

#[derive(Debug, Serialize, Deserialize)]
struct IndexEntry {
    path: String,
    len: u64,
    hash: u64,
}

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The directory cannot be listed or read.
    #[error(transparent)]
    Scan(#[from] site::SiteError),
    /// Its content is not the revision's any more.
    #[error(
        "{} no longer holds the content of this revision (it was {expected}, it is now {now}), and no snapshot of the revision was kept; deploy again to ship what it holds now",
        .dir.display()
    )]
    Changed {
        /// The directory.
        dir: PathBuf,
        /// The revision's content digest.
        expected: String,
        /// What it holds now.
        now: String,
    },
    /// Writing the snapshot failed.
    #[error("cannot write the snapshot {}: {source}", .path.display())]
    Io {
        /// What was being written.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its root.
    pub root: PathBuf,
    /// Files in it.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Files hard-linked from an earlier snapshot.
    pub linked: usize,
    /// It existed already (a revision started again, or rolled back to).
    pub reused: bool,
}

/// Makes (or finds) the snapshot of `dir` for a revision whose content digest
/// is `expected`, at `target`.
///
/// # Errors
/// [`SnapshotError`]: the directory cannot be read, holds other content now,
/// or the snapshot cannot be written.
pub fn snapshot(dir: &Path, expected: &str, target: &Path) -> Result<Snapshot, SnapshotError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    if target.is_dir() {
        // Touched: a snapshot in use again counts as recent when pruning.
        let (files, bytes) = read_index(&index_path(target))
            .map_or((0, 0), |idx| (idx.len(), idx.iter().map(|e| e.len).sum()));
        touch(&index_path(target));
        return Ok(Snapshot {
            root: target.to_path_buf(),
            files,
            bytes,
            linked: 0,
            reused: true,
        });
    }
    let listing = site::scan(dir)?;
    let changed = |now: String| SnapshotError::Changed {
        dir: dir.to_path_buf(),
        expected: expected.to_owned(),
        now,
    };
    if listing.digest() != expected {
        return Err(changed(listing.digest()));
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let earlier = earlier_files(parent);
    let tmp = parent.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        target.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let made = fill(&listing, &tmp, &earlier).map_err(|e| match e {
        Fill::Io(path, source) => SnapshotError::Io { path, source },
        // Rewritten while it was being copied.
        Fill::Changed => changed("being rewritten".into()),
    });
    let linked = match made {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    write_index(&index_path(target), &listing).map_err(io(&index_path(target)))?;
    // Complete or absent: a snapshot appears by one rename.
    if let Err(e) = std::fs::rename(&tmp, target) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !target.is_dir() {
            return Err(io(target)(e));
        }
    }
    Ok(Snapshot {
        root: target.to_path_buf(),
        files: listing.files.len(),
        bytes: listing.bytes(),
        linked,
        reused: false,
    })
}

enum Fill {
    Io(PathBuf, std::io::Error),
    Changed,
}

/// Copies (or links) every file of `listing` under `tmp`; how many were linked.
fn fill(
    listing: &Listing,
    tmp: &Path,
    earlier: &HashMap<(String, u64, u64), PathBuf>,
) -> Result<usize, Fill> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| Fill::Io(path, e)
    };
    std::fs::create_dir_all(tmp).map_err(io(tmp))?;
    let mut linked = 0;
    for f in &listing.files {
        let dest = tmp.join(&f.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if let Some(from) = earlier.get(&(f.path.clone(), f.len, f.hash))
            && std::fs::hard_link(from, &dest).is_ok()
        {
            linked += 1;
            continue;
        }
        std::fs::copy(&f.source, &dest).map_err(io(&dest))?;
        if site::hash_file(&dest).map_err(io(&dest))? != (f.len, f.hash) {
            return Err(Fill::Changed);
        }
        // The build's modification time, for Last-Modified.
        if let Ok(mtime) = std::fs::metadata(&f.source).and_then(|m| m.modified()) {
            let _ = std::fs::File::options()
                .write(true)
                .open(&dest)
                .and_then(|file| file.set_modified(mtime));
        }
    }
    Ok(linked)
}

/// Files of the service's earlier snapshots, by (path, size, hash).
fn earlier_files(service_dir: &Path) -> HashMap<(String, u64, u64), PathBuf> {
    let mut out = HashMap::new();
    for (root, _) in snapshots(service_dir) {
        for e in read_index(&index_path(&root)).unwrap_or_default() {
            let file = root.join(&e.path);
            out.entry((e.path, e.len, e.hash)).or_insert(file);
        }
    }
    out
}

fn read_index(path: &Path) -> Option<Vec<IndexEntry>> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_index(path: &Path, listing: &Listing) -> std::io::Result<()> {
    let entries: Vec<IndexEntry> = listing
        .files
        .iter()
        .map(|f| IndexEntry {
            path: f.path.clone(),
            len: f.len,
            hash: f.hash,
        })
        .collect();
    let tmp = path.with_extension("index.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(&entries).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
}

/// The complete snapshots of a service, newest first (by their index's time).
fn snapshots(service_dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(service_dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, SystemTime)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !is_tmp(p))
        .map(|p| {
            let at = std::fs::metadata(index_path(&p))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (p, at)
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.1));
    out
}

fn is_tmp(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".tmp-"))
}

/// Removes the snapshots of a service beyond the newest `keep` that are not
/// in `in_use`, and half-written ones another process left. Returns what it removed.
pub fn prune(service_dir: &Path, keep: usize, in_use: &[PathBuf]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for (root, _) in snapshots(service_dir).into_iter().skip(keep) {
        if in_use.contains(&root) {
            continue;
        }
        if std::fs::remove_dir_all(&root).is_ok() {
            let _ = std::fs::remove_file(index_path(&root));
            removed.push(root);
        }
    }
    let mine = format!(".tmp-{}-", std::process::id());
    if let Ok(entries) = std::fs::read_dir(service_dir) {
        for p in entries.filter_map(Result::ok).map(|e| e.path()) {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if is_tmp(&p) && !name.starts_with(&mine) && std::fs::remove_dir_all(&p).is_ok() {
                removed.push(p);
            }
        }
    }
    removed
}

/// Snapshots served by running replicas, with how many replicas serve each.
type InUse = Arc<Mutex<HashMap<PathBuf, usize>>>;

/// Starts static sites: a snapshot, no process.
#[derive(Debug, Clone)]
pub struct StaticDriver {
    /// Where snapshots live (`.orchestra/static`).
    pub static_dir: PathBuf,
    in_use: InUse,
}

impl StaticDriver {
    /// A driver keeping its snapshots under `static_dir`.
    pub fn new(static_dir: PathBuf) -> Self {
        StaticDriver {
            static_dir,
            in_use: Arc::default(),
        }
    }
}

impl Driver for StaticDriver {
    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
    ) -> BoxFuture<'a, Result<Box<dyn Replica>, StartError>> {
        Box::pin(async move {
            let svc = &spec.service;
            let Workload::Static { dir, content } = &svc.workload else {
                return Err(StartError {
                    summary: format!("service `{}` is not a static site", svc.name),
                    cause: None,
                });
            };
            let target = snapshot_dir(&self.static_dir, &svc.name, &spec.revision);
            let (dir, content, t) = (dir.clone(), content.clone(), target.clone());
            let made = tokio::task::spawn_blocking(move || snapshot(&dir, &content, &t))
                .await
                .unwrap_or_else(|e| {
                    Err(SnapshotError::Io {
                        path: target.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })
                });
            let snap = made.map_err(|e| StartError {
                summary: format!("cannot serve the static site `{}`: {e}", svc.name),
                cause: None,
            })?;
            *self.in_use.lock().entry(snap.root.clone()).or_insert(0) += 1;
            let in_use: Vec<PathBuf> = self.in_use.lock().keys().cloned().collect();
            let service_dir = self.static_dir.join(&svc.name);
            let _ =
                tokio::task::spawn_blocking(move || prune(&service_dir, KEEP_SNAPSHOTS, &in_use))
                    .await;
            // Named from the project's directory in events and `ps`.
            let shown = snap
                .root
                .strip_prefix(&spec.dir)
                .map_or_else(|_| snap.root.clone(), Path::to_path_buf);
            Ok(Box::new(StaticReplica {
                snap,
                shown,
                in_use: self.in_use.clone(),
            }) as Box<dyn Replica>)
        })
    }
}

/// A static site's replica: its snapshot, served by the proxy.
struct StaticReplica {
    snap: Snapshot,
    shown: PathBuf,
    in_use: InUse,
}

impl Drop for StaticReplica {
    fn drop(&mut self) {
        let mut in_use = self.in_use.lock();
        if let Some(n) = in_use.get_mut(&self.snap.root) {
            *n -= 1;
            if *n == 0 {
                in_use.remove(&self.snap.root);
            }
        }
    }
}

/// `1.5 MiB`, `12 KiB`, `300 B`.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        b if b >= KIB * KIB => format!("{:.1} MiB", b as f64 / (KIB * KIB) as f64),
        b if b >= KIB => format!("{:.1} KiB", b as f64 / KIB as f64),
        b => format!("{b} B"),
    }
}

impl Replica for StaticReplica {
    fn describe(&self) -> String {
        let s = &self.snap;
        let how = if s.reused {
            "snapshot kept".to_owned()
        } else if s.linked > 0 {
            let files = if s.linked == 1 { "file" } else { "files" };
            format!("snapshot made, {} unchanged {files} linked", s.linked)
        } else {
            "snapshot made".to_owned()
        };
        format!(
            "static site: {} files, {}, {how} in {}",
            s.files,
            size(s.bytes),
            self.shown.display()
        )
    }

    /// Nothing listens: the proxy serves the files itself.
    fn port(&self) -> u16 {
        0
    }

    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        Box::pin(std::future::pending())
    }

    fn stop<'a>(&'a mut self, _signal: &'a str, _grace: Duration) -> BoxFuture<'a, Exit> {
        Box::pin(async { Exit::Code(0) })
    }

    fn exec_context(&self) -> ExecContext {
        ExecContext::default()
    }

    fn listening_ports(&self) -> BoxFuture<'_, Vec<u16>> {
        Box::pin(async { Vec::new() })
    }

    fn finish(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
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

    fn digest(dir: &Path) -> String {
        site::scan(dir).unwrap().digest()
    }

    fn inode(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().ino()
    }

    #[test]
    fn a_snapshot_outlives_the_directory_being_rebuilt_in_place() {
        let src = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        write(src.path(), "index.html", "v1");
        write(src.path(), "assets/logo.svg", "<svg/>");
        let d1 = digest(src.path());
        let t1 = snapshot_dir(state.path(), "web", "r1");
        let s1 = snapshot(src.path(), &d1, &t1).unwrap();
        assert_eq!((s1.files, s1.bytes, s1.linked, s1.reused), (2, 8, 0, false));
        // Rewritten in place (same inode): the snapshot is a copy, so it keeps v1.
        std::fs::write(src.path().join("index.html"), "v2").unwrap();
        assert_eq!(
            std::fs::read_to_string(t1.join("index.html")).unwrap(),
            "v1"
        );
        // The next revision links what did not change and copies what did.
        let d2 = digest(src.path());
        let t2 = snapshot_dir(state.path(), "web", "r2");
        let s2 = snapshot(src.path(), &d2, &t2).unwrap();
        assert_eq!(s2.linked, 1);
        assert_eq!(
            inode(&t1.join("assets/logo.svg")),
            inode(&t2.join("assets/logo.svg"))
        );
        assert_ne!(inode(&t1.join("index.html")), inode(&t2.join("index.html")));
        assert_eq!(
            std::fs::read_to_string(t2.join("index.html")).unwrap(),
            "v2"
        );
        // Starting r1 again finds its snapshot, though the directory now holds r2.
        let again = snapshot(src.path(), &d1, &t1).unwrap();
        assert!(again.reused);
        assert_eq!((again.files, again.bytes), (2, 8));
        // Each snapshot and its index beside it; nothing half-written is left.
        let mut names: Vec<String> = std::fs::read_dir(state.path().join("web"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["r1", "r1.index", "r2", "r2.index"]);
        assert!(!t1.join("r1.index").exists());
    }

    #[test]
    fn content_other_than_the_revisions_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        write(src.path(), "index.html", "v1");
        let d1 = digest(src.path());
        write(src.path(), "index.html", "v2");
        let t = snapshot_dir(state.path(), "web", "r1");
        let e = snapshot(src.path(), &d1, &t).unwrap_err();
        assert!(matches!(e, SnapshotError::Changed { .. }), "{e}");
        assert!(e.to_string().contains("deploy again"), "{e}");
        assert!(!state.path().join("web").exists(), "nothing is written");
    }

    #[test]
    fn pruning_keeps_the_newest_and_those_in_use() {
        let src = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut roots = Vec::new();
        for i in 0..4 {
            write(src.path(), "index.html", &format!("v{i}"));
            let t = snapshot_dir(state.path(), "web", &format!("r{i}"));
            snapshot(src.path(), &digest(src.path()), &t).unwrap();
            // Distinct, ordered times without waiting for the clock.
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i);
            std::fs::File::options()
                .write(true)
                .open(index_path(&t))
                .unwrap()
                .set_modified(at)
                .unwrap();
            roots.push(t);
        }
        std::fs::create_dir_all(state.path().join("web/.tmp-1-r9")).unwrap();
        let removed = prune(&state.path().join("web"), 2, &[roots[0].clone()]);
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(roots[0].is_dir() && !roots[1].exists() && roots[2].is_dir() && roots[3].is_dir());
        assert!(!index_path(&roots[1]).exists());
    }
}
