//! `orchestra import`: a `docker-compose.yml` to `orchestra.yaml` text.
//!
//! The Compose file is parsed with the manifest's own located-node machinery (anchors,
//! aliases and `<<` merge keys work; a note about merged content points at the anchor).
//! Every key is either carried over, carried over with a changed meaning
//! ([`NoteKind::Mapped`]), dropped ([`NoteKind::Unsupported`]) or skipped as an `x-`
//! extension / obsolete key ([`NoteKind::Ignored`]); nothing is dropped without a note.
//! A value of a shape Compose rejects (`deploy: oops`, `healthcheck: true`) fails the
//! import with [`ImportError::Invalid`], naming every such value.
//!
//! Choices:
//! - `${VAR}` references are kept as written (not interpolated): the manifest loader
//!   resolves them like Compose does, from the environment and the `.env` beside the
//!   file, and `$$` stays the escape for a literal `$`.
//! - A `command`/`entrypoint` string is split into a list the way Compose splits it
//!   (shell-like words, no shell); a string whose shell syntax no shell would read (an
//!   unquoted `&&`, `|`, `>`... or, unless it runs `sh -c`, a `$(...)`) gets a note. A string
//!   with `${VAR}` stays a string: Compose splits after substituting, and so does the
//!   manifest loader.
//!   `healthcheck.test` strings and `CMD-SHELL` become `[sh, -c, "..."]`, as in Docker.
//! - Values Compose defaults differently from Orchestra are written out explicitly so the
//!   platform behaves as the Compose file did: `restart: "no"` when Compose had no
//!   `restart`, and the healthcheck timings Docker uses by default (30s, 30s, 3, 0s).
//! - Relative paths (build contexts, `env_file`, bind mounts) stay relative: write the
//!   result beside the Compose file.
//! - Health reports and never restarts (`on_failure: none`), as in Compose; `port:` is
//!   what the app listens on (`environment.PORT`, else the one published container
//!   port), since Orchestra sets `PORT` to it.
//! - YAML tags: `!reset` unsets a key, `!override` replaces merged content, `!!null` is
//!   null; any other tag fails the import at its position.
//! - `extends` and `include` are followed before mapping (`resolve`), with Compose's
//!   merge rules (`merge`); a note on content from another file names that file
//!   ([`ImportNote::file`]).

mod emit;
mod map;
mod merge;
mod refs;
mod resolve;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Diagnostic;

/// The result of an import: the manifest text and what changed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// The `orchestra.yaml` text (with a comment header summarizing `notes`).
    pub yaml: String,
    /// One note per key whose meaning changed or that was not carried over, in file order.
    pub notes: Vec<ImportNote>,
}

impl Import {
    /// How many notes of `kind` there are.
    #[must_use]
    pub fn count(&self, kind: NoteKind) -> usize {
        self.notes.iter().filter(|n| n.kind == kind).count()
    }

    /// The notes `--strict` refuses: unknown keys and dropped dependencies.
    pub fn strict_notes(&self) -> impl Iterator<Item = &ImportNote> {
        self.notes.iter().filter(|n| n.strict)
    }

    /// `"2 mapped, 1 unsupported, 0 ignored"`.
    #[must_use]
    pub fn summary(&self) -> String {
        summary(&self.notes)
    }
}

fn summary(notes: &[ImportNote]) -> String {
    let count = |k| notes.iter().filter(|n| n.kind == k).count();
    format!(
        "{} mapped, {} unsupported, {} ignored",
        count(NoteKind::Mapped),
        count(NoteKind::Unsupported),
        count(NoteKind::Ignored)
    )
}

/// Something the reader of the imported manifest should know about one Compose key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportNote {
    /// 1-based line in the Compose file.
    pub line: usize,
    /// 1-based column in the Compose file.
    pub col: usize,
    /// Field path in the Compose file, e.g. `services.web.networks`.
    pub path: String,
    /// What happened to the key.
    pub kind: NoteKind,
    /// What changed, or why it was not carried over, and what to do instead.
    pub message: String,
    /// An unknown key or a dropped dependency: what `orchestra import --strict` refuses.
    pub strict: bool,
    /// The file the position is in, when it is not the imported file (a file named by
    /// `include` or `extends.file`).
    pub file: Option<PathBuf>,
}

impl ImportNote {
    /// The file the note's position is in: [`ImportNote::file`], else `imported`.
    #[must_use]
    pub fn file_or<'a>(&'a self, imported: &'a Path) -> &'a Path {
        self.file.as_deref().unwrap_or(imported)
    }
}

impl fmt::Display for ImportNote {
    /// `12:5: services.web.networks: mapped: ...` (prefix the file name for a report).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// What happened to a Compose key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoteKind {
    /// Carried over with a changed meaning (or dropped because Orchestra does the same
    /// thing another way); the message explains the difference.
    Mapped,
    /// Not carried over: Orchestra has no equivalent.
    Unsupported,
    /// Skipped on purpose: `x-` extensions and obsolete keys such as `version`.
    Ignored,
}

impl NoteKind {
    /// `mapped`, `unsupported` or `ignored`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mapped => "mapped",
            Self::Unsupported => "unsupported",
            Self::Ignored => "ignored",
        }
    }
}

