//! Load errors and the diagnostics that explain an invalid manifest.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::Location;

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No manifest file in the start directory or any of its parents.
    #[error(
        "no orchestra.yaml (or compose.yaml, docker-compose.yml) found in {start} or any parent directory"
    )]
    NotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// The manifest file itself could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest was read but is invalid; every problem found is listed, in file order.
    #[error("{} error(s) in manifest", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// One problem in a manifest, with its position and what would fix it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnostic {
    /// The file the problem is in (the manifest, or a `.env` / `env_file`).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Field path, e.g. `services.api.healthcheck.interval`; empty for whole-file problems.
    pub path: String,
    /// What is wrong, e.g. `invalid duration`.
    pub message: String,
    /// What was found, e.g. `"2 seconds"` (quoted) or `a sequence`.
    pub found: Option<String>,
    /// What was expected instead.
    pub expected: Option<String>,
    /// A suggestion, e.g. "did you mean `interval`?".
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `loc` in `file` about the field at `path`.
    pub fn new(
        file: &Path,
        loc: Location,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            line: loc.line,
            col: loc.col,
            path: path.into(),
            message: message.into(),
            found: None,
            expected: None,
            hint: None,
        }
    }

    /// Sets what was found.
    #[must_use]
    pub fn found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }

    /// Sets what was expected.
    #[must_use]
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Sets a hint; `None` leaves it unset so callers can pass a suggestion that may not exist.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<Option<String>>) -> Self {
        self.hint = hint.into();
        self
    }

    /// The position of this diagnostic.
    pub fn location(&self) -> Location {
        Location {
            line: self.line,
            col: self.col,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        match (&self.found, &self.expected) {
            (Some(found), Some(expected)) => write!(f, ": found {found}, expected {expected}")?,
            (Some(found), None) => write!(f, ": found {found}")?,
            (None, Some(expected)) => write!(f, ": expected {expected}")?,
            (None, None) => {}
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Orders diagnostics for display: the manifest's own first, then by position.
pub(crate) fn sort_diagnostics(manifest: &Path, diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (a.file != manifest, &a.file, a.line, a.col).cmp(&(
            b.file != manifest,
            &b.file,
            b.line,
            b.col,
        ))
    });
}
