//! TOML → [`Node`] with spans, through the `toml` crate's spanned document model.

use toml::de::{DeTable, DeValue};

use super::ParseIssue;
use super::node::{Entry, Node, NodeKind};
use crate::source::SourceFile;

/// Parse a TOML document.
///
/// # Errors
/// Returns the parser's first error, located.
pub fn parse(file: &SourceFile) -> Result<Node, ParseIssue> {
    match DeTable::parse(&file.text) {
        Ok(root) => {
            let span = root.span();
            Ok(table(file, root.get_ref(), span))
        }
        Err(e) => {
            let range = e.span().unwrap_or(0..0);
            Err(ParseIssue {
                message: format!("invalid TOML: {}", e.message().trim()),
                span: file.span(range),
            })
        }
    }
}

fn table(file: &SourceFile, t: &DeTable<'_>, span: std::ops::Range<usize>) -> Node {
    let mut entries: Vec<Entry> = t
        .iter()
        .map(|(k, v)| Entry {
            key: Node::scalar(k.get_ref().to_string(), true, file.span(k.span())),
            value: value(file, v.get_ref(), v.span()),
        })
        .collect();
    // The crate may sort keys; source order reads better in messages.
    entries.sort_by_key(|e| e.key.span.start.offset);
    Node {
        span: file.span(span),
        kind: NodeKind::Map(entries),
    }
}

fn value(file: &SourceFile, v: &DeValue<'_>, span: std::ops::Range<usize>) -> Node {
    let s = file.span(span.clone());
    match v {
        DeValue::String(t) => Node::scalar(t.to_string(), true, s),
        DeValue::Integer(i) => Node::scalar(i.as_str(), false, s),
        DeValue::Float(f) => Node::scalar(f.as_str(), false, s),
        DeValue::Boolean(b) => Node::scalar(b.to_string(), false, s),
        DeValue::Datetime(d) => Node::scalar(d.to_string(), false, s),
        DeValue::Array(a) => Node {
            span: s,
            kind: NodeKind::Seq(
                a.into_iter()
                    .map(|i| value(file, i.get_ref(), i.span()))
                    .collect(),
            ),
        },
        DeValue::Table(t) => table(file, t, span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_spans() {
        let text =
            "[tool.poetry]\nname = \"x\"\n\n[tool.poetry.dependencies]\npython = \"^3.11\"\n";
        let f = SourceFile::new("pyproject.toml", text);
        let n = parse(&f).unwrap();
        let py = n
            .get_path(&["tool", "poetry", "dependencies", "python"])
            .unwrap();
        assert_eq!(py.as_str(), Some("^3.11"));
        assert_eq!(py.span.start.line, 5);
        assert_eq!(&text[py.span.range()], "\"^3.11\"");
    }

    #[test]
    fn reports_errors() {
        let f = SourceFile::new("x.toml", "a = \n");
        let e = parse(&f).unwrap_err();
        assert!(e.message.starts_with("invalid TOML"));
    }
}
