//! Parsers that keep exact locations, and the parsed-document model rules read.

pub mod dockerfile;
pub mod image;
pub mod jsonc;
pub mod node;
pub mod toml;
pub mod yaml;

use crate::collect::{FileKind, Format};
use crate::source::{SourceFile, Span};

pub use dockerfile::Dockerfile;
pub use image::ImageRef;
pub use node::{Entry, Node, NodeKind};

/// A problem that kept a file from parsing (fully). Reported by the `parse-error` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIssue {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
}

/// A file's parsed content.
#[derive(Clone, Debug)]
pub enum Document {
    /// A Dockerfile AST (always present for Dockerfiles, even with issues).
    Dockerfile(Box<Dockerfile>),
    /// YAML documents (a file may hold several, separated by `---`).
    Yaml(Vec<Node>),
    /// A JSON / JSONC document.
    Json(Node),
    /// A TOML document.
    Toml(Node),
    /// Plain text: read line by line through the [`SourceFile`].
    Text,
    /// Binary content: not read beyond detection.
    Binary,
    /// A structured file that failed to parse (see the file's issues).
    Invalid,
}

impl Document {
    /// The first YAML document, or the JSON/TOML root.
    #[must_use]
    pub fn root(&self) -> Option<&Node> {
        match self {
            Document::Yaml(docs) => docs.first(),
            Document::Json(n) | Document::Toml(n) => Some(n),
            _ => None,
        }
    }

    /// The Dockerfile AST, if this is one.
    #[must_use]
    pub fn dockerfile(&self) -> Option<&Dockerfile> {
        match self {
            Document::Dockerfile(d) => Some(d),
            _ => None,
        }
    }
}

/// Parse `source` according to its kind's format.
#[must_use]
pub fn parse(kind: FileKind, source: &SourceFile) -> (Document, Vec<ParseIssue>) {
    match kind.format() {
        Format::Dockerfile => {
            let mut df = Dockerfile::parse(source);
            let issues = std::mem::take(&mut df.issues);
            (Document::Dockerfile(Box::new(df)), issues)
        }
        Format::Yaml => match yaml::parse(source) {
            Ok(docs) => (Document::Yaml(docs), Vec::new()),
            Err(e) => (Document::Invalid, vec![e]),
        },
        Format::Json => match jsonc::parse(source) {
            Ok(n) => (Document::Json(n), Vec::new()),
            Err(e) => (Document::Invalid, vec![e]),
        },
        Format::Toml => match toml::parse(source) {
            Ok(n) => (Document::Toml(n), Vec::new()),
            Err(e) => (Document::Invalid, vec![e]),
        },
        Format::Text => (Document::Text, Vec::new()),
    }
}
