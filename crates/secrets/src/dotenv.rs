//! A dotenv (`.env`) parser for `orchestra secrets import`.
//!
//! Supported: `KEY=value`, an `export ` prefix, blank lines and `#` comments,
//! unquoted values (trimmed, ` #` starts a comment), single quotes (literal, may span
//! lines), double quotes (escapes `\n` `\r` `\t` `\"` `\\` `\$`, may span lines),
//! `KEY=` (empty). What cannot be carried is reported with its line instead of being
//! guessed: `$VAR`/`${VAR}` interpolation, names that are not environment variable names, a
//! line without `=`, an unterminated quote, text after a closing quote.
//!
//! (dotenvy was considered: it interpolates `${VAR}` silently and stops at the first
//! error, while an import must say what it could not carry, line by line.)

use zeroize::Zeroizing;

use crate::store::validate_name;

/// One variable read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvEntry {
    /// The name.
    pub key: String,
    /// The value, unquoted and unescaped.
    pub value: Zeroizing<String>,
    /// The line the assignment starts on (1-based).
    pub line: usize,
    /// The last line of the assignment (differs for multi-line values).
    pub end_line: usize,
    /// Whether it had an `export ` prefix.
    pub export: bool,
}

/// A line that could not be carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvProblem {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong, without the value.
    pub message: String,
}

impl std::fmt::Display for DotenvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The result of parsing: the variables (a later assignment of the same key wins and
/// replaces the earlier entry) and the problems.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotenvFile {
    /// Variables, in file order.
    pub entries: Vec<DotenvEntry>,
    /// Lines not carried.
    pub problems: Vec<DotenvProblem>,
}

/// Parse dotenv text.
pub fn parse_dotenv(text: &str) -> DotenvFile {
    parse_inner(text).0
}

/// The parse, plus (first line, last line, key) of every carried assignment, the
/// overridden ones included.
fn parse_inner(text: &str) -> (DotenvFile, Vec<(usize, usize, String)>) {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = DotenvFile::default();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let raw = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
        i += 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut problem = |line: usize, message: String| {
            out.problems.push(DotenvProblem { line, message });
        };
        let (export, rest) = match trimmed.strip_prefix("export") {
            Some(r) if r.starts_with([' ', '\t']) => (true, r.trim_start()),
            _ => (false, trimmed),
        };
        let Some((key, value)) = rest.split_once('=') else {
            problem(start + 1, "no `=`: not a KEY=value line".into());
            continue;
        };
        let key = key.trim();
        let value = value.trim_start();
        // Parse the value first: a bad name must still consume a multi-line value.
        let quote = value.chars().next().filter(|c| matches!(c, '"' | '\''));
        let parsed = match quote {
            Some(q) => parse_quoted(q, &value[1..], &lines, &mut i),
            None => {
                let v = match value.find(" #").or_else(|| value.find("\t#")) {
                    Some(at) => &value[..at],
                    None => value,
                };
                Ok((v.trim_end().to_owned(), String::new()))
            }
        };
        let end_line = i;
        let (value, after) = match parsed {
            Ok((v, a)) => (Zeroizing::new(v), a),
            Err(msg) => {
                problem(start + 1, format!("{key}: {msg}"));
                continue;
            }
        };
        if validate_name(key).is_err() {
            problem(
                start + 1,
                format!(
                    "`{key}` is not a secret name: letters, digits and `_`, not starting with a digit"
                ),
            );
            continue;
        }
        let after = after.trim();
        if !after.is_empty() && !after.starts_with('#') {
            problem(
                end_line,
                format!("{key}: unexpected text after the closing quote"),
            );
            continue;
        }
        // Single quotes are literal; in double quotes an escaped `\$` came back NUL-marked.
        if quote != Some('\'') && interpolates(&value) {
            problem(
                start + 1,
                format!(
                    "{key}: `$VAR` / `${{VAR}}` interpolation is not supported; put the value in single quotes to store it literally"
                ),
            );
            continue;
        }
        let value = if quote == Some('"') {
            Zeroizing::new(value.replace('\u{0}', ""))
        } else {
            value
        };
        spans.push((start + 1, end_line, key.to_owned()));
        out.entries.retain(|e| e.key != key);
        out.entries.push(DotenvEntry {
            key: key.to_owned(),
            value,
            line: start + 1,
            end_line,
            export,
        });
    }
    (out, spans)
}

/// `$NAME` or `${` not preceded by the NUL marker of an escaped `\$`.
fn interpolates(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).enumerate().any(|(j, w)| {
        w[0] == b'$'
            && (w[1] == b'{' || w[1] == b'_' || w[1].is_ascii_alphabetic())
            && (j == 0 || b[j - 1] != 0)
    })
}

/// A quoted value starting after the opening quote `q` in `first`, continuing on the
/// following lines (`i` is the index of the next line, advanced past what is consumed).
/// Returns the value and the text after the closing quote. In double quotes an escaped
/// `\$` comes back as NUL + `$` so that the caller does not take it for interpolation.
fn parse_quoted(
    q: char,
    first: &str,
    lines: &[&str],
    i: &mut usize,
) -> Result<(String, String), String> {
    let mut value = String::new();
    let mut cur = first.to_owned();
    loop {
        let mut chars = cur.char_indices();
        while let Some((at, c)) = chars.next() {
            if c == q {
                return Ok((value, cur[at + c.len_utf8()..].to_owned()));
            }
            if q == '"' && c == '\\' {
                match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some('"') => value.push('"'),
                    Some('\\') => value.push('\\'),
                    Some('$') => value.push_str("\u{0}$"),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => value.push('\\'),
                }
                continue;
            }
            value.push(c);
        }
        // The quote continues on the next line.
        let Some(next) = lines.get(*i) else {
            return Err(format!(
                "unterminated {q}quote{q} (it runs to the end of the file)"
            ));
        };
        *i += 1;
        value.push('\n');
        cur = next.strip_suffix('\r').unwrap_or(next).to_owned();
    }
}

