//! Who may use the control API. On the unix socket: the peer's uid, as the
//! kernel reports it (`SO_PEERCRED`), must be the daemon's own or root's. On
//! TCP: `Authorization: Bearer <token>`, where the token is the one in
//! `.orchestra/control.token` (32 random bytes, base64url), compared in
//! constant time.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// Errors reading or writing the token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read or written.
    #[error("control token {path}: {source}")]
    Io {
        /// The token file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but holds no token.
    #[error("control token {0} is empty; run `orchestra control rotate-token` to write a new one")]
    Empty(PathBuf),
}

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// A fresh token: 32 random bytes from a CSPRNG seeded by the OS, base64url without padding.
pub fn generate_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The token in `path`, or `None` when there is no such file.
pub fn read_token(path: &Path) -> Result<Option<String>, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let t = s.trim();
            if t.is_empty() {
                Err(TokenError::Empty(path.to_owned()))
            } else {
                Ok(Some(t.to_owned()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Write `token` to `path` (0600), replacing any previous one atomically:
/// a reader sees the old token or the new one, never a partial file.
pub fn write_token(path: &Path, token: &str) -> Result<(), TokenError> {
    let io = |source| TokenError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("token.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    // The mode above is filtered by the umask; 0600 is what it must be.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    f.write_all(token.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The token in `path`, written first if there is none. The bool says
/// whether it was just created.
pub fn ensure_token(path: &Path) -> Result<(String, bool), TokenError> {
    match read_token(path)? {
        Some(t) => Ok((t, false)),
        None => {
            let t = generate_token();
            write_token(path, &t)?;
            Ok((t, true))
        }
    }
}

/// What an `Authorization` header says, against the expected token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer <token>`.
    Malformed,
    /// A bearer token that is not the daemon's.
    Wrong,
    /// The daemon's token.
    Valid,
}

impl Bearer {
    /// The reason recorded in the event log (never the presented token).
    pub fn reason(self) -> &'static str {
        match self {
            Bearer::Missing => "no Authorization header",
            Bearer::Malformed => "an Authorization header that is not `Bearer <token>`",
            Bearer::Wrong => "a wrong bearer token",
            Bearer::Valid => "a valid bearer token",
        }
    }
}

/// Check an `Authorization` header value against `expected`. The scheme is
/// case-insensitive (RFC 7235); the token comparison takes the same time
/// wherever the first difference is.
pub fn check_bearer(header: Option<&[u8]>, expected: &str) -> Bearer {
    let Some(value) = header else {
        return Bearer::Missing;
    };
    let Some((scheme, token)) = value
        .iter()
        .position(|b| *b == b' ')
        .map(|i| (&value[..i], &value[i + 1..]))
    else {
        return Bearer::Malformed;
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Bearer::Malformed;
    }
    let token = token.trim_ascii();
    if token.is_empty() {
        return Bearer::Malformed;
    }
    if bool::from(token.ct_eq(expected.as_bytes())) {
        Bearer::Valid
    } else {
        Bearer::Wrong
    }
}

/// Whether a unix-socket peer with `peer_uid` may use the API of a daemon
/// running as `own_uid`: the same user, or root.
pub fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid || peer_uid == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers() {
        let t = "s3cret";
        assert_eq!(check_bearer(None, t), Bearer::Missing);
        assert_eq!(check_bearer(Some(b"Bearer s3cret"), t), Bearer::Valid);
        assert_eq!(check_bearer(Some(b"bearer s3cret"), t), Bearer::Valid);
        assert_eq!(check_bearer(Some(b"Bearer  s3cret "), t), Bearer::Valid);
        assert_eq!(check_bearer(Some(b"Bearer s3cre"), t), Bearer::Wrong);
        assert_eq!(check_bearer(Some(b"Bearer s3cret2"), t), Bearer::Wrong);
        assert_eq!(check_bearer(Some(b"Bearer "), t), Bearer::Malformed);
        assert_eq!(check_bearer(Some(b"Basic czNjcmV0"), t), Bearer::Malformed);
        assert_eq!(check_bearer(Some(b"s3cret"), t), Bearer::Malformed);
    }

    #[test]
    fn peers() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(!peer_allowed(65534, 1000));
        assert!(!peer_allowed(65534, 0));
    }

    #[test]
    fn tokens_are_random_url_safe_and_written_0600() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.token");
        assert_eq!(read_token(&path).expect("read"), None);
        let (t, created) = ensure_token(&path).expect("ensure");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ensure_token(&path).expect("again"), (t.clone(), false));
        write_token(&path, "other").expect("write");
        assert_eq!(read_token(&path).expect("read").as_deref(), Some("other"));
        std::fs::write(&path, "\n").expect("blank");
        assert!(matches!(read_token(&path), Err(TokenError::Empty(_))));
    }
}
