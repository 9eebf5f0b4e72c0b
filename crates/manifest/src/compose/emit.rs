//! A small YAML writer for the imported manifest: block mappings, short lists and
//! mappings in flow style, and quoting that keeps every string the string it was.

/// A value to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    /// Nothing after the key (`KEY:`), read back as null.
    Null,
    /// A string, quoted when it would otherwise read as something else.
    Str(String),
    /// Text already known to be a safe plain scalar: numbers, durations, booleans.
    Plain(String),
    /// A sequence; `true` asks for flow style (`[a, b]`) when it fits on the line.
    Seq(Vec<Out>, bool),
    /// A mapping in order; `true` asks for flow style (`{ a: 1 }`) when it fits.
    Map(Vec<(String, Out)>, bool),
}

impl Out {
    pub(crate) fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    pub(crate) fn flow_list(items: Vec<Out>) -> Self {
        Self::Seq(items, true)
    }
}

/// Lines longer than this are written in block style instead of flow style.
const WIDTH: usize = 100;

/// A whole document: a top-level mapping.
pub(crate) fn document(doc: &[(String, Out)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in doc.iter().enumerate() {
        // A blank line between top-level sections and between services.
        if i > 0 {
            s.push('\n');
        }
        if k == "services"
            && let Out::Map(services, _) = v
        {
            s.push_str("services:\n");
            for (j, (name, svc)) in services.iter().enumerate() {
                if j > 0 {
                    s.push('\n');
                }
                entry(&mut s, 2, name, svc);
            }
        } else {
            entry(&mut s, 0, k, v);
        }
    }
    s
}

fn pad(s: &mut String, indent: usize) {
    s.extend(std::iter::repeat_n(' ', indent));
}

fn entry(s: &mut String, indent: usize, key: &str, value: &Out) {
    pad(s, indent);
    s.push_str(&scalar(key, false));
    s.push(':');
    match value {
        Out::Null => s.push('\n'),
        Out::Str(_) | Out::Plain(_) => {
            s.push(' ');
            s.push_str(&inline(value));
            s.push('\n');
        }
        Out::Seq(items, flow) => {
            let one_line = inline(value);
            if items.is_empty() || (*flow && fits(indent + key.len() + 2, &one_line)) {
                s.push(' ');
                s.push_str(&one_line);
                s.push('\n');
            } else {
                s.push('\n');
                for item in items {
                    seq_item(s, indent + 2, item);
                }
            }
        }
        Out::Map(entries, flow) => {
            let one_line = inline(value);
            if entries.is_empty() || (*flow && fits(indent + key.len() + 2, &one_line)) {
                s.push(' ');
                s.push_str(&one_line);
                s.push('\n');
            } else {
                s.push('\n');
                for (k, v) in entries {
                    entry(s, indent + 2, k, v);
                }
            }
        }
    }
}

fn seq_item(s: &mut String, indent: usize, item: &Out) {
    pad(s, indent);
    s.push_str("- ");
    match item {
        Out::Map(entries, flow) if !entries.is_empty() => {
            let one_line = inline(item);
            if *flow && fits(indent + 2, &one_line) {
                s.push_str(&one_line);
                s.push('\n');
            } else {
                // `- first: x` then the rest aligned under `first`.
                let mut nested = String::new();
                for (k, v) in entries {
                    entry(&mut nested, indent + 2, k, v);
                }
                s.push_str(nested.get(indent + 2..).unwrap_or_default());
            }
        }
        Out::Seq(items, _) if !items.is_empty() => {
            s.push_str(&inline(item));
            s.push('\n');
        }
        _ => {
            s.push_str(&inline(item));
            s.push('\n');
        }
    }
}

fn fits(prefix: usize, text: &str) -> bool {
    prefix + text.len() <= WIDTH && !text.contains('\n')
}

/// A value on one line: scalars, or collections in flow style.
fn inline(v: &Out) -> String {
    match v {
        Out::Null => "null".to_owned(),
        Out::Str(s) => scalar(s, false),
        Out::Plain(s) => s.clone(),
        Out::Seq(items, _) => {
            let parts: Vec<String> = items.iter().map(flow_item).collect();
            format!("[{}]", parts.join(", "))
        }
        Out::Map(entries, _) if entries.is_empty() => "{}".to_owned(),
        Out::Map(entries, _) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k, true), flow_item(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    }
}

fn flow_item(v: &Out) -> String {
    match v {
        Out::Str(s) => scalar(s, true),
        other => inline(other),
    }
}

/// `s` as a YAML scalar that reads back as exactly `s` (a string, never null, a number
/// or a boolean). `flow`: inside `[...]` or `{...}`, where `,[]{}` are indicators.
pub(crate) fn scalar(s: &str, flow: bool) -> String {
    if !needs_quotes(s, flow) {
        return s.to_owned();
    }
    let has_control = s.chars().any(char::is_control);
    if !has_control && (s.contains('\\') || s.contains('"')) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if c.is_control() => {
                let n = u32::from(c);
                if n <= 0xff {
                    q.push_str(&format!("\\x{n:02x}"));
                } else {
                    q.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Words YAML 1.1 or 1.2 readers take for null or booleans.
const RESERVED: &[&str] = &[
    "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n",
];

fn needs_quotes(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if s != s.trim()
        || s.chars().any(char::is_control)
        || RESERVED.contains(&s.to_ascii_lowercase().as_str())
        || looks_numeric(s)
        || s.contains('$')
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s == "<<"
        || s.starts_with("---")
    {
        return true;
    }
    if matches!(
        first,
        '?' | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return true;
    }
    if first == '-' && s.chars().nth(1).is_none_or(char::is_whitespace) {
        return true;
    }
    // In flow style, also quote words with spaces: `[sh, -c, "a b"]` reads better.
    flow && s.contains([',', '[', ']', '{', '}', ':', '#', ' '])
}

/// Anything a YAML reader might take for a number: a sign, then a digit or `.digit`,
/// plus `.inf` / `.nan`. Generous on purpose (`8080:80`, `1e3`, `0x1F`, `1_000`).
fn looks_numeric(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, ".inf" | ".nan") {
        return true;
    }
    let mut chars = body.chars();
    match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('.') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}
