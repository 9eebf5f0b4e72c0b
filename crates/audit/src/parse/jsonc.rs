//! JSON and JSONC (`//` and `/* */` comments, trailing commas) → [`Node`] with spans.
//!
//! Comments are skipped in place rather than stripped into a copy, so every offset is the
//! offset in the original file.

use super::ParseIssue;
use super::node::{Entry, Node, NodeKind};
use crate::source::SourceFile;

/// Parse a JSON or JSONC document.
///
/// # Errors
/// Returns the first syntax error, located.
pub fn parse(file: &SourceFile) -> Result<Node, ParseIssue> {
    let mut p = P {
        file,
        b: file.text.as_bytes(),
        i: 0,
        depth: 0,
    };
    // A UTF-8 byte order mark is legal at the start.
    if p.b.starts_with(&[0xEF, 0xBB, 0xBF]) {
        p.i = 3;
    }
    p.ws()?;
    let v = p.value()?;
    p.ws()?;
    if p.i < p.b.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(v)
}

struct P<'a> {
    file: &'a SourceFile,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 512;

impl P<'_> {
    fn err(&self, msg: &str) -> ParseIssue {
        let pos = self.file.pos(self.i);
        ParseIssue {
            message: format!("invalid JSON: {msg}"),
            span: crate::source::Span {
                start: pos,
                end: pos,
            },
        }
    }

    fn ws(&mut self) -> Result<(), ParseIssue> {
        loop {
            match self.b.get(self.i) {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.i += 1,
                Some(b'/') if self.b.get(self.i + 1) == Some(&b'/') => {
                    while self.i < self.b.len() && self.b[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                Some(b'/') if self.b.get(self.i + 1) == Some(&b'*') => {
                    let start = self.i;
                    self.i += 2;
                    loop {
                        if self.i + 1 >= self.b.len() {
                            self.i = start;
                            return Err(self.err("unterminated /* comment"));
                        }
                        if self.b[self.i] == b'*' && self.b[self.i + 1] == b'/' {
                            self.i += 2;
                            break;
                        }
                        self.i += 1;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self) -> Result<Node, ParseIssue> {
        let start = self.i;
        match self.b.get(self.i) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                let text = self.string()?;
                Ok(Node::scalar(text, true, self.file.span(start..self.i)))
            }
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                while self.i < self.b.len()
                    && (self.b[self.i].is_ascii_alphanumeric() || b"+-.".contains(&self.b[self.i]))
                {
                    self.i += 1;
                }
                let text = &self.file.text[start..self.i];
                let ok = matches!(text, "true" | "false" | "null")
                    || text
                        .parse::<f64>()
                        .is_ok_and(|_| text.starts_with(|c: char| c == '-' || c.is_ascii_digit()));
                if !ok {
                    self.i = start;
                    return Err(self.err("expected a value"));
                }
                Ok(Node::scalar(text, false, self.file.span(start..self.i)))
            }
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn enter(&mut self) -> Result<(), ParseIssue> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Node, ParseIssue> {
        let start = self.i;
        self.enter()?;
        self.i += 1;
        let mut entries = Vec::new();
        loop {
            self.ws()?;
            match self.b.get(self.i) {
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                Some(b'"') => {
                    let ks = self.i;
                    let k = self.string()?;
                    let key = Node::scalar(k, true, self.file.span(ks..self.i));
                    self.ws()?;
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.err("expected `:`"));
                    }
                    self.i += 1;
                    self.ws()?;
                    let value = self.value()?;
                    entries.push(Entry { key, value });
                    self.ws()?;
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(self.err("expected `,` or `}`")),
                    }
                }
                None => return Err(self.err("unterminated object")),
                Some(_) => return Err(self.err("expected a string key")),
            }
        }
        self.depth -= 1;
        Ok(Node {
            span: self.file.span(start..self.i),
            kind: NodeKind::Map(entries),
        })
    }

    fn array(&mut self) -> Result<Node, ParseIssue> {
        let start = self.i;
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws()?;
            match self.b.get(self.i) {
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                None => return Err(self.err("unterminated array")),
                Some(_) => {
                    items.push(self.value()?);
                    self.ws()?;
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return Err(self.err("expected `,` or `]`")),
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(Node {
            span: self.file.span(start..self.i),
            kind: NodeKind::Seq(items),
        })
    }

    /// Parse a string starting at `"`, returning its unescaped value.
    fn string(&mut self) -> Result<String, ParseIssue> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        let mut run = self.i;
        loop {
            match self.b.get(self.i) {
                None | Some(b'\n') => {
                    self.i = start;
                    return Err(self.err("unterminated string"));
                }
                Some(b'"') => {
                    out.push_str(&self.file.text[run..self.i]);
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(&self.file.text[run..self.i]);
                    let esc = self.b.get(self.i + 1).copied();
                    self.i += 2;
                    match esc {
                        Some(b'n') => out.push('\n'),
                        Some(b't') => out.push('\t'),
                        Some(b'r') => out.push('\r'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'u') => {
                            let hex = self.file.text.get(self.i..self.i + 4).unwrap_or("");
                            let cp = u32::from_str_radix(hex, 16)
                                .map_err(|_| self.err("bad \\u escape"))?;
                            self.i += 4;
                            // Surrogate pairs are rare in config files; keep them lossy.
                            out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        }
                        Some(c @ (b'"' | b'\\' | b'/')) => out.push(c as char),
                        _ => return Err(self.err("bad escape")),
                    }
                    run = self.i;
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jsonc_with_comments_and_trailing_commas() {
        let text = "{\n  // c\n  \"a\": [1, 2,],\n  /* b */ \"b\": {\"c\": \"d\\n\",},\n}\n";
        let f = SourceFile::new("devcontainer.json", text);
        let n = parse(&f).unwrap();
        assert_eq!(n.get("a").unwrap().items().len(), 2);
        let c = n.get_path(&["b", "c"]).unwrap();
        assert_eq!(c.as_str(), Some("d\n"));
        assert_eq!((c.span.start.line, c.span.start.col), (4, 22));
    }

    #[test]
    fn reports_errors() {
        let f = SourceFile::new("x.json", "{\"a\": }");
        let e = parse(&f).unwrap_err();
        assert_eq!(e.span.start.col, 7);
        let f = SourceFile::new("x.json", "{\"a\": 1} x");
        assert!(parse(&f).is_err());
    }
}
