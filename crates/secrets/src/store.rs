//! The store: `secrets/<env>/<NAME>/<N>.age` plus `versions.json`, and
//! `secrets/recipients.txt` (see the crate docs for the layout).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use age::x25519;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::{Identity, parse_recipient};
use crate::{Error, Result, fsutil};

const RECIPIENTS: &str = "recipients.txt";
const METADATA: &str = "versions.json";
const LOCK: &str = ".lock";
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Which version of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The highest version (an error for a removed secret).
    Latest,
    /// This version (readable even after the secret was removed).
    Number(u32),
}

/// Who wrote a version: the user name and uid of the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// The user name (from /etc/passwd, else `$USER`).
    pub user: String,
    /// The numeric user id.
    pub uid: u32,
}

impl Who {
    /// The user this process runs as.
    pub fn current() -> Self {
        use std::os::unix::fs::MetadataExt;
        // /proc/self is owned by the process's effective uid.
        let uid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(u32::MAX);
        let from_passwd = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id = f.nth(1)?.parse::<u32>().ok()?;
                (id == uid).then(|| name.to_owned())
            })
        });
        let user = from_passwd
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .unwrap_or_else(|| format!("uid-{uid}"));
        Self { user, uid }
    }
}

/// One version of a secret, as its metadata and the directory say (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The version number.
    pub version: u32,
    /// When it was stored, if recorded (a file placed by hand has no record).
    pub created_at_ms: Option<i64>,
    /// Who stored it, if recorded.
    pub created_by: Option<Who>,
    /// The encrypted file.
    pub file: PathBuf,
    /// Whether the file exists (a recorded version whose file was deleted reads `false`).
    pub present: bool,
}

/// A secret of an environment, as listed (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    /// The name.
    pub name: String,
    /// The environment.
    pub env: String,
    /// How many versions have a file.
    pub versions: usize,
    /// The highest version with a file.
    pub latest: Option<u32>,
    /// When the secret last changed (stored or removed), if recorded.
    pub updated_at_ms: Option<i64>,
    /// Whether it was removed (old versions are kept).
    pub removed: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    removed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    removed_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    removed_by: Option<Who>,
    #[serde(default)]
    versions: Vec<MetaVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MetaVersion {
    version: u32,
    created_at_ms: i64,
    created_by: Who,
}

/// Check a secret name: an environment variable name, `[A-Za-z_][A-Za-z0-9_]*`,
/// as the manifest's `secrets:` accepts.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Check an environment name: `[A-Za-z0-9][A-Za-z0-9_-]*` (it is a directory name).
pub fn validate_env(env: &str) -> Result<()> {
    let mut chars = env.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && env.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidEnv {
            env: env.to_owned(),
        })
    }
}

