//! One tree type with spans for YAML, JSON(C) and TOML documents.
//!
//! Scalars keep their source text (YAML `3.10` stays `"3.10"`, not the float `3.1`), which
//! matters for version drift. Mappings keep their order and key spans.

use crate::source::Span;

/// A node of a YAML/JSON/TOML document, with the span of its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node's text is (for YAML block collections: from the first key/item).
    pub span: Span,
    /// The value.
    pub kind: NodeKind,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar: its text and whether it was quoted (a quoted `"true"` is a string).
    Scalar {
        /// The scalar's value (unescaped for quoted scalars; raw digits for numbers).
        text: String,
        /// Quoted in the source (always true for JSON/TOML strings).
        quoted: bool,
    },
    /// A sequence / array.
    Seq(Vec<Node>),
    /// A mapping / object / table, in source order.
    Map(Vec<Entry>),
}

/// A mapping entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key node (its span points at the key text).
    pub key: Node,
    /// The value node.
    pub value: Node,
}

impl Entry {
    /// The key as text (empty for non-scalar keys).
    #[must_use]
    pub fn key_str(&self) -> &str {
        self.key.as_str().unwrap_or("")
    }
}

impl Node {
    /// A scalar node.
    #[must_use]
    pub fn scalar(text: impl Into<String>, quoted: bool, span: Span) -> Self {
        Node {
            span,
            kind: NodeKind::Scalar {
                text: text.into(),
                quoted,
            },
        }
    }

    /// The scalar text, if this is a non-null scalar.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, quoted } => {
                if !quoted && is_null_text(text) {
                    None
                } else {
                    Some(text)
                }
            }
            _ => None,
        }
    }

    /// True for YAML/JSON null (`null`, `~`, empty plain scalar).
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false } if is_null_text(text))
    }

    /// The scalar as a boolean (`true`/`false`, YAML 1.1 `yes`/`no`/`on`/`off` too).
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            NodeKind::Scalar {
                text,
                quoted: false,
            } => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Some(true),
                "false" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// Mapping entries (empty for non-mappings).
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        match &self.kind {
            NodeKind::Map(e) => e,
            _ => &[],
        }
    }

    /// Sequence items (empty for non-sequences).
    #[must_use]
    pub fn items(&self) -> &[Node] {
        match &self.kind {
            NodeKind::Seq(v) => v,
            _ => &[],
        }
    }

    /// True for a mapping.
    #[must_use]
    pub fn is_map(&self) -> bool {
        matches!(self.kind, NodeKind::Map(_))
    }

    /// True for a sequence.
    #[must_use]
    pub fn is_seq(&self) -> bool {
        matches!(self.kind, NodeKind::Seq(_))
    }

    /// The entry for `key` in a mapping (last one wins, like YAML loaders).
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().rev().find(|e| e.key_str() == key)
    }

    /// The value for `key` in a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// Follow a path of mapping keys.
    #[must_use]
    pub fn get_path(&self, path: &[&str]) -> Option<&Node> {
        let mut node = self;
        for key in path {
            node = node.get(key)?;
        }
        Some(node)
    }

    /// `get(key)` then `as_str()`.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::as_str)
    }

    /// Visit this node and every descendant (keys included), depth first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Node)) {
        f(self);
        match &self.kind {
            NodeKind::Scalar { .. } => {}
            NodeKind::Seq(items) => {
                for n in items {
                    n.walk(f);
                }
            }
            NodeKind::Map(entries) => {
                for e in entries {
                    e.key.walk(f);
                    e.value.walk(f);
                }
            }
        }
    }
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}
