//! Pass 2 (interpolate): Compose-style `${VAR}` substitution in scalar values, and
//! the `.env` / `env_file` format.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Diagnostic;
use crate::model::Location;
use crate::node::{Kind, Node, join};

/// The placeholder the runtime fills per replica; never substituted at load time.
/// Variables Orchestra fills at run time: `PORT` per replica, `URL` (a new
/// revision's own address) in deploy hooks. They are kept as written.
pub(crate) const RUNTIME_VARS: &[&str] = &["PORT", "URL"];

/// Interpolates every scalar value (not keys) of the tree in place.
///
/// Top-level `env:` overlays other than `environment` are skipped: a `${X:?}` in an
/// overlay that is not being applied must not fail the load.
pub(crate) fn interpolate_tree(
    root: &mut Node,
    environment: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<String>,
    file: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    if let Kind::Map(entries) = &mut root.kind {
        for e in entries {
            if e.key == "env"
                && let Kind::Map(overlays) = &mut e.value.kind
            {
                for o in overlays {
                    if Some(o.key.as_str()) == environment {
                        let path = join("env", &o.key);
                        walk(&mut o.value, &path, lookup, file, diags);
                    }
                }
                continue;
            }
            walk(&mut e.value, &e.key, lookup, file, diags);
        }
    } else {
        walk(root, "", lookup, file, diags);
    }
}

fn walk(
    node: &mut Node,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    file: &Path,
    diags: &mut Vec<Diagnostic>,
) {
    match &mut node.kind {
        Kind::Null => {}
        Kind::Scalar(s) => match interpolate(s, lookup) {
            Ok(v) => *s = v,
            Err(message) => {
                diags.push(Diagnostic::new(file, node.loc, path, message).found(format!("{s:?}")))
            }
        },
        Kind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), lookup, file, diags);
            }
        }
        Kind::Map(entries) => {
            for e in entries {
                let p = join(path, &e.key);
                walk(&mut e.value, &p, lookup, file, diags);
            }
        }
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Expands `${VAR}`, `$VAR`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?m}`, `${VAR?m}`,
/// `${VAR:+a}`, `${VAR+a}` and `$$`. Unset variables without a default expand to "".
///
/// `PORT` is always set (and non-empty) at run time, so every form that reads it becomes
/// the literal `${PORT}`, except `:+`/`+`, which yield their alternative.
pub(crate) fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut literal = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&s[literal..i]);
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let end = closing_brace(s, i + 2)
                    .ok_or_else(|| "unterminated `${` in interpolation".to_owned())?;
                out.push_str(&braced(&s[i + 2..end], lookup)?);
                i = end + 1;
            }
            Some(&c) if is_name_start(c) => {
                let mut j = i + 1;
                while j < b.len() && is_name_char(b[j]) {
                    j += 1;
                }
                let name = &s[i + 1..j];
                if RUNTIME_VARS.contains(&name) {
                    out.push_str(&format!("${{{name}}}"));
                } else {
                    out.push_str(&lookup(name).unwrap_or_default());
                }
                i = j;
            }
            // A lone `$` (e.g. "costs 5$") is kept; Compose rejects it, which helps nobody.
            _ => {
                out.push('$');
                i += 1;
            }
        }
        literal = i;
    }
    out.push_str(&s[literal..]);
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `start`, allowing nesting.
fn closing_brace(s: &str, start: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 1;
    let mut j = start;
    while j < b.len() {
        match b[j] {
            b'$' if b.get(j + 1) == Some(&b'$') => j += 1,
            b'$' if b.get(j + 1) == Some(&b'{') => {
                depth += 1;
                j += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

fn braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let b = inner.as_bytes();
    let name_len = b.iter().take_while(|c| is_name_char(**c)).count();
    if name_len == 0 || !is_name_start(b[0]) {
        return Err(format!("invalid variable reference `${{{inner}}}`"));
    }
    let name = &inner[..name_len];
    let rest = &inner[name_len..];
    let (op, word) = ["-", ":-", "?", ":?", "+", ":+"]
        .iter()
        // No operator is a prefix of another, so at most one matches.
        .find_map(|op| rest.strip_prefix(op).map(|w| (*op, w)))
        .unwrap_or(("", rest));
    if op.is_empty() && !rest.is_empty() {
        return Err(format!("invalid variable reference `${{{inner}}}`"));
    }
    if RUNTIME_VARS.contains(&name) {
        return match op {
            "+" | ":+" => interpolate(word, lookup),
            _ => Ok(format!("${{{name}}}")),
        };
    }
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        "" => Ok(value.unwrap_or_default()),
        ":-" if set_nonempty => Ok(value.unwrap_or_default()),
        "-" if value.is_some() => Ok(value.unwrap_or_default()),
        ":-" | "-" => interpolate(word, lookup),
        ":?" if set_nonempty => Ok(value.unwrap_or_default()),
        "?" if value.is_some() => Ok(value.unwrap_or_default()),
        ":?" | "?" => {
            let message = interpolate(word, lookup)?;
            let what = if op == ":?" {
                "is not set or empty"
            } else {
                "is not set"
            };
            if message.is_empty() {
                Err(format!("required variable `{name}` {what}"))
            } else {
                Err(format!("required variable `{name}` {what}: {message}"))
            }
        }
        ":+" if set_nonempty => interpolate(word, lookup),
        "+" if value.is_some() => interpolate(word, lookup),
        _ => Ok(String::new()),
    }
}

/// A `.env` / `env_file` problem: 1-based line and message.
pub(crate) type DotenvError = (usize, String);

/// Parses `KEY=VALUE` lines: `#` comments, blank lines, an optional `export ` prefix,
/// single quotes (literal), double quotes (`\n`, `\t`, `\"`, `\\` escapes) and
/// ` #` trailing comments on unquoted values. A `KEY` line without `=` is an error.
pub(crate) fn parse_dotenv(text: &str) -> (BTreeMap<String, String>, Vec<DotenvError>) {
    let mut vars = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            errors.push((i + 1, format!("expected KEY=VALUE, found {line:?}")));
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|c| is_name_char(c) || c == b'.' || c == b'-')
        {
            errors.push((i + 1, format!("invalid variable name {key:?}")));
            continue;
        }
        vars.insert(key.to_owned(), dotenv_value(value.trim()));
    }
    (vars, errors)
}

fn dotenv_value(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].to_owned();
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        return out;
    }
    // Unquoted: a ` #` starts a comment.
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_owned(),
        None => v.to_owned(),
    }
}

/// Turns `.env` errors into diagnostics against that file.
pub(crate) fn dotenv_diagnostics(file: &Path, errors: Vec<DotenvError>) -> Vec<Diagnostic> {
    errors
        .into_iter()
        .map(|(line, message)| {
            Diagnostic::new(file, Location { line, col: 1 }, "", message)
                .expected("KEY=VALUE lines")
        })
        .collect()
}
