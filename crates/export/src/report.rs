//! The mapping report: one note per manifest field, with where it is written.

use std::fmt;
use std::path::PathBuf;

use orchestra_manifest::{Location, Manifest, Service};
use serde::Serialize;

use crate::Target;

/// What happened to a manifest field on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Carried over with the same meaning.
    Mapped,
    /// Carried over with a different meaning; the message says how it differs.
    Approximated,
    /// The target has no equivalent; the message says what to do instead.
    Impossible,
}

impl Outcome {
    /// `mapped`, `approximated` or `impossible`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mapped => "mapped",
            Self::Approximated => "approximated",
            Self::Impossible => "impossible",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of the manifest and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The manifest file.
    pub file: PathBuf,
    /// 1-based line of the field.
    pub line: usize,
    /// 1-based column of the field.
    pub col: usize,
    /// Field path in the manifest, e.g. `services.api.route.strip_prefix`.
    pub path: String,
    /// Mapped, approximated or impossible.
    pub outcome: Outcome,
    /// Where it went, how it differs, or what to do instead.
    pub message: String,
}

impl fmt::Display for Note {
    /// `orchestra.yaml:12:5: services.api.route: approximated: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.path,
            self.outcome,
            self.message
        )
    }
}

/// Every note of one export, in manifest order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The target rendered.
    pub target: Target,
    /// The notes, sorted by position then path.
    pub notes: Vec<Note>,
}

impl Report {
    /// How many notes have `outcome`.
    #[must_use]
    pub fn count(&self, outcome: Outcome) -> usize {
        self.notes.iter().filter(|n| n.outcome == outcome).count()
    }

    /// `"40 mapped, 6 approximated, 2 impossible"`.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} mapped, {} approximated, {} impossible",
            self.count(Outcome::Mapped),
            self.count(Outcome::Approximated),
            self.count(Outcome::Impossible)
        )
    }

    /// The note of `path` with `outcome`, if any (for tests and tools).
    #[must_use]
    pub fn find(&self, path: &str) -> Vec<&Note> {
        self.notes.iter().filter(|n| n.path == path).collect()
    }
}

impl fmt::Display for Report {
    /// The approximated and impossible notes, one a line, then the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in self.notes.iter().filter(|n| n.outcome != Outcome::Mapped) {
            writeln!(f, "{n}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// Collects notes while a renderer walks the manifest.
pub(crate) struct Reporter<'m> {
    manifest: &'m Manifest,
    notes: Vec<Note>,
    /// (service, top-level field) of every note so far, for [`Reporter::finish_service`].
    noted: std::collections::BTreeSet<(String, String)>,
}

impl<'m> Reporter<'m> {
    pub(crate) fn new(manifest: &'m Manifest) -> Self {
        Self {
            manifest,
            notes: Vec::new(),
            noted: std::collections::BTreeSet::new(),
        }
    }

    fn push(&mut self, at: Location, path: String, outcome: Outcome, message: String) {
        self.notes.push(Note {
            file: self.manifest.file.clone(),
            line: at.line.max(1),
            col: at.col.max(1),
            path,
            outcome,
            message,
        });
    }

    /// A note on `field` (a path below the service, `""` for the service itself).
    pub(crate) fn service(
        &mut self,
        svc: &Service,
        field: &str,
        outcome: Outcome,
        message: impl Into<String>,
    ) {
        let written = field.is_empty() || {
            let mut p = field;
            loop {
                if svc.field_locations.contains_key(p) {
                    break true;
                }
                match p.rfind(['.', '[']) {
                    Some(i) => p = &p[..i],
                    None => break false,
                }
            }
        };
        // A field left to its default is reported at the service, saying which.
        let (path, message) = if field.is_empty() {
            (format!("services.{}", svc.name), message.into())
        } else if written {
            (format!("services.{}.{field}", svc.name), message.into())
        } else {
            (
                format!("services.{}", svc.name),
                format!("`{field}` (the default): {}", message.into()),
            )
        };
        if written {
            let top = field.split(['.', '[']).next().unwrap_or_default();
            self.noted.insert((svc.name.clone(), top.to_owned()));
        }
        self.push(svc.location_of(field), path, outcome, message);
    }

    /// A note on `field` only when it is written in the manifest.
    pub(crate) fn service_if_written(
        &mut self,
        svc: &Service,
        field: &str,
        outcome: Outcome,
        message: impl Into<String>,
    ) {
        if svc.field_locations.contains_key(field) {
            self.service(svc, field, outcome, message);
        }
    }

    pub(crate) fn mapped(&mut self, svc: &Service, field: &str, message: impl Into<String>) {
        self.service_if_written(svc, field, Outcome::Mapped, message);
    }

    pub(crate) fn approx(&mut self, svc: &Service, field: &str, message: impl Into<String>) {
        self.service(svc, field, Outcome::Approximated, message);
    }

    pub(crate) fn impossible(&mut self, svc: &Service, field: &str, message: impl Into<String>) {
        self.service(svc, field, Outcome::Impossible, message);
    }

    /// A note on a top-level field (outside `services:`), when it is written.
    pub(crate) fn top(&mut self, field: &str, outcome: Outcome, message: impl Into<String>) {
        if let Some(at) = self.manifest.field_locations.get(field) {
            self.push(*at, field.to_owned(), outcome, message.into());
        }
    }

    /// Every written top-level field of a service that got no note yet gets one saying
    /// that it is not rendered: nothing is dropped without a word.
    pub(crate) fn finish_service(&mut self, svc: &Service, why: &str) {
        let top: Vec<String> = svc
            .field_locations
            .keys()
            .filter(|k| !k.contains(['.', '[']))
            .filter(|k| !self.noted.contains(&(svc.name.clone(), (*k).clone())))
            .cloned()
            .collect();
        for field in top {
            self.service(svc, &field, Outcome::Impossible, why.to_owned());
        }
    }

    pub(crate) fn finish(mut self, target: Target) -> Report {
        self.notes
            .sort_by(|a, b| (a.line, a.col, &a.path).cmp(&(b.line, b.col, &b.path)));
        Report {
            target,
            notes: self.notes,
        }
    }
}
