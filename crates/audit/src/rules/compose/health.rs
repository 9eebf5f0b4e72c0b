//! Healthcheck and container commands as shell pipelines: what a compose `healthcheck.test`
//! / `command:` or a Dockerfile `HEALTHCHECK` / `CMD` runs, split into simple commands with
//! the operator before each (helpers for the healthcheck and placeholder rules).

use crate::parse::Node;
use crate::parse::dockerfile::{Form, Instruction};

/// The operator in front of a simple command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The first command.
    Start,
    /// `&&`.
    And,
    /// `||`.
    Or,
    /// `;`, a newline, `&`, or a parenthesis.
    Seq,
    /// `|`.
    Pipe,
}

/// One simple command: its words (quotes removed) and the operator before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simple {
    /// The operator before it.
    pub op: Op,
    /// Its words.
    pub words: Vec<String>,
}

impl Simple {
    /// The program's basename, after `VAR=x` assignments, `exec` and `env`.
    #[must_use]
    pub fn program(&self) -> Option<&str> {
        self.program_at()
            .map(|i| self.words[i].rsplit('/').next().unwrap_or(&self.words[i]))
    }

    fn program_at(&self) -> Option<usize> {
        self.words.iter().position(|w| {
            !matches!(w.as_str(), "exec" | "env" | "command" | "then" | "do" | "!")
                && !w
                    .split_once('=')
                    .is_some_and(|(k, _)| !k.is_empty() && k.bytes().all(is_name_byte))
        })
    }

    /// The words after the program.
    #[must_use]
    pub fn args(&self) -> &[String] {
        match self.program_at() {
            Some(i) => &self.words[i + 1..],
            None => &[],
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Split shell text into simple commands. Quotes, escapes, `$(…)` and backticks stay
/// inside words.
#[must_use]
pub fn split_shell(text: &str) -> Vec<Simple> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut op = Op::Start;
    let mut i = 0;
    let flush_word = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' => {
                flush_word(&mut word, &mut in_word, &mut words);
                i += 1;
            }
            b'#' if !in_word => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' => {
                in_word = true;
                i += 1;
                if let Some(ch) = text[i..].chars().next() {
                    if ch != '\n' {
                        word.push(ch);
                    }
                    i += ch.len_utf8();
                }
            }
            b'\'' | b'"' => {
                in_word = true;
                let q = c;
                i += 1;
                let s = i;
                while i < b.len() && b[i] != q {
                    i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                }
                word.push_str(&text[s..i.min(b.len())]);
                i = (i + 1).min(b.len());
            }
            b'$' if b.get(i + 1) == Some(&b'(') => {
                in_word = true;
                let s = i;
                let mut depth = 0usize;
                while i < b.len() {
                    match b[i] {
                        b'(' => depth += 1,
                        b')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                word.push_str(&text[s..i.min(b.len())]);
            }
            b'`' => {
                in_word = true;
                let s = i;
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
                word.push_str(&text[s..i]);
            }
            b'&' | b'|' | b';' | b'(' | b')' | b'\n' => {
                flush_word(&mut word, &mut in_word, &mut words);
                let next = b.get(i + 1).copied();
                let (this_op, len) = match (c, next) {
                    (b'&', Some(b'&')) => (Op::And, 2),
                    (b'|', Some(b'|')) => (Op::Or, 2),
                    (b'|', _) => (Op::Pipe, 1),
                    _ => (Op::Seq, 1),
                };
                if !words.is_empty() {
                    out.push(Simple {
                        op,
                        words: std::mem::take(&mut words),
                    });
                    op = this_op;
                } else if this_op != Op::Seq {
                    // `(a) || b`: the operator after a parenthesis wins; `|| (b)` keeps `||`.
                    op = this_op;
                }
                i += len;
            }
            _ => {
                in_word = true;
                let ch = text[i..].chars().next().unwrap_or(' ');
                word.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    flush_word(&mut word, &mut in_word, &mut words);
    if !words.is_empty() {
        out.push(Simple { op, words });
    }
    out
}

/// What a probe or container command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Through a shell (`CMD-SHELL`, a string, shell form, or `sh -c <script>`).
    Shell(String),
    /// Exec form: the words, no shell.
    Exec(Vec<String>),
}

impl Cmd {
    /// Unwrap `sh -c "<script>"` exec forms into the script.
    #[must_use]
    pub fn from_exec(words: Vec<String>) -> Cmd {
        let shell = words.first().map(|w| w.rsplit('/').next().unwrap_or(w));
        if matches!(shell, Some("sh" | "bash" | "ash" | "dash" | "zsh"))
            && let Some(c) = words
                .iter()
                .position(|w| w == "-c" || w == "-ec" || w == "-ce")
            && let Some(script) = words.get(c + 1)
        {
            return Cmd::Shell(script.clone());
        }
        Cmd::Exec(words)
    }

    /// The simple commands it runs.
    #[must_use]
    pub fn commands(&self) -> Vec<Simple> {
        match self {
            Cmd::Shell(s) => split_shell(s),
            Cmd::Exec(words) if !words.is_empty() => vec![Simple {
                op: Op::Start,
                words: words.clone(),
            }],
            Cmd::Exec(_) => Vec::new(),
        }
    }

    /// The whole text (exec words joined by spaces).
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Cmd::Shell(s) => s.clone(),
            Cmd::Exec(w) => w.join(" "),
        }
    }
}

