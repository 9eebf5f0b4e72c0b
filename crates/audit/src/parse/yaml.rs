//! YAML → [`Node`] with exact spans, through saphyr's `MarkedYaml`.
//!
//! Scalars are loaded without early parsing so their text survives (`3.10` stays `3.10`).
//! Aliases are expanded by the loader; `<<` merge keys are applied here (compose files use
//! them), keeping explicit keys over merged ones.

use saphyr::{MarkedYaml, Marker, YamlData, YamlLoader};
use saphyr_parser::{Parser, ScalarStyle};

use super::ParseIssue;
use super::node::{Entry, Node, NodeKind};
use crate::source::{Pos, SourceFile, Span};

/// Parse every document of a YAML file.
///
/// # Errors
/// Returns the scanner's first error, located.
pub fn parse(file: &SourceFile) -> Result<Vec<Node>, ParseIssue> {
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    loader.early_parse(false);
    let mut parser = Parser::new_from_str(&file.text);
    let located = |m: &Marker, msg: &str| {
        let pos = to_pos(file, file.text.is_ascii(), m);
        ParseIssue {
            message: format!("invalid YAML: {msg}"),
            span: Span {
                start: pos,
                end: pos,
            },
        }
    };
    if let Err(e) = parser.load(&mut loader, true) {
        return Err(located(e.marker(), e.info()));
    }
    if let Some(e) = loader.error() {
        return Err(located(e.marker(), e.info()));
    }
    let ascii = file.text.is_ascii();
    Ok(loader
        .into_documents()
        .iter()
        .map(|d| convert(file, ascii, d, 0))
        .collect())
}

fn to_pos(file: &SourceFile, ascii: bool, m: &Marker) -> Pos {
    let offset = if ascii {
        m.index().min(file.text.len())
    } else {
        file.lines.offset_at(&file.text, m.line() as u32, m.col())
    };
    Pos {
        offset,
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

// Deep nesting is legal YAML but never useful in the files we audit; the limit keeps a
// hostile file from overflowing the stack.
const MAX_DEPTH: usize = 256;

fn convert(file: &SourceFile, ascii: bool, y: &MarkedYaml<'_>, depth: usize) -> Node {
    let mut span = Span {
        start: to_pos(file, ascii, &y.span.start),
        end: to_pos(file, ascii, &y.span.end),
    };
    if span.end.offset < span.start.offset {
        span.end = span.start;
    }
    if depth > MAX_DEPTH {
        return Node::scalar("", false, span);
    }
    let kind = match &y.data {
        YamlData::Representation(text, style, _) => NodeKind::Scalar {
            text: text.to_string(),
            quoted: matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted),
        },
        YamlData::Value(v) => NodeKind::Scalar {
            text: scalar_text(v),
            quoted: false,
        },
        YamlData::Sequence(items) => NodeKind::Seq(
            items
                .iter()
                .map(|i| convert(file, ascii, i, depth + 1))
                .collect(),
        ),
        YamlData::Mapping(map) => {
            let mut entries: Vec<Entry> = Vec::with_capacity(map.len());
            let mut merged: Vec<Entry> = Vec::new();
            for (k, v) in map {
                let key = convert(file, ascii, k, depth + 1);
                let value = convert(file, ascii, v, depth + 1);
                if matches!(&key.kind, NodeKind::Scalar { text, quoted: false } if text == "<<") {
                    // `<<: *a` or `<<: [*a, *b]`: earlier sources win over later ones.
                    let sources: Vec<&Node> = if value.is_seq() {
                        value.items().iter().collect()
                    } else {
                        vec![&value]
                    };
                    for src in sources {
                        for e in src.entries() {
                            if !merged.iter().any(|m| m.key_str() == e.key_str()) {
                                merged.push(e.clone());
                            }
                        }
                    }
                } else {
                    entries.push(Entry { key, value });
                }
            }
            for m in merged {
                if !entries.iter().any(|e| e.key_str() == m.key_str()) {
                    entries.push(m);
                }
            }
            NodeKind::Map(entries)
        }
        YamlData::Tagged(_, inner) => return convert(file, ascii, inner, depth + 1),
        YamlData::Alias(_) | YamlData::BadValue => NodeKind::Scalar {
            text: String::new(),
            quoted: false,
        },
    };
    Node { span, kind }
}

fn scalar_text(v: &saphyr::Scalar<'_>) -> String {
    match v {
        saphyr::Scalar::Null => String::new(),
        saphyr::Scalar::Boolean(b) => b.to_string(),
        saphyr::Scalar::Integer(i) => i.to_string(),
        saphyr::Scalar::FloatingPoint(f) => f.to_string(),
        saphyr::Scalar::String(s) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(text: &str) -> Node {
        let f = SourceFile::new("x.yml", text);
        parse(&f).unwrap().remove(0)
    }

    #[test]
    fn keeps_scalar_text_and_spans() {
        let text = "a:\n  b: 3.10\n  c: \"q\"\nlist:\n  - x\n";
        let n = parse_one(text);
        let b = n.get_path(&["a", "b"]).unwrap();
        assert_eq!(b.as_str(), Some("3.10"));
        assert_eq!((b.span.start.line, b.span.start.col), (2, 6));
        assert_eq!(&text[b.span.range()], "3.10");
        let key = &n.get("a").unwrap().entries()[1].key;
        assert_eq!((key.span.start.line, key.span.start.col), (3, 3));
        assert_eq!(n.get("list").unwrap().items()[0].as_str(), Some("x"));
    }

    #[test]
    fn applies_merge_keys() {
        let n = parse_one("x: &d\n  a: 1\n  b: 2\ny:\n  <<: *d\n  b: 3\n");
        let y = n.get("y").unwrap();
        assert_eq!(y.get_str("a"), Some("1"));
        assert_eq!(y.get_str("b"), Some("3"));
    }

    #[test]
    fn reports_errors_with_a_location() {
        let f = SourceFile::new("x.yml", "a: [1, 2\nb: c\n");
        let e = parse(&f).unwrap_err();
        assert!(e.message.contains("invalid YAML"));
        assert!(e.span.start.line >= 1);
    }

    #[test]
    fn non_ascii_offsets_are_bytes() {
        let text = "é: ü\nk: v\n";
        let n = parse_one(text);
        let v = n.get("k").unwrap();
        assert_eq!(&text[v.span.range()], "v");
    }
}
