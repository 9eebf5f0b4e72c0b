//! Typed errors with context; the binary turns them into messages and exit codes.

use std::path::PathBuf;

/// Everything that can stop an audit (findings never do).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The path to audit does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration file is invalid; every problem is listed.
    #[error("invalid configuration {path}:\n  {}", errors.join("\n  "))]
    Config {
        /// The config file.
        path: PathBuf,
        /// One message per problem.
        errors: Vec<String>,
    },
    /// The baseline report could not be used.
    #[error("invalid baseline {path}: {message}")]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
    /// Bad command-line usage that clap cannot catch.
    #[error("{0}")]
    Usage(String),
    /// A command that is not implemented yet.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
}
