//! What can go wrong with a backup or a restore, in words that say what to do.

use std::path::PathBuf;

/// A backup, restore or verification that did not happen, and why.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The service has no `backup:` block.
    #[error(
        "`{0}` has no `backup:` block in the manifest; add one, e.g. `backup: {{ kind: redis }}`"
    )]
    NotConfigured(String),
    /// There is no backup to restore.
    #[error("no backup of `{service}` in {}; take one with `orchestra backup run {service}`", dir.display())]
    NoBackups {
        /// The service.
        service: String,
        /// Its backup directory.
        dir: PathBuf,
    },
    /// The backup asked for is not in the catalog.
    #[error("no backup `{id}` of `{service}` in {}; `orchestra backup list {service}` shows them", dir.display())]
    UnknownBackup {
        /// The service.
        service: String,
        /// The id asked for.
        id: String,
        /// Its backup directory.
        dir: PathBuf,
    },
    /// The file's bytes are not what was recorded when it was written.
    #[error(
        "refusing to restore from {}: its sha256 is {actual}, but the catalog recorded {expected} when it was written (the file is damaged or was changed)",
        file.display()
    )]
    Checksum {
        /// The backup file.
        file: PathBuf,
        /// The recorded sum.
        expected: String,
        /// The sum of the file as it is.
        actual: String,
    },
    /// A tool exited unsuccessfully.
    #[error("`{command}` failed ({status}){}", stderr_suffix(stderr))]
    Tool {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr (trimmed).
        stderr: String,
    },
    /// A tool could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A catalog entry does not parse.
    #[error("catalog entry {} is invalid: {reason}", path.display())]
    Catalog {
        /// The entry file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Encryption or decryption failed (a wrong key, a damaged file).
    #[error(transparent)]
    Secrets(#[from] orchestra_secrets::Error),
    /// The running service or a scratch instance did not do what was needed.
    #[error("{0}")]
    Service(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl BackupError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        BackupError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
