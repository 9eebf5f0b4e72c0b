//! Pass 1 (parse): YAML text to a small node tree that keeps every node's location.
//!
//! saphyr does the YAML work (syntax, anchors and aliases); this module copies its
//! `MarkedYaml` into our own tree, applies `<<` merge keys (saphyr does not) and keeps
//! scalars as their source text so that typing happens later, per field.

use std::path::Path;

use saphyr::{LoadableYamlNode as _, MarkedYaml, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::{Marker, Parser, ScanError, Tag};

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

/// Which YAML tags a file may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tags {
    /// An `orchestra.yaml`: only the core schema's scalar tags (`!!str`, `!!null`...).
    Manifest,
    /// A Compose file: also `!reset` (the key is unset, merged content included) and
    /// `!override` (the value replaces what a merge would bring).
    Compose,
}

/// Parses `source`. `Ok(None)` is an empty document. A syntax error is one diagnostic.
pub(crate) fn parse(source: &str, file: &Path) -> Result<Option<Node>, Vec<Diagnostic>> {
    parse_with(source, file, Tags::Manifest)
}

/// [`parse`] with the tags of `tags`; an unknown tag is an error at its position.
pub(crate) fn parse_with(
    source: &str,
    file: &Path,
    tags: Tags,
) -> Result<Option<Node>, Vec<Diagnostic>> {
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
    let node = Converter { file, tags }.convert(&first, "", &mut diags);
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(match node.kind {
        Kind::Null => None,
        _ => Some(node),
    })
}

/// The tag a node carries: a scalar's own, or the wrapper saphyr puts around a
/// collection with a non-core tag.
fn tag_of<'a>(y: &'a MarkedYaml<'_>) -> Option<&'a Tag> {
    match &y.data {
        YamlData::Representation(_, _, Some(t)) => Some(t),
        YamlData::Tagged(t, _) => Some(t),
        _ => None,
    }
}

/// What a tag means here.
enum TagMeaning {
    /// No tag, a core scalar tag or `!override`: the value as written.
    Plain,
    /// `!!null`: null whatever the text.
    Null,
    /// `!reset`: unset the key.
    Reset,
    /// `!override`: the value replaces what a merge (`extends`, `include`) brings.
    Override,
    /// Anything else: the error message.
    Unknown(String),
}

struct Converter<'a> {
    file: &'a Path,
    tags: Tags,
}

impl Converter<'_> {
    fn meaning(&self, y: &MarkedYaml) -> TagMeaning {
        let Some(t) = tag_of(y) else {
            return TagMeaning::Plain;
        };
        let compose = self.tags == Tags::Compose;
        if t.is_yaml_core_schema() {
            return match t.suffix.as_str() {
                "null" => TagMeaning::Null,
                "str" | "int" | "float" | "bool" | "map" | "seq" => TagMeaning::Plain,
                other => TagMeaning::Unknown(format!("unsupported YAML tag `!!{other}`")),
            };
        }
        match (t.handle.as_str(), t.suffix.as_str()) {
            ("!", "reset") if compose => TagMeaning::Reset,
            ("!", "override") if compose => TagMeaning::Override,
            ("!", name) => TagMeaning::Unknown(format!("unknown YAML tag `!{name}`")),
            (handle, name) => TagMeaning::Unknown(format!("unknown YAML tag `{handle}{name}`")),
        }
    }

    fn tag_error(&self, loc: Location, path: &str, message: String, diags: &mut Vec<Diagnostic>) {
        let expected = match self.tags {
            Tags::Compose => "`!reset`, `!override`, or a core tag such as `!!str` or `!!null`",
            Tags::Manifest => "no tag, or a core tag such as `!!str` or `!!null`",
        };
        diags.push(Diagnostic::new(self.file, loc, path, message).expected(expected));
    }

    fn convert(&self, y: &MarkedYaml, path: &str, diags: &mut Vec<Diagnostic>) -> Node {
        let loc = location(y.span.start);
        match self.meaning(y) {
            TagMeaning::Plain | TagMeaning::Override => {}
            TagMeaning::Null => {
                return Node {
                    loc,
                    kind: Kind::Null,
                };
            }
            TagMeaning::Reset => {
                self.tag_error(
                    loc,
                    path,
                    "`!reset` unsets a key: it applies only to a mapping's value".to_owned(),
                    diags,
                );
            }
            TagMeaning::Unknown(message) => self.tag_error(loc, path, message, diags),
        }
        self.convert_untagged(y, path, diags)
    }

    fn convert_untagged(&self, y: &MarkedYaml, path: &str, diags: &mut Vec<Diagnostic>) -> Node {
        let file = self.file;
        let loc = location(y.span.start);
        let kind = match &y.data {
            YamlData::Representation(text, style, tag) => {
                // A core tag (`!!str null`) makes it a string; `!override` does not.
                let plain = *style == ScalarStyle::Plain
                    && tag.as_ref().is_none_or(|t| !t.is_yaml_core_schema());
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
                    .map(|(i, item)| self.convert(item, &format!("{path}[{i}]"), diags))
                    .collect(),
            ),
            YamlData::Mapping(map) => {
                let mut entries: Vec<Entry> = Vec::new();
                // Merged entries are applied after explicit keys so that explicit keys win.
                let mut merged: Vec<Entry> = Vec::new();
                let mut resets: Vec<String> = Vec::new();
                for (k, v) in map {
                    let key_loc = location(k.span.start);
                    let key = match &k.data {
                        YamlData::Representation(text, _, _) => text.to_string(),
                        YamlData::Value(_) => match self.convert(k, path, diags).kind {
                            Kind::Scalar(s) => s,
                            _ => String::new(),
                        },
                        _ => {
                            diags.push(
                                Diagnostic::new(
                                    file,
                                    key_loc,
                                    path,
                                    "mapping keys must be scalars",
                                )
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
                    // `KEY: !reset ...`: the key is unset, whatever a merge brings.
                    // The mark stays in the tree so that `extends` can unset the base's key.
                    if matches!(self.meaning(v), TagMeaning::Reset) {
                        entries.push(Entry {
                            key: format!("{RESET_MARK}{key}"),
                            key_loc,
                            value: Node {
                                loc: key_loc,
                                kind: Kind::Null,
                            },
                        });
                        resets.push(key);
                        continue;
                    }
                    let key = if matches!(self.meaning(v), TagMeaning::Override) {
                        format!("{OVERRIDE_MARK}{key}")
                    } else {
                        key
                    };
                    let value = self.convert(v, &child_path, diags);
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
                    if !entries.iter().any(|e| unmarked(&e.key) == m.key)
                        && !resets.contains(&m.key)
                    {
                        entries.push(m);
                    }
                }
                Kind::Map(entries)
            }
            YamlData::Tagged(_, inner) => return self.convert_untagged(inner, path, diags),
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

/// The key of a `KEY: !reset ...` entry in a Compose tree (its value is null).
pub(crate) const RESET_MARK: &str = "\u{0}reset:";
/// The key prefix of a `KEY: !override ...` entry in a Compose tree.
pub(crate) const OVERRIDE_MARK: &str = "\u{0}override:";

/// A key without its `!reset` / `!override` mark.
pub(crate) fn unmarked(key: &str) -> &str {
    key.strip_prefix(RESET_MARK)
        .or_else(|| key.strip_prefix(OVERRIDE_MARK))
        .unwrap_or(key)
}

/// `a.b` field-path join; the root has the empty path.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
