//! Pass 1 (parse): YAML text to a small node tree that keeps every node's location.
//!
//! saphyr does the YAML work (syntax, anchors and aliases); this module copies its
//! `MarkedYaml` into our own tree, applies `<<` merge keys (saphyr does not) and keeps
//! scalars as their source text so that typing happens later, per field.

use std::path::Path;

use saphyr::{LoadableYamlNode as _, MarkedYaml, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::{Marker, Parser, ScanError};

use crate::error::Diagnostic;
use crate::model::Location;

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Where the node starts.
    pub loc: Location,
    /// What it holds.
    pub kind: Kind,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `~`, `null` or nothing at all.
    Null,
    /// Any other scalar, as written (quotes removed, not typed yet).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key's text.
    pub key: String,
    /// Where the key is.
    pub key_loc: Location,
    /// The value.
    pub value: Node,
}

impl Node {
    /// Describes the node for a "found ..." message.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "null".to_owned(),
            Kind::Scalar(s) => format!("{s:?}"),
            Kind::Seq(_) => "a sequence".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
        }
    }
}

/// Converts a saphyr marker (1-based line, 0-based column) to a [`Location`].
pub(crate) fn location(m: Marker) -> Location {
    Location {
        line: m.line().max(1),
        col: m.col() + 1,
    }
}

/// Parses `source`. `Ok(None)` is an empty document. A syntax error is one diagnostic.
pub(crate) fn parse(source: &str, file: &Path) -> Result<Option<Node>, Vec<Diagnostic>> {
    let syntax = |e: &ScanError| {
        Diagnostic::new(
            file,
            location(*e.marker()),
            "",
            format!("invalid YAML: {}", e.info()),
        )
    };
    let mut loader: YamlLoader<MarkedYaml> = YamlLoader::default();
    // Keep scalars as text: "1.10" must stay "1.10" in an env value, not become 1.1.
    loader.early_parse(false);
    let mut parser = Parser::new_from_str(source);
    if let Err(e) = parser.load(&mut loader, true) {
        return Err(vec![syntax(&e)]);
    }
    if let Some(e) = loader.error() {
        return Err(vec![syntax(e)]);
    }
    let mut docs = loader.into_documents().into_iter();
    let Some(first) = docs.next() else {
        return Ok(None);
    };
    // An empty document loads as a bad value.
    if first.is_badvalue() {
        return Ok(None);
    }
    if let Some(second) = docs.next() {
        return Err(vec![Diagnostic::new(
            file,
            location(second.span.start),
            "",
            "a manifest must be a single YAML document",
        )]);
    }
    let mut diags = Vec::new();
    let node = convert(&first, file, "", &mut diags);
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(match node.kind {
        Kind::Null => None,
        _ => Some(node),
    })
}

fn convert(y: &MarkedYaml, file: &Path, path: &str, diags: &mut Vec<Diagnostic>) -> Node {
    let loc = location(y.span.start);
    let kind = match &y.data {
        YamlData::Representation(text, style, tag) => {
            let plain = *style == ScalarStyle::Plain && tag.is_none();
            if plain && matches!(&**text, "" | "~" | "null" | "Null" | "NULL") {
                Kind::Null
            } else {
                Kind::Scalar(text.to_string())
            }
        }
        // Only produced with early parsing, which is off; handled for completeness.
        YamlData::Value(v) => match v {
            saphyr::Scalar::Null => Kind::Null,
            saphyr::Scalar::Boolean(b) => Kind::Scalar(b.to_string()),
            saphyr::Scalar::Integer(i) => Kind::Scalar(i.to_string()),
            saphyr::Scalar::FloatingPoint(f) => Kind::Scalar(f.to_string()),
            saphyr::Scalar::String(s) => Kind::Scalar(s.to_string()),
        },
        YamlData::Sequence(items) => Kind::Seq(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, file, &format!("{path}[{i}]"), diags))
                .collect(),
        ),
        YamlData::Mapping(map) => {
            let mut entries: Vec<Entry> = Vec::new();
            // Merged entries are applied after explicit keys so that explicit keys win.
            let mut merged: Vec<Entry> = Vec::new();
            for (k, v) in map {
                let key_loc = location(k.span.start);
                let key = match &k.data {
                    YamlData::Representation(text, _, _) => text.to_string(),
                    YamlData::Value(_) => match convert(k, file, path, diags).kind {
                        Kind::Scalar(s) => s,
                        _ => String::new(),
                    },
                    _ => {
                        diags.push(
                            Diagnostic::new(file, key_loc, path, "mapping keys must be scalars")
                                .found(if k.is_sequence() {
                                    "a sequence"
                                } else {
                                    "a mapping"
                                })
                                .expected("a string"),
                        );
                        continue;
                    }
                };
                let is_merge = key == "<<"
                    && matches!(&k.data, YamlData::Representation(_, ScalarStyle::Plain, _));
                let child_path = join(path, &key);
                let value = convert(v, file, &child_path, diags);
                if is_merge {
                    merge_sources(value, file, &child_path, &mut merged, diags);
                } else {
                    entries.push(Entry {
                        key,
                        key_loc,
                        value,
                    });
                }
            }
            for m in merged {
                if !entries.iter().any(|e| e.key == m.key) {
                    entries.push(m);
                }
            }
            Kind::Map(entries)
        }
        YamlData::Tagged(_, inner) => return convert(inner, file, path, diags),
        YamlData::Alias(_) | YamlData::BadValue => {
            diags.push(Diagnostic::new(
                file,
                loc,
                path,
                "unknown alias or invalid value",
            ));
            Kind::Null
        }
    };
    Node { loc, kind }
}

/// `<<: *a` or `<<: [*a, *b]`: collects the entries to merge, earlier sources first.
fn merge_sources(
    value: Node,
    file: &Path,
    path: &str,
    merged: &mut Vec<Entry>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut add = |node: Node, diags: &mut Vec<Diagnostic>| match node.kind {
        Kind::Map(entries) => {
            for e in entries {
                // An earlier source wins over a later one (YAML merge-key semantics).
                if !merged.iter().any(|m| m.key == e.key) {
                    merged.push(e);
                }
            }
        }
        _ => diags.push(
            Diagnostic::new(file, node.loc, path, "invalid merge key value")
                .found(node.describe())
                .expected("a mapping or a sequence of mappings"),
        ),
    };
    match value.kind {
        Kind::Seq(items) => {
            for item in items {
                add(item, diags);
            }
        }
        _ => add(value, diags),
    }
}

/// `a.b` field-path join; the root has the empty path.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
