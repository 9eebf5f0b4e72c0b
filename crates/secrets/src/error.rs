//! The errors of the secret store: each names the file or the secret it is about.

use std::io;
use std::path::PathBuf;

/// What went wrong, with the file or secret it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `create directory`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Neither `ORCHESTRA_AGE_KEY_FILE` nor `HOME` is set.
    #[error(
        "cannot find the age identity: set ORCHESTRA_AGE_KEY_FILE to the key file, or HOME for ~/.config/orchestra/age.key"
    )]
    NoKeyLocation,
    /// The identity file does not exist.
    #[error(
        "no age identity at {}: run `orchestra secrets init` to create one, or set ORCHESTRA_AGE_KEY_FILE to an existing key file",
        path.display()
    )]
    IdentityMissing {
        /// The key file looked for.
        path: PathBuf,
    },
    /// `init` found an identity already there.
    #[error("{} already exists: refusing to overwrite an age identity", path.display())]
    IdentityExists {
        /// The existing key file.
        path: PathBuf,
    },
    /// The identity file is not an X25519 age identity file.
    #[error("{}: not a valid age identity file: {problem}", path.display())]
    IdentityMalformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it (never the key itself).
        problem: String,
    },
    /// A secret name that is not an environment variable name.
    #[error(
        "invalid secret name `{name}`: a name is an environment variable name: letters, digits and `_`, not starting with a digit (e.g. DATABASE_URL)"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// An environment name that cannot be a directory name.
    #[error(
        "invalid environment `{env}`: use letters, digits, `_` and `-`, starting with a letter or digit (e.g. prod)"
    )]
    InvalidEnv {
        /// The environment given.
        env: String,
    },
    /// Not an `age1...` X25519 recipient.
    #[error("invalid age recipient `{recipient}`{}: {reason}", location.as_ref().map(|(p, l)| format!(" at {}:{l}", p.display())).unwrap_or_default())]
    InvalidRecipient {
        /// The text given.
        recipient: String,
        /// The file and line it was read from, if any.
        location: Option<(PathBuf, usize)>,
        /// Why it is not one.
        reason: String,
    },
    /// The store has no recipients file, or it lists none.
    #[error("{} lists no recipients: run `orchestra secrets init`", path.display())]
    NoRecipients {
        /// The recipients file.
        path: PathBuf,
    },
    /// The recipient is already in the store's set.
    #[error("{recipient} is already a recipient in {}", path.display())]
    RecipientExists {
        /// The recipient.
        recipient: String,
        /// The recipients file.
        path: PathBuf,
    },
    /// The recipient is not in the store's set.
    #[error("{recipient} is not a recipient in {}", path.display())]
    RecipientNotFound {
        /// The recipient.
        recipient: String,
        /// The recipients file.
        path: PathBuf,
    },
    /// Removing this recipient would lock the caller (or everyone) out.
    #[error("cannot remove {recipient}: {reason}")]
    RecipientRemovalRefused {
        /// The recipient.
        recipient: String,
        /// Why.
        reason: &'static str,
    },
    /// The caller's identity is not among the store's recipients.
    #[error(
        "your recipient {recipient} is not in {}: secrets written now would be unreadable to you. Ask someone with access to run `orchestra secrets recipients add {recipient}`",
        path.display()
    )]
    NotARecipient {
        /// The caller's recipient.
        recipient: String,
        /// The recipients file.
        path: PathBuf,
    },
    /// No such secret in this environment.
    #[error("no secret {name} in env `{env}` (see `orchestra secrets list --env {env}`)")]
    NotFound {
        /// The environment.
        env: String,
        /// The name.
        name: String,
    },
    /// The secret exists but not this version.
    #[error(
        "secret {name} (env `{env}`) has no version {version} (see `orchestra secrets history {name}`)"
    )]
    NoSuchVersion {
        /// The environment.
        env: String,
        /// The name.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// The secret was removed; explicit versions can still be read.
    #[error(
        "secret {name} (env `{env}`) was removed; `--version N` still reads an old version, `set` brings it back"
    )]
    Removed {
        /// The environment.
        env: String,
        /// The name.
        name: String,
    },
    /// None of the file's recipients is this identity.
    #[error(
        "cannot decrypt {}: wrong key: the identity {} ({recipient}) is not one of the file's recipients",
        path.display(), key_file.display()
    )]
    WrongKey {
        /// The version file.
        path: PathBuf,
        /// The identity's key file.
        key_file: PathBuf,
        /// The identity's public recipient.
        recipient: String,
    },
    /// The file is not a valid age file, or was modified.
    #[error("cannot decrypt {}: the file is corrupt or was tampered with: {reason}", path.display())]
    Corrupt {
        /// The version file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Encryption failed.
    #[error("cannot encrypt {}: {reason}", path.display())]
    Encrypt {
        /// The file being written.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A metadata file is not valid JSON of the expected shape.
    #[error("{}: invalid metadata", path.display())]
    Metadata {
        /// The `versions.json` file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