/// The secret store in one directory (usually `secrets/` beside the manifest).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// An exclusive lock on the store for the duration of a mutation.
struct Lock(#[allow(dead_code)] File);

impl Store {
    /// The store in `dir`. Nothing is created until something is written.
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The recipients file.
    pub fn recipients_path(&self) -> PathBuf {
        self.dir.join(RECIPIENTS)
    }

    /// Create the store (directory, `.gitignore`, `recipients.txt` listing `first`)
    /// when it has no recipients file; `true` when it was created.
    pub fn init(&self, first: &x25519::Recipient) -> Result<bool> {
        self.ensure_dir()?;
        let _lock = self.lock()?;
        let path = self.recipients_path();
        let text = format!(
            "# age recipients of this secret store: one per line (`age -R` reads this file).\n# Add or remove with `orchestra secrets recipients add|rm`, which re-encrypt every secret.\n{first}\n"
        );
        fsutil::write_new(&path, text.as_bytes(), FILE_MODE)
    }

    /// The recipients, in file order.
    pub fn recipients(&self) -> Result<Vec<x25519::Recipient>> {
        let path = self.recipients_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_recipient(line) {
                Ok(r) => out.push(r),
                Err(Error::InvalidRecipient {
                    recipient, reason, ..
                }) => {
                    return Err(Error::InvalidRecipient {
                        recipient,
                        location: Some((path, i + 1)),
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Whether `r` is among the recipients.
    pub fn is_recipient(&self, r: &x25519::Recipient) -> Result<bool> {
        let s = r.to_string();
        Ok(self.recipients()?.iter().any(|x| x.to_string() == s))
    }

    /// Check that `identity` can read what is written now: its recipient is in the set.
    pub fn check_access(&self, identity: &Identity) -> Result<()> {
        let me = identity.recipient();
        if self.recipients()?.is_empty() {
            return Err(Error::NoRecipients {
                path: self.recipients_path(),
            });
        }
        if !self.is_recipient(&me)? {
            return Err(Error::NotARecipient {
                recipient: me.to_string(),
                path: self.recipients_path(),
            });
        }
        Ok(())
    }

    /// Add a recipient and re-encrypt every version of every secret to the new set
    /// (`identity` must be able to read them all).
    /// Returns how many files were re-encrypted.
    pub fn add_recipient(&self, r: &x25519::Recipient, identity: &Identity) -> Result<usize> {
        let _lock = self.lock()?;
        let mut set = self.recipients()?;
        let s = r.to_string();
        if set.iter().any(|x| x.to_string() == s) {
            return Err(Error::RecipientExists {
                recipient: s,
                path: self.recipients_path(),
            });
        }
        set.push(r.clone());
        let count = self.reencrypt_all(&set, identity)?;
        let path = self.recipients_path();
        let mut text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&s);
        text.push('\n');
        self.ensure_dir()?;
        fsutil::write_replace(&path, text.as_bytes(), FILE_MODE)?;
        Ok(count)
    }

    /// Remove a recipient and re-encrypt every version to the remaining set. Refuses
    /// to remove the last recipient or `identity`'s own.
    /// Returns how many files were re-encrypted.
    pub fn rm_recipient(&self, r: &x25519::Recipient, identity: &Identity) -> Result<usize> {
        let _lock = self.lock()?;
        let s = r.to_string();
        let set = self.recipients()?;
        if !set.iter().any(|x| x.to_string() == s) {
            return Err(Error::RecipientNotFound {
                recipient: s,
                path: self.recipients_path(),
            });
        }
        if identity.recipient().to_string() == s {
            return Err(Error::RecipientRemovalRefused {
                recipient: s,
                reason: "it is the recipient of the identity doing the removal, which would lose access; run this with another recipient's identity",
            });
        }
        let rest: Vec<_> = set.into_iter().filter(|x| x.to_string() != s).collect();
        if rest.is_empty() {
            return Err(Error::RecipientRemovalRefused {
                recipient: s,
                reason: "it is the last recipient",
            });
        }
        // Files first, the list last: an interrupted run can simply be repeated.
        let count = self.reencrypt_all(&rest, identity)?;
        let path = self.recipients_path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let kept: String = text
            .lines()
            .filter(|l| l.trim() != s)
            .map(|l| format!("{l}\n"))
            .collect();
        fsutil::write_replace(&path, kept.as_bytes(), FILE_MODE)?;
        Ok(count)
    }

    /// The environments that hold secrets.
    pub fn envs(&self) -> Result<Vec<String>> {
        self.subdirs(&self.dir, |n| validate_env(n).is_ok())
    }

    /// The secrets of `env` (removed ones included, marked), by name.
    pub fn list(&self, env: &str) -> Result<Vec<SecretInfo>> {
        validate_env(env)?;
        let env_dir = self.dir.join(env);
        let mut out = Vec::new();
        for name in self.subdirs(&env_dir, |n| validate_name(n).is_ok())? {
            out.push(self.info(env, &name)?);
        }
        Ok(out)
    }

    /// One secret's summary; `NotFound` when it has neither a file nor metadata.
    pub fn info(&self, env: &str, name: &str) -> Result<SecretInfo> {
        let (meta, files) = self.load(env, name)?;
        let updated = meta
            .versions
            .iter()
            .map(|v| v.created_at_ms)
            .chain(meta.removed_at_ms)
            .max();
        Ok(SecretInfo {
            name: name.to_owned(),
            env: env.to_owned(),
            versions: files.len(),
            latest: files.last().copied(),
            updated_at_ms: updated,
            removed: meta.removed,
        })
    }

    /// Every version of a secret, oldest first: those with a file and those recorded.
    pub fn history(&self, env: &str, name: &str) -> Result<Vec<VersionInfo>> {
        let (meta, files) = self.load(env, name)?;
        let mut numbers: BTreeSet<u32> = files.iter().copied().collect();
        numbers.extend(meta.versions.iter().map(|v| v.version));
        Ok(numbers
            .into_iter()
            .map(|n| {
                let rec = meta.versions.iter().find(|v| v.version == n);
                VersionInfo {
                    version: n,
                    created_at_ms: rec.map(|r| r.created_at_ms),
                    created_by: rec.map(|r| r.created_by.clone()),
                    file: self.version_path(env, name, n),
                    present: files.contains(&n),
                }
            })
            .collect())
    }

    /// The latest version number, `None` when the secret does not exist or was removed.
    pub fn latest(&self, env: &str, name: &str) -> Result<Option<u32>> {
        match self.info(env, name) {
            Ok(i) if !i.removed => Ok(i.latest),
            Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether this version can be read (`Latest`: the secret exists and is not removed).
    pub fn exists(&self, env: &str, name: &str, version: Version) -> Result<bool> {
        match version {
            Version::Latest => Ok(self.latest(env, name)?.is_some()),
            Version::Number(n) => {
                validate_env(env)?;
                validate_name(name)?;
                Ok(self.version_path(env, name, n).is_file())
            }
        }
    }

    /// The file holding a version (whether or not it exists).
    pub fn version_path(&self, env: &str, name: &str, version: u32) -> PathBuf {
        self.secret_dir(env, name).join(format!("{version}.age"))
    }

    /// Store a new version of `name`, encrypted to every recipient; returns its number.
    /// Also brings a removed secret back.
    pub fn set(&self, env: &str, name: &str, value: &[u8], who: &Who) -> Result<u32> {
        validate_env(env)?;
        validate_name(name)?;
        let recipients = self.recipients()?;
        if recipients.is_empty() {
            return Err(Error::NoRecipients {
                path: self.recipients_path(),
            });
        }
        let dir = self.secret_dir(env, name);
        fsutil::create_dir(&dir, DIR_MODE)?;
        let _lock = self.lock()?;
        let (mut meta, files) = self.load_or_default(env, name)?;
        let mut n = files
            .last()
            .copied()
            .into_iter()
            .chain(meta.versions.iter().map(|v| v.version))
            .max()
            .unwrap_or(0)
            + 1;
        loop {
            let path = self.version_path(env, name, n);
            let bytes = encrypt(&recipients, value, &path)?;
            if fsutil::write_new(&path, &bytes, FILE_MODE)? {
                break;
            }
            n += 1;
        }
        meta.name = name.to_owned();
        meta.removed = false;
        meta.removed_at_ms = None;
        meta.removed_by = None;
        meta.versions.push(MetaVersion {
            version: n,
            created_at_ms: orchestra_clock::now_ms(),
            created_by: who.clone(),
        });
        self.save_meta(env, name, &meta)?;
        Ok(n)
    }

    /// Decrypt a version with `identity`.
    pub fn get(
        &self,
        env: &str,
        name: &str,
        version: Version,
        identity: &Identity,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (meta, files) = self.load(env, name)?;
        let n = match version {
            Version::Latest => {
                if meta.removed {
                    return Err(Error::Removed {
                        env: env.to_owned(),
                        name: name.to_owned(),
                    });
                }
                files.last().copied()
            }
            Version::Number(n) => files.contains(&n).then_some(n),
        };
        let Some(n) = n else {
            return Err(match version {
                Version::Number(n) => Error::NoSuchVersion {
                    env: env.to_owned(),
                    name: name.to_owned(),
                    version: n,
                },
                Version::Latest => Error::NotFound {
                    env: env.to_owned(),
                    name: name.to_owned(),
                },
            });
        };
        decrypt_file(&self.version_path(env, name, n), identity)
    }

    /// Mark a secret removed: its latest value can no longer be read; every version is
    /// kept (an explicit version still reads, for rollback).
    pub fn rm(&self, env: &str, name: &str, who: &Who) -> Result<()> {
        let _lock = self.lock()?;
        let (mut meta, _) = self.load(env, name)?;
        if meta.removed {
            return Err(Error::Removed {
                env: env.to_owned(),
                name: name.to_owned(),
            });
        }
        meta.name = name.to_owned();
        meta.removed = true;
        meta.removed_at_ms = Some(orchestra_clock::now_ms());
        meta.removed_by = Some(who.clone());
        self.save_meta(env, name, &meta)
    }

    // -- internals --

    fn secret_dir(&self, env: &str, name: &str) -> PathBuf {
        self.dir.join(env).join(name)
    }

    fn ensure_dir(&self) -> Result<()> {
        fsutil::create_dir(&self.dir, DIR_MODE)?;
        let gi = self.dir.join(".gitignore");
        if !gi.exists() {
            fsutil::write_new(
                &gi,
                b"# Orchestra's lock and temporary files; everything else here is meant to be committed.\n.lock\n.*.tmp\n",
                FILE_MODE,
            )?;
        }
        Ok(())
    }

    fn lock(&self) -> Result<Lock> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open the lock file", &path, e))?;
        f.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(Lock(f))
    }

    fn subdirs(&self, dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", dir, e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if let (true, Some(name)) = (is_dir, entry.file_name().to_str())
                && keep(name)
            {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The version numbers with a file, ascending.
    fn version_files(&self, env: &str, name: &str) -> Result<Vec<u32>> {
        let dir = self.secret_dir(env, name);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("read directory", &dir, e))?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".age")) else {
                continue;
            };
            // Canonical numbers only: "2", not "02" or "+2".
            if let Ok(n) = stem.parse::<u32>()
                && n > 0
                && n.to_string() == stem
            {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn load_or_default(&self, env: &str, name: &str) -> Result<(Metadata, Vec<u32>)> {
        validate_env(env)?;
        validate_name(name)?;
        let path = self.secret_dir(env, name).join(METADATA);
        let meta = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Metadata {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == ErrorKind::NotFound => Metadata::default(),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        Ok((meta, self.version_files(env, name)?))
    }

    fn load(&self, env: &str, name: &str) -> Result<(Metadata, Vec<u32>)> {
        let (meta, files) = self.load_or_default(env, name)?;
        if files.is_empty() && meta.versions.is_empty() {
            return Err(Error::NotFound {
                env: env.to_owned(),
                name: name.to_owned(),
            });
        }
        Ok((meta, files))
    }

    fn save_meta(&self, env: &str, name: &str, meta: &Metadata) -> Result<()> {
        let path = self.secret_dir(env, name).join(METADATA);
        let mut json = serde_json::to_vec_pretty(meta).map_err(|source| Error::Metadata {
            path: path.clone(),
            source,
        })?;
        json.push(b'\n');
        fsutil::write_replace(&path, &json, FILE_MODE)
    }

    /// Decrypt every version file first (all or nothing), then rewrite each.
    fn reencrypt_all(
        &self,
        recipients: &[x25519::Recipient],
        identity: &Identity,
    ) -> Result<usize> {
        let mut plain = Vec::new();
        for env in self.envs()? {
            for name in self.subdirs(&self.dir.join(&env), |n| validate_name(n).is_ok())? {
                for n in self.version_files(&env, &name)? {
                    let path = self.version_path(&env, &name, n);
                    let value = decrypt_file(&path, identity)?;
                    plain.push((path, value));
                }
            }
        }
        let count = plain.len();
        for (path, value) in plain {
            let bytes = encrypt(recipients, &value, &path)?;
            fsutil::write_replace(&path, &bytes, FILE_MODE)?;
        }
        Ok(count)
    }
}

pub(crate) fn encrypt(
    recipients: &[x25519::Recipient],
    value: &[u8],
    path: &Path,
) -> Result<Vec<u8>> {
    use std::io::Write;
    let fail = |reason: String| Error::Encrypt {
        path: path.to_owned(),
        reason,
    };
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::with_capacity(value.len() + 256);
    let mut w = enc.wrap_output(&mut out).map_err(|e| fail(e.to_string()))?;
    w.write_all(value).map_err(|e| fail(e.to_string()))?;
    w.finish().map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

/// Decrypt one age file with `identity`, telling a wrong key from a damaged file.
pub(crate) fn decrypt_file(path: &Path, identity: &Identity) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let dec = age::Decryptor::new_buffered(&bytes[..]).map_err(|e| match e {
        age::DecryptError::UnknownFormat => corrupt("not an age file (unknown format)"),
        age::DecryptError::Io(_) | age::DecryptError::InvalidHeader => {
            corrupt("not an age file, or its header is damaged")
        }
        other => corrupt(&other.to_string()),
    })?;
    let mut reader = dec
        .decrypt(std::iter::once(identity.age() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::WrongKey {
                path: path.to_owned(),
                key_file: identity.path().to_owned(),
                recipient: identity.recipient().to_string(),
            },
            age::DecryptError::InvalidMac => {
                corrupt("the header's MAC does not match: the header was modified")
            }
            age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed => {
                corrupt("the file key does not decrypt")
            }
            other => corrupt(&other.to_string()),
        })?;
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    reader.read_to_end(&mut out).map_err(|_| {
        corrupt("the encrypted payload fails authentication: it was modified or truncated")
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests;