/// `text` rewritten as a template: each carried assignment becomes `KEY=` (keeping an
/// `export ` prefix), its continuation lines dropped; comments, blank lines and lines
/// that were not carried stay as they were.
pub fn template(text: &str) -> String {
    let (parsed, spans) = parse_inner(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let n = i + 1;
        let span = spans.iter().find(|(l, _, _)| *l == n);
        match span.and_then(|(_, end, key)| {
            parsed
                .entries
                .iter()
                .find(|e| &e.key == key)
                .map(|e| (end, e))
        }) {
            Some((end, e)) => {
                // The export flag of this very line, not of the winning assignment.
                let export = lines[i].trim_start().starts_with("export");
                out.push_str(if export { "export " } else { "" });
                out.push_str(&e.key);
                out.push('=');
                i = *end;
            }
            None => {
                out.push_str(lines[i]);
                i += 1;
            }
        }
        if i < lines.len() {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(f: &DotenvFile) -> Vec<(&str, &str)> {
        f.entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect()
    }

    #[test]
    fn unquoted_values_comments_and_blank_lines() {
        let f = parse_dotenv("# a comment\n\nA=1\nB = two words  # trailing\nC=x#not-a-comment\n");
        assert_eq!(
            vars(&f),
            [("A", "1"), ("B", "two words"), ("C", "x#not-a-comment")]
        );
        assert!(f.problems.is_empty(), "{:?}", f.problems);
    }

    #[test]
    fn export_prefix() {
        let f = parse_dotenv("export NAME=abc\nexport\tOTHER='x'\nexportX=1\n");
        // `exportX` is a name, not the prefix.
        assert_eq!(
            vars(&f),
            [("NAME", "abc"), ("OTHER", "x"), ("exportX", "1")]
        );
        assert!(f.entries[0].export && f.entries[1].export && !f.entries[2].export);
        assert!(f.problems.is_empty(), "{:?}", f.problems);
    }

    #[test]
    fn single_quotes_are_literal() {
        let f = parse_dotenv("P='a \\n $HOME ${X} \"q\"' # c\n");
        assert_eq!(vars(&f), [("P", "a \\n $HOME ${X} \"q\"")]);
        assert!(f.problems.is_empty());
    }

    #[test]
    fn double_quotes_have_escapes() {
        let f = parse_dotenv(r#"D="line1\nline2 \"quoted\" back\\slash \$NOT tab\t""#);
        assert_eq!(
            vars(&f),
            [("D", "line1\nline2 \"quoted\" back\\slash $NOT tab\t")]
        );
        assert!(f.problems.is_empty(), "{:?}", f.problems);
    }

    #[test]
    fn multi_line_double_quoted_values() {
        let text = "KEY=\"-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----\"\nAFTER=1\n";
        let f = parse_dotenv(text);
        assert_eq!(
            vars(&f),
            [
                ("KEY", "-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----"),
                ("AFTER", "1")
            ]
        );
        assert_eq!((f.entries[0].line, f.entries[0].end_line), (1, 4));
        assert_eq!(f.entries[1].line, 5);
    }

    #[test]
    fn empty_values() {
        let f = parse_dotenv("E=\nF=\"\"\nG=''\n");
        assert_eq!(vars(&f), [("E", ""), ("F", ""), ("G", "")]);
    }

    #[test]
    fn problems_carry_line_numbers_and_never_values() {
        let text = "A=${HOME}/x\nB=$USER\n1st=1\nnot a line\nC=\"unterminated\nD=1\n";
        let f = parse_dotenv(text);
        let lines: Vec<_> = f.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5], "{:?}", f.problems);
        assert!(f.problems[0].message.contains("interpolation"));
        assert!(
            f.problems[2].message.contains("1st"),
            "{}",
            f.problems[2].message
        );
        assert!(f.problems[4].message.contains("unterminated"));
        assert!(f.entries.is_empty(), "{:?}", vars(&f));
        for p in &f.problems {
            assert!(!p.message.contains("HOME}/x") && !p.message.contains("$USER"));
        }
        // `$` not followed by a name is not interpolation.
        assert_eq!(vars(&parse_dotenv("PRICE=$5\n")), [("PRICE", "$5")]);
        assert_eq!(parse_dotenv("Q=\"a\" b\n").problems.len(), 1);
    }

    #[test]
    fn later_assignments_win_and_crlf_is_accepted() {
        let f = parse_dotenv("A=1\r\nA=2\r\n");
        assert_eq!(vars(&f), [("A", "2")]);
    }

    #[test]
    fn template_blanks_carried_values_only() {
        let text = "# db\nexport A=1\nB=\"x\ny\"\n1c=digit\nD=${X}\n";
        assert_eq!(template(text), "# db\nexport A=\nB=\n1c=digit\nD=${X}\n");
    }
}