/// The test of a compose (or Orchestra manifest `exec:`) healthcheck; `None` when
/// disabled, absent or not a command.
#[must_use]
pub fn compose_probe(hc: &Node) -> Option<(Cmd, &Node)> {
    if hc.get("disable").and_then(Node::as_bool) == Some(true) {
        return None;
    }
    let test = hc.get("test").or_else(|| hc.get("exec"))?;
    if let Some(s) = test.as_str() {
        return Some((Cmd::Shell(s.to_string()), test));
    }
    let parts: Vec<String> = test
        .items()
        .iter()
        .filter_map(Node::as_str)
        .map(str::to_string)
        .collect();
    match parts.first().map(String::as_str) {
        Some("NONE") | None => None,
        Some("CMD-SHELL") => Some((Cmd::Shell(parts[1..].join(" ")), test)),
        Some("CMD") => Some((Cmd::from_exec(parts[1..].to_vec()), test)),
        Some(_) => Some((Cmd::from_exec(parts), test)),
    }
}

/// A compose `command:` / `entrypoint:` value (a string runs through a shell only when it
/// is one itself; compose splits it into words otherwise, which reads the same here).
#[must_use]
pub fn compose_command(node: &Node) -> Option<Cmd> {
    if let Some(s) = node.as_str() {
        let words: Vec<String> = split_shell(s).into_iter().flat_map(|c| c.words).collect();
        return Some(match Cmd::from_exec(words) {
            Cmd::Exec(_) => Cmd::Shell(s.to_string()),
            shell => shell,
        });
    }
    let words: Vec<String> = node
        .items()
        .iter()
        .filter_map(Node::as_str)
        .map(str::to_string)
        .collect();
    (!words.is_empty()).then(|| Cmd::from_exec(words))
}

/// The command of a Dockerfile `HEALTHCHECK` / `CMD` / `ENTRYPOINT`; `None` for
/// `HEALTHCHECK NONE`.
#[must_use]
pub fn dockerfile_cmd(inst: &Instruction) -> Option<Cmd> {
    match &inst.form {
        Form::Exec(words) => Some(Cmd::from_exec(
            words.iter().map(|w| w.text.clone()).collect(),
        )),
        Form::Shell => {
            let body = inst.body().trim();
            if body.is_empty() || body.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(Cmd::Shell(body.to_string()))
            }
        }
    }
}

/// The probe checks a server over the network: `curl`, `wget`, an `http://` URL, or a
/// Python/Node HTTP client.
#[must_use]
pub fn probes_server(cmd: &Cmd) -> bool {
    let text = cmd.text();
    text.contains("http://")
        || text.contains("https://")
        || cmd.commands().iter().any(|c| {
            matches!(
                c.program(),
                Some("curl" | "wget" | "nc" | "grpc_health_probe" | "httpie" | "http")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(s: &str) -> Vec<(Op, String)> {
        split_shell(s)
            .into_iter()
            .map(|c| (c.op, c.words.join(" ")))
            .collect()
    }

    #[test]
    fn splits_pipelines_with_operators() {
        assert_eq!(
            ops("curl -s http://x | grep ok || exit 1; exit 0"),
            vec![
                (Op::Start, "curl -s http://x".into()),
                (Op::Pipe, "grep ok".into()),
                (Op::Or, "exit 1".into()),
                (Op::Seq, "exit 0".into()),
            ]
        );
        assert_eq!(
            ops("curl x || (exit 0)"),
            vec![(Op::Start, "curl x".into()), (Op::Or, "exit 0".into())]
        );
        assert_eq!(
            ops("python -c \"import a; a.b()\" && echo 'a;b'"),
            vec![
                (Op::Start, "python -c import a; a.b()".into()),
                (Op::And, "echo a;b".into()),
            ]
        );
    }

    #[test]
    fn unwraps_sh_c() {
        assert_eq!(
            Cmd::from_exec(vec!["/bin/sh".into(), "-c".into(), "curl x".into()]),
            Cmd::Shell("curl x".into())
        );
    }
}