impl fmt::Display for NoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The Compose file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML (the diagnostic has the position).
    #[error("{0}")]
    Syntax(Box<Diagnostic>),
    /// The file is YAML but not a Compose file (no `services:` mapping).
    #[error("{0}")]
    NotCompose(Box<Diagnostic>),
    /// Values Compose itself rejects (a string where a mapping is expected, ...): every
    /// one found, in file order, each with its position and what was expected.
    #[error("{}", display_all(.0))]
    Invalid(Vec<Diagnostic>),
}

fn display_all(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Imports Compose text. `file` names the Compose file in messages and in the header;
/// files it names in `include` and `extends.file` are read relative to its directory.
///
/// # Errors
/// [`ImportError::Syntax`] for invalid YAML, [`ImportError::NotCompose`] when there is
/// no `services:` mapping with at least one service, [`ImportError::Invalid`] for values
/// of the wrong shape that Compose rejects.
pub fn import_str(compose: &str, file: &Path) -> Result<Import, ImportError> {
    import_with(compose, file, &mut |p: &Path| std::fs::read_to_string(p))
}

/// [`import_str`] reading the other files with `read`.
fn import_with(
    compose: &str,
    file: &Path,
    read: &mut resolve::Read<'_>,
) -> Result<Import, ImportError> {
    let root = match crate::node::parse_with(compose, file, crate::node::Tags::Compose) {
        Ok(root) => root,
        Err(mut diags) => {
            let mut d = diags.remove(0);
            if d.message
                .contains("manifest must be a single YAML document")
            {
                "a Compose file must be a single YAML document".clone_into(&mut d.message);
            }
            return Err(ImportError::Syntax(Box::new(d)));
        }
    };
    let (root, files, mut notes) = match root {
        Some(root) => match resolve::resolve(root, file, read) {
            Ok((root, files, notes)) => (Some(root), files, notes),
            Err(diags) => return Err(ImportError::Invalid(diags)),
        },
        None => (None, resolve::Files::default(), Vec::new()),
    };
    let fix = |e: ImportError| match e {
        ImportError::Invalid(d) => {
            ImportError::Invalid(d.into_iter().map(|d| files.fix(d)).collect())
        }
        ImportError::NotCompose(d) => ImportError::NotCompose(Box::new(files.fix(*d))),
        ImportError::Syntax(d) => ImportError::Syntax(Box::new(files.fix(*d))),
        other => other,
    };
    let (doc, mapped) = map::map_compose(root.as_ref(), file).map_err(fix)?;
    notes.extend(mapped);
    notes.sort_by_key(|n| (n.line, n.col));
    let mut notes = merge_repeated(notes);
    for n in &mut notes {
        let (f, line) = files.place(n.line);
        n.file = f;
        n.line = line;
    }
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut yaml = header(&name, dir, &notes, compose.contains('$'));
    yaml.push_str(&emit::document(&doc));
    Ok(Import { yaml, notes })
}

/// Reads and imports a Compose file.
///
/// # Errors
/// [`ImportError::Io`] if it cannot be read, else as [`import_str`].
pub fn import_file(path: &Path) -> Result<Import, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    import_str(&text, path)
}

/// One note for content merged into several services (`<<: *common`): the notes share
/// the anchor's position and message, so they become one that names the other services.
fn merge_repeated(notes: Vec<ImportNote>) -> Vec<ImportNote> {
    let mut out: Vec<(ImportNote, Vec<String>)> = Vec::new();
    for n in notes {
        if let Some((_, others)) = out.iter_mut().find(|(f, _)| {
            (f.line, f.col, f.kind, &f.message) == (n.line, n.col, n.kind, &n.message)
        }) {
            let service = n
                .path
                .strip_prefix("services.")
                .and_then(|rest| rest.split('.').next())
                .map_or_else(|| n.path.clone(), |s| format!("`{s}`"));
            others.push(service);
            continue;
        }
        out.push((n, Vec::new()));
    }
    out.into_iter()
        .map(|(mut n, others)| {
            if !others.is_empty() {
                n.message = format!("{}; the same for {}", n.message, others.join(", "));
            }
            n
        })
        .collect()
}

/// The comment block at the top of the generated manifest.
/// The header stays beside the imported file: an included file is named
/// relative to that file's directory, never by this machine's absolute path.
fn header(name: &str, dir: &Path, notes: &[ImportNote], has_vars: bool) -> String {
    let absolute_dir = std::path::absolute(dir).ok();
    let shown = |f: &Path| -> String {
        let rel = absolute_dir.as_deref().and_then(|d| {
            std::path::absolute(f)
                .ok()?
                .strip_prefix(d)
                .ok()
                .map(Path::to_path_buf)
        });
        rel.unwrap_or_else(|| f.to_path_buf()).display().to_string()
    };
    let mut h = format!("# Imported from {name} by `orchestra import`.\n");
    if notes.is_empty() {
        h.push_str("# Every key was carried over; nothing needed a note.\n");
    } else {
        h.push_str(&format!(
            "# {} (positions are in {name}):\n",
            summary(notes)
        ));
        for n in notes {
            match &n.file {
                Some(f) => h.push_str(&format!("#   {}:{n}\n", shown(f))),
                None => h.push_str(&format!("#   {n}\n")),
            }
        }
    }
    if has_vars {
        h.push_str(
            "# ${VAR} references are kept as written and resolved when Orchestra loads this file\n\
             # (from the environment and .env), as Compose did; `$$` is still a literal `$`.\n",
        );
    }
    h.push('\n');
    h
}

#[cfg(test)]
mod tests;
