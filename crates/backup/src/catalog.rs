//! The catalog: one JSON entry per backup (`ID.json`) beside its file, which it owns.
//! Listing, choosing and checking backups are pure functions over the entries.

use std::io::Read;
use std::path::{Path, PathBuf};

use orchestra_manifest::BackupSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{BackupError, Result};

/// One backup, as its catalog entry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Sortable id from its time, e.g. `20261202T033000.123Z`.
    pub id: String,
    /// The service backed up.
    pub service: String,
    /// `redis`, `postgres` or `command`.
    pub kind: String,
    /// What the file holds once decrypted: `rdb`, `pg_dump-custom`, `pg_dumpall-sql`, `stdout`.
    pub format: String,
    /// When it was taken (ms since the epoch).
    pub created_at_ms: i64,
    /// The backup file's name, in the same directory.
    pub file: String,
    /// The file's size in bytes (as stored, encrypted or not).
    pub size: u64,
    /// sha256 of the file as stored, lowercase hex.
    pub sha256: String,
    /// Encrypted to the project's age recipients.
    pub encrypted: bool,
    /// The release it is the restore point of, when taken before a release's migrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<i64>,
}

impl Entry {
    /// Whether this backup is a release's restore point.
    pub fn is_restore_point(&self) -> bool {
        self.release.is_some()
    }
}

/// The directory a service's backups go to: `backup.dir`, else
/// `.orchestra/backups/<service>/` beside the manifest.
pub fn dir_for(manifest_dir: &Path, service: &str, spec: &BackupSpec) -> PathBuf {
    spec.dir.clone().unwrap_or_else(|| {
        manifest_dir
            .join(".orchestra")
            .join("backups")
            .join(service)
    })
}

/// A new id for a backup taken at `now_ms`: the basic ISO 8601 time in UTC, with a
/// `-N` suffix when another backup already has it.
pub fn new_id(now_ms: i64, taken: &[Entry]) -> String {
    let base: String = orchestra_clock::format_ms(now_ms)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let mut id = base.clone();
    let mut n = 2;
    while taken.iter().any(|e| e.id == id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// The entries sorted oldest first (by time, then id).
pub fn sorted(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    entries
}

/// The backup a restore takes: `from` by id, else the newest.
pub fn select<'a>(
    entries: &'a [Entry],
    service: &str,
    dir: &Path,
    from: Option<&str>,
) -> Result<&'a Entry> {
    match from {
        Some(id) => entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| BackupError::UnknownBackup {
                service: service.to_owned(),
                id: id.to_owned(),
                dir: dir.to_owned(),
            }),
        None => entries
            .iter()
            .max_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)))
            .ok_or_else(|| BackupError::NoBackups {
                service: service.to_owned(),
                dir: dir.to_owned(),
            }),
    }
}

/// Every entry in `dir`, oldest first; a missing directory has none.
pub fn list(dir: &Path) -> Result<Vec<Entry>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io("read", dir, e)),
    };
    let mut out = Vec::new();
    for item in rd {
        let item = item.map_err(|e| BackupError::io("read", dir, e))?;
        let path = item.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| BackupError::io("read", &path, e))?;
        let entry: Entry = serde_json::from_str(&text).map_err(|e| BackupError::Catalog {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        out.push(entry);
    }
    Ok(sorted(out))
}

/// Write `entry`'s catalog file (atomically: a temporary file renamed over it).
pub fn write(dir: &Path, entry: &Entry) -> Result<()> {
    let path = dir.join(format!("{}.json", entry.id));
    let mut text = serde_json::to_string_pretty(entry).map_err(|e| BackupError::Catalog {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    orchestra_secrets::replace_file(&path, text.as_bytes(), 0o600)?;
    Ok(())
}

/// Remove a backup: its file, then its entry.
pub fn remove(dir: &Path, entry: &Entry) -> Result<()> {
    for name in [entry.file.clone(), format!("{}.json", entry.id)] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io("remove", &path, e)),
        }
    }
    Ok(())
}

/// sha256 of bytes, lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| BackupError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The backup's file, once its sum matches the catalog's; a mismatch names the file and
/// both sums.
pub fn checked(dir: &Path, entry: &Entry) -> Result<PathBuf> {
    let file = dir.join(&entry.file);
    let actual = sha256_file(&file)?;
    compare(&file, &entry.sha256, &actual)?;
    Ok(file)
}

/// [`BackupError::Checksum`] unless the sums agree.
pub fn compare(file: &Path, expected: &str, actual: &str) -> Result<()> {
    if expected.eq_ignore_ascii_case(actual) {
        Ok(())
    } else {
        Err(BackupError::Checksum {
            file: file.to_owned(),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn entry(id: &str, at: i64) -> Entry {
        Entry {
            id: id.into(),
            service: "redis".into(),
            kind: "redis".into(),
            format: "rdb".into(),
            created_at_ms: at,
            file: format!("{id}.rdb"),
            size: 3,
            sha256: sha256(b"abc"),
            encrypted: false,
            release: None,
        }
    }

    #[test]
    fn ids_sort_by_time_and_never_collide() {
        let a = new_id(1_764_646_200_123, &[]);
        assert_eq!(a, "20251202T033000.123Z");
        let taken = vec![entry(&a, 0)];
        assert_eq!(new_id(1_764_646_200_123, &taken), "20251202T033000.123Z-2");
        assert!(new_id(1_764_646_200_124, &[]) > a);
    }

    #[test]
    fn select_takes_the_newest_or_the_one_named() {
        let dir = Path::new("/b");
        let all = vec![entry("a", 1), entry("c", 3), entry("b", 2)];
        assert_eq!(select(&all, "redis", dir, None).unwrap().id, "c");
        assert_eq!(select(&all, "redis", dir, Some("b")).unwrap().id, "b");
        let e = select(&all, "redis", dir, Some("zz"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no backup `zz` of `redis`"), "{e}");
        let e = select(&[], "redis", dir, None).unwrap_err().to_string();
        assert!(e.contains("orchestra backup run redis"), "{e}");
    }

    #[test]
    fn a_changed_file_fails_its_check_naming_both_sums() {
        let d = tempfile::tempdir().unwrap();
        let e = entry("x", 1);
        std::fs::write(d.path().join(&e.file), b"abc").unwrap();
        write(d.path(), &e).unwrap();
        assert_eq!(list(d.path()).unwrap(), vec![e.clone()]);
        assert_eq!(checked(d.path(), &e).unwrap(), d.path().join("x.rdb"));
        std::fs::write(d.path().join(&e.file), b"abd").unwrap();
        let err = checked(d.path(), &e).unwrap_err().to_string();
        assert!(err.contains("x.rdb"), "{err}");
        assert!(
            err.contains(&sha256(b"abc")) && err.contains(&sha256(b"abd")),
            "{err}"
        );
        remove(d.path(), &e).unwrap();
        assert!(list(d.path()).unwrap().is_empty());
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
