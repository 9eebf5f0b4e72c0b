//! The age identity (private key) that decrypts the store, in `age-keygen`'s format.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age::x25519;

use crate::{Error, Result, fsutil};

/// The environment variable naming the identity file.
pub const KEY_FILE_ENV: &str = "ORCHESTRA_AGE_KEY_FILE";

/// `$ORCHESTRA_AGE_KEY_FILE` if set (and not empty), else `$HOME/.config/orchestra/age.key`.
pub fn default_key_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(KEY_FILE_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(Error::NoKeyLocation)?;
    Ok(PathBuf::from(home).join(".config/orchestra/age.key"))
}

/// Parse an `age1...` X25519 recipient.
pub fn parse_recipient(s: &str) -> Result<x25519::Recipient> {
    let s = s.trim();
    x25519::Recipient::from_str(s).map_err(|reason| Error::InvalidRecipient {
        recipient: s.to_owned(),
        location: None,
        reason: format!("{reason} (expected an X25519 recipient, age1...)"),
    })
}

/// An X25519 age identity and the file it came from.
pub struct Identity {
    path: PathBuf,
    inner: x25519::Identity,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("path", &self.path)
            .field("recipient", &self.recipient().to_string())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Generate a new identity and write it to `path` (mode 0600; a created parent
    /// directory gets 0700), in the format `age-keygen` writes. Refuses to overwrite.
    pub fn init(path: &Path) -> Result<Self> {
        if path.exists() {
            return Err(Error::IdentityExists {
                path: path.to_owned(),
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_dir(dir, 0o700)?;
        }
        let inner = x25519::Identity::generate();
        let secret = inner.to_string();
        let text = zeroize::Zeroizing::new(format!(
            "# created: {}\n# public key: {}\n{}\n",
            orchestra_clock::format_secs(orchestra_clock::now_ms()),
            inner.to_public(),
            secret.expose_secret()
        ));
        if !fsutil::write_new(path, text.as_bytes(), 0o600)? {
            return Err(Error::IdentityExists {
                path: path.to_owned(),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            inner,
        })
    }

    /// Load the identity in `path`: the first `AGE-SECRET-KEY-1...` line; blank lines
    /// and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read(path) {
            Ok(t) => zeroize::Zeroizing::new(t),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::IdentityMissing {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(Error::io("read the age identity", path, e)),
        };
        let malformed = |problem: String| Error::IdentityMalformed {
            path: path.to_owned(),
            problem,
        };
        let text = std::str::from_utf8(&text).map_err(|_| malformed("not UTF-8 text".into()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !line.starts_with("AGE-SECRET-KEY-1") {
                return Err(malformed(format!(
                    "line {}: expected an X25519 identity (AGE-SECRET-KEY-1...), as `orchestra secrets init` or `age-keygen` write",
                    i + 1
                )));
            }
            let inner = x25519::Identity::from_str(line)
                .map_err(|e| malformed(format!("line {}: {e}", i + 1)))?;
            return Ok(Self {
                path: path.to_owned(),
                inner,
            });
        }
        Err(malformed("it holds no AGE-SECRET-KEY-1... line".into()))
    }

    /// Load `path`, or create it when it does not exist; `true` when created.
    pub fn load_or_init(path: &Path) -> Result<(Self, bool)> {
        match Self::load(path) {
            Ok(id) => Ok((id, false)),
            Err(Error::IdentityMissing { .. }) => match Self::init(path) {
                Ok(id) => Ok((id, true)),
                // Created by someone else meanwhile: use theirs.
                Err(Error::IdentityExists { .. }) => Ok((Self::load(path)?, false)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public recipient others encrypt to.
    pub fn recipient(&self) -> x25519::Recipient {
        self.inner.to_public()
    }

    pub(crate) fn age(&self) -> &x25519::Identity {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn init_writes_age_keygen_format_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/orchestra/age.key");
        let id = Identity::init(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("# created: 20"), "{text}");
        assert_eq!(lines[1], format!("# public key: {}", id.recipient()));
        assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        let again = Identity::init(&path).unwrap_err();
        assert!(matches!(again, Error::IdentityExists { .. }), "{again}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let loaded = Identity::load(&path).unwrap();
        assert_eq!(loaded.recipient().to_string(), id.recipient().to_string());
        // No temporary files are left beside it.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.key");
        let e = Identity::load(&missing).unwrap_err();
        assert!(matches!(e, Error::IdentityMissing { .. }));
        assert!(e.to_string().contains("nope.key"), "{e}");

        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "# comment\nAGE-SECRET-KEY-1NOTAKEY\n").unwrap();
        let e = Identity::load(&bad).unwrap_err();
        assert!(matches!(e, Error::IdentityMalformed { .. }), "{e}");
        assert!(
            e.to_string().contains("bad.key") && e.to_string().contains("line 2"),
            "{e}"
        );

        std::fs::write(&bad, "hello\n").unwrap();
        let e = Identity::load(&bad).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        std::fs::write(&bad, "# only comments\n").unwrap();
        assert!(matches!(
            Identity::load(&bad).unwrap_err(),
            Error::IdentityMalformed { .. }
        ));
    }

    #[test]
    fn recipients_are_validated() {
        assert!(parse_recipient("age1notvalid").is_err());
        let id = x25519::Identity::generate();
        let r = id.to_public().to_string();
        assert_eq!(parse_recipient(&format!("  {r} ")).unwrap().to_string(), r);
    }
}
