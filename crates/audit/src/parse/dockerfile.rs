//! A Dockerfile lexer and parser that keeps exact source locations.
//!
//! It follows BuildKit's grammar where it matters for auditing:
//! - parser directives (`# syntax=`, `# escape=`, `# check=`) only at the very top, ended by
//!   the first blank line, comment or instruction;
//! - line continuations with the escape character (`\`, or `` ` `` after `# escape=``),
//!   skipping comment and blank lines inside a continuation, joining lines without a separator;
//! - heredocs for `RUN`, `COPY` and `ADD` (`<<EOF`, `<<-EOF`, `<<"EOF"`, several per line),
//!   whose bodies follow the instruction line in order;
//! - leading `--flags`, JSON (exec) and shell forms;
//! - stages (`FROM image AS name`) and `ARG`/`ENV` substitution (`$V`, `${V}`, `${V:-x}`, …).
//!
//! Every word keeps its byte range in the original file, across continuations, so a
//! finding can point at `apt-get` on the third line of a `RUN`.
//!
//! The parser never fails: problems become [`ParseIssue`]s next to a best-effort AST.

use std::cell::Cell;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use super::ParseIssue;
use super::image::ImageRef;
use crate::source::SourceFile;

/// A parsed Dockerfile.
#[derive(Clone, Debug, Default)]
pub struct Dockerfile {
    /// Parser directives at the top of the file.
    pub directives: Vec<Directive>,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// All instructions in order.
    pub instructions: Vec<Instruction>,
    /// Build stages in order; the last one is the image that ships.
    pub stages: Vec<Stage>,
    /// Problems found while parsing (reported by the `parse-error` rule).
    pub issues: Vec<ParseIssue>,
}

/// A parser directive such as `# syntax=docker/dockerfile:1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// Lowercase name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// Byte range of the whole directive line.
    pub range: Range<usize>,
}

/// Dockerfile instruction keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variants are the instruction names
pub enum Keyword {
    From,
    Run,
    Cmd,
    Label,
    Maintainer,
    Expose,
    Env,
    Add,
    Copy,
    Entrypoint,
    Volume,
    User,
    Workdir,
    Arg,
    Onbuild,
    Stopsignal,
    Healthcheck,
    Shell,
    /// Not a Dockerfile instruction (reported as a parse error).
    Unknown,
}

impl Keyword {
    /// Recognize a keyword, case-insensitively.
    #[must_use]
    pub fn parse(word: &str) -> Keyword {
        const ALL: [Keyword; 18] = [
            Keyword::From,
            Keyword::Run,
            Keyword::Cmd,
            Keyword::Label,
            Keyword::Maintainer,
            Keyword::Expose,
            Keyword::Env,
            Keyword::Add,
            Keyword::Copy,
            Keyword::Entrypoint,
            Keyword::Volume,
            Keyword::User,
            Keyword::Workdir,
            Keyword::Arg,
            Keyword::Onbuild,
            Keyword::Stopsignal,
            Keyword::Healthcheck,
            Keyword::Shell,
        ];
        // Uppercase the word once (keywords are 3 to 11 ASCII letters), then compare.
        let mut upper = [0u8; 11];
        let Some(buf) = upper.get_mut(..word.len()).filter(|_| word.len() >= 3) else {
            return Keyword::Unknown;
        };
        buf.copy_from_slice(word.as_bytes());
        buf.make_ascii_uppercase();
        ALL.into_iter()
            .find(|k| k.as_str().as_bytes() == &*buf)
            .unwrap_or(Keyword::Unknown)
    }

    /// Uppercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Expose => "EXPOSE",
            Keyword::Env => "ENV",
            Keyword::Add => "ADD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Volume => "VOLUME",
            Keyword::User => "USER",
            Keyword::Workdir => "WORKDIR",
            Keyword::Arg => "ARG",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
            Keyword::Unknown => "UNKNOWN",
        }
    }

    fn takes_flags(self) -> bool {
        matches!(
            self,
            Keyword::From | Keyword::Run | Keyword::Copy | Keyword::Add | Keyword::Healthcheck
        )
    }

    fn allows_heredoc(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }

    fn allows_json(self) -> bool {
        matches!(
            self,
            Keyword::Run
                | Keyword::Cmd
                | Keyword::Entrypoint
                | Keyword::Shell
                | Keyword::Copy
                | Keyword::Add
                | Keyword::Volume
                | Keyword::Healthcheck
        )
    }
}

/// A word with its decoded text and its byte range in the source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The text with quotes and escapes removed.
    pub text: String,
    /// Byte range in the source file.
    pub range: Range<usize>,
}

/// A `--name=value` flag (`--mount=type=cache,target=/root/.cache`, `--from=build`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    /// Name without dashes (`mount`).
    pub name: String,
    /// Value after `=`, unquoted; `None` for a bare `--link`.
    pub value: Option<String>,
    /// Byte range of the whole flag.
    pub range: Range<usize>,
}

/// Exec (JSON array) or shell form of an instruction's command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// `["cmd", "arg"]`: run directly, no shell, no variable expansion at run time.
    Exec(Vec<Word>),
    /// `cmd arg`: run through the shell (`/bin/sh -c`).
    Shell,
}

/// A heredoc attached to `RUN`, `COPY` or `ADD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`).
    pub name: String,
    /// `<<"EOF"` / `<<'EOF'`: the body is not expanded.
    pub quoted: bool,
    /// `<<-EOF`: leading tabs are stripped from body lines and the terminator.
    pub chomp: bool,
    /// Byte range of the `<<EOF` marker on the instruction line.
    pub marker_range: Range<usize>,
    /// The body (tabs stripped for `<<-`), each line ending in `\n`.
    pub body: String,
    /// Byte range of the body lines in the source file.
    pub body_range: Range<usize>,
    /// False when the file ended before the terminator line.
    pub terminated: bool,
    segments: Vec<Segment>,
}

impl Heredoc {
    /// Map a range of `body` to a byte range of the source file.
    #[must_use]
    pub fn src_range(&self, r: Range<usize>) -> Range<usize> {
        let start = seg_map(&self.segments, r.start, false);
        start..seg_map(&self.segments, r.end, true).max(start)
    }
}

/// A `KEY=value` pair of `ENV`, `ARG` or `LABEL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value, unquoted; `None` for `ARG NAME` without default.
    pub value: Option<String>,
    /// Byte range of the key.
    pub key_range: Range<usize>,
    /// Byte range of the value (empty at the key's end when absent).
    pub value_range: Range<usize>,
}

/// One shell command (words between `&&`, `||`, `;`, `|`, newlines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The words in order.
    pub words: Vec<Word>,
}

impl Command {
    /// Index of the program word, skipping `sudo`, `env`, `VAR=x`, `then`, `do`, `!`, ….
    #[must_use]
    pub fn program_index(&self) -> Option<usize> {
        let mut i = 0;
        while let Some(w) = self.words.get(i) {
            let t = w.text.as_str();
            let is_assignment = || {
                t.split_once('=')
                    .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(is_name_char))
            };
            if matches!(
                t,
                "sudo"
                    | "env"
                    | "then"
                    | "do"
                    | "else"
                    | "elif"
                    | "if"
                    | "while"
                    | "until"
                    | "!"
                    | "time"
                    | "exec"
                    | "nohup"
                    | "{"
                    | "command"
            ) || is_assignment()
                || (t.starts_with('-') && i > 0 && self.words[i - 1].text == "sudo")
            {
                i += 1;
                continue;
            }
            return Some(i);
        }
        None
    }

    /// The program name (`apt-get`), basename only (`/usr/bin/pip` → `pip`).
    #[must_use]
    pub fn program(&self) -> Option<&str> {
        let w = &self.words[self.program_index()?];
        Some(w.text.rsplit('/').next().unwrap_or(&w.text))
    }

    /// The words after the program.
    #[must_use]
    pub fn args(&self) -> &[Word] {
        match self.program_index() {
            Some(i) => &self.words[i + 1..],
            None => &[],
        }
    }

    /// True if any argument's text equals `arg`.
    #[must_use]
    pub fn has_arg(&self, arg: &str) -> bool {
        self.args().iter().any(|w| w.text == arg)
    }

    /// Byte range from the first to the last word.
    #[must_use]
    pub fn range(&self) -> Range<usize> {
        match (self.words.first(), self.words.last()) {
            (Some(a), Some(b)) => a.range.start..b.range.end,
            _ => 0..0,
        }
    }
}

/// Maps offsets in an instruction's logical (joined) text back to the source file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Segment {
    text_start: usize,
    src_start: usize,
    len: usize,
}

/// Move the items of a scratch vector into a new, exactly sized one (the scratch keeps
/// its capacity for the next use).
fn exact<T>(scratch: &mut Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(scratch.len());
    out.append(scratch);
    out
}

thread_local! {
    /// Scratch vectors for building views (reused: views are copied out exactly sized).
    static WORD_SCRATCH: Cell<Vec<Word>> = const { Cell::new(Vec::new()) };
    static COMMAND_SCRATCH: Cell<Vec<Command>> = const { Cell::new(Vec::new()) };
}

/// Run `f` with the scratch vector of `key` (empty), then keep its capacity for the next
/// call. A nested call on the same thread simply gets a fresh vector.
fn with_scratch<T, R>(
    key: &'static std::thread::LocalKey<Cell<Vec<T>>>,
    f: impl FnOnce(&mut Vec<T>) -> R,
) -> R {
    let mut buf = key.with(Cell::take);
    buf.clear();
    let r = f(&mut buf);
    buf.clear();
    key.with(|cell| cell.set(buf));
    r
}

/// Lazily computed views of an instruction, shared by every rule that asks.
#[derive(Clone, Debug, Default)]
struct InstCache {
    words: OnceLock<Box<[Word]>>,
    commands: OnceLock<Box<[Command]>>,
    key_values: OnceLock<Box<[KeyValue]>>,
}

/// One instruction, continuation lines joined.
#[derive(Clone, Debug)]
pub struct Instruction {
    /// The instruction keyword.
    pub keyword: Keyword,
    /// Byte range of the keyword.
    pub keyword_range: Range<usize>,
    /// Byte range of the whole instruction, continuation and heredoc lines included.
    pub range: Range<usize>,
    /// The logical text: keyword and arguments with continuations removed.
    pub text: String,
    /// Where the arguments start in `text`.
    pub args_start: usize,
    /// Where the command/body starts in `text`, after flags (and `CMD` for HEALTHCHECK).
    pub body_start: usize,
    /// Leading `--flags`.
    pub flags: Vec<Flag>,
    /// Exec or shell form (for instructions that have a command).
    pub form: Form,
    /// Heredocs, in marker order.
    pub heredocs: Vec<Heredoc>,
    /// Index of the stage this instruction belongs to (`None` before the first `FROM`).
    pub stage: Option<usize>,
    /// Empty for a single-line instruction: one segment, the whole text at the keyword
    /// (most instructions; no allocation for them).
    segments: Vec<Segment>,
    cache: InstCache,
}

impl Instruction {
    /// The keyword as written (`run`, `RUN`).
    #[must_use]
    pub fn keyword_text(&self) -> &str {
        let end = self
            .text
            .find(char::is_whitespace)
            .unwrap_or(self.text.len());
        &self.text[..end]
    }

    /// The arguments as one string (continuations joined).
    #[must_use]
    pub fn args(&self) -> &str {
        &self.text[self.args_start..]
    }

    /// The command/body text after flags (for HEALTHCHECK: after `CMD`).
    #[must_use]
    pub fn body(&self) -> &str {
        &self.text[self.body_start.min(self.text.len())..]
    }

    /// Map a range of `text` to a byte range of the source file.
    #[must_use]
    pub fn src_range(&self, r: Range<usize>) -> Range<usize> {
        let start = self.src_offset(r.start, false);
        let end = self.src_offset(r.end, true).max(start);
        start..end
    }

    /// Byte range of the body in the source file.
    #[must_use]
    pub fn body_range(&self) -> Range<usize> {
        self.src_range(self.body_start.min(self.text.len())..self.text.len())
    }

    fn src_offset(&self, off: usize, is_end: bool) -> usize {
        if self.segments.is_empty() {
            let one = Segment {
                text_start: 0,
                src_start: self.keyword_range.start,
                len: self.text.len(),
            };
            return seg_map(std::slice::from_ref(&one), off, is_end);
        }
        seg_map(&self.segments, off, is_end)
    }

    /// The flag named `name` (without dashes).
    #[must_use]
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Shell words of the body (for shell form), with source ranges. Computed once.
    #[must_use]
    pub fn words(&self) -> &[Word] {
        self.cache.words.get_or_init(|| self.compute_words())
    }

    fn compute_words(&self) -> Box<[Word]> {
        with_scratch(&WORD_SCRATCH, |out| {
            lex_commands(self.body(), |token| {
                if let Token::Word(text, r) = token {
                    out.push(self.word(text, self.body_start + r.start..self.body_start + r.end));
                }
            });
            out.drain(..).collect()
        })
    }

    fn word(&self, text: String, r: Range<usize>) -> Word {
        Word {
            text,
            range: self.src_range(r),
        }
    }

    /// Shell commands of a shell-form `RUN`/`CMD`/`ENTRYPOINT`/`HEALTHCHECK`, plus the
    /// commands of heredoc scripts run by a shell (`RUN <<EOF`, `RUN bash <<EOF`).
    /// Computed once.
    #[must_use]
    pub fn commands(&self) -> &[Command] {
        self.cache.commands.get_or_init(|| self.compute_commands())
    }

    fn compute_commands(&self) -> Box<[Command]> {
        if matches!(self.form, Form::Exec(_)) {
            return Box::default();
        }
        // Words and commands gather in per-thread scratch vectors, and are copied out at
        // their exact sizes (no growth, no shrinking: every file's views stay in memory).
        with_scratch(&COMMAND_SCRATCH, |out| {
            with_scratch(&WORD_SCRATCH, |words| self.commands_into(out, words));
            out.drain(..).collect()
        })
    }

    fn commands_into(&self, out: &mut Vec<Command>, words: &mut Vec<Word>) {
        lex_commands(self.body(), |token| match token {
            Token::Word(text, r) => {
                words.push(self.word(text, self.body_start + r.start..self.body_start + r.end));
            }
            Token::End => {
                if !words.is_empty() {
                    out.push(Command {
                        words: exact(words),
                    });
                }
            }
        });
        if self.keyword == Keyword::Run && !self.heredocs.is_empty() {
            let runs_script = out.iter().any(|c| match c.program() {
                None => true,
                Some(p) => {
                    p.starts_with("<<")
                        || matches!(p, "sh" | "bash" | "ash" | "dash" | "zsh")
                            && c.words.iter().any(|w| w.text.starts_with("<<"))
                }
            });
            // Drop the marker-only command; keep the rest of the line.
            out.retain(|c| c.program().is_some_and(|p| !p.starts_with("<<")));
            if runs_script {
                for h in &self.heredocs {
                    lex_commands(&h.body, |token| match token {
                        Token::Word(text, r) => words.push(Word {
                            range: h.src_range(r),
                            text,
                        }),
                        Token::End => {
                            if !words.is_empty() {
                                out.push(Command {
                                    words: exact(words),
                                });
                            }
                        }
                    });
                }
            }
        }
    }

    /// `ENV`/`ARG`/`LABEL` pairs. Legacy `ENV KEY value with spaces` gives one pair.
    /// Computed once.
    #[must_use]
    pub fn key_values(&self) -> &[KeyValue] {
        self.cache
            .key_values
            .get_or_init(|| self.compute_key_values())
    }

    fn compute_key_values(&self) -> Box<[KeyValue]> {
        let mut words: Vec<(String, Range<usize>)> = Vec::new();
        lex_commands(self.body(), |token| {
            if let Token::Word(text, r) = token {
                words.push((text, self.body_start + r.start..self.body_start + r.end));
            }
        });
        let mut out = Vec::with_capacity(words.len());
        let first_has_eq = words
            .first()
            .is_some_and(|(_, r)| self.text[r.clone()].contains('='));
        if self.keyword != Keyword::Arg && !first_has_eq {
            // `ENV KEY value …`: the rest of the line is the value.
            if let Some((key, kr)) = words.first() {
                let vstart = words.get(1).map_or(kr.end, |(_, r)| r.start);
                let vend = words.last().map_or(kr.end, |(_, r)| r.end);
                let value: Vec<&str> = words[1..].iter().map(|(t, _)| t.as_str()).collect();
                return Box::new([KeyValue {
                    key: key.clone(),
                    value: Some(value.join(" ")),
                    key_range: self.src_range(kr.clone()),
                    value_range: self.src_range(vstart..vend),
                }]);
            }
            return Box::default();
        }
        for (text, r) in words {
            let raw = &self.text[r.clone()];
            match (text.split_once('='), raw.find('=')) {
                (Some((k, v)), Some(eq)) => out.push(KeyValue {
                    key: k.to_string(),
                    value: Some(v.to_string()),
                    key_range: self.src_range(r.start..r.start + eq),
                    value_range: self.src_range(r.start + eq + 1..r.end),
                }),
                _ => out.push(KeyValue {
                    key: text.clone(),
                    value: None,
                    key_range: self.src_range(r.clone()),
                    value_range: self.src_range(r.end..r.end),
                }),
            }
        }
        // Exactly sized: one key-value per word.
        out.into_boxed_slice()
    }
}

/// A build stage: a `FROM` and the instructions up to the next one.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Position among stages (0-based).
    pub index: usize,
    /// `AS name`, lowercased as BuildKit does.
    pub name: Option<String>,
    /// The base image, with global `ARG` defaults substituted when known.
    pub base: ImageRef,
    /// Byte range of the image word in `FROM`.
    pub base_range: Range<usize>,
    /// The earlier stage this one builds on (`FROM builder`), if any.
    pub base_stage: Option<usize>,
    /// `--platform` value, if any.
    pub platform: Option<String>,
    /// Index of the `FROM` instruction.
    pub from: usize,
    /// Indices of this stage's instructions, `FROM` included.
    pub instructions: Vec<usize>,
}

impl Dockerfile {
    /// Parse a Dockerfile. Never fails; see [`Dockerfile::issues`].
    #[must_use]
    pub fn parse(file: &SourceFile) -> Dockerfile {
        Parser::new(file).run()
    }

    /// The last stage: the image that is built by default.
    #[must_use]
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// The instructions of `stage`, `FROM` included.
    pub fn stage_instructions<'a>(
        &'a self,
        stage: &'a Stage,
    ) -> impl Iterator<Item = &'a Instruction> + 'a {
        stage
            .instructions
            .iter()
            .filter_map(|&i| self.instructions.get(i))
    }

    /// The stage named `name` (case-insensitive) or with that index (`COPY --from=0`).
    #[must_use]
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }

    /// The user the stage's processes run as: its last `USER`, else inherited from a
    /// parent stage; `None` means the base image's default (root for most images).
    #[must_use]
    pub fn effective_user<'a>(&'a self, stage: &'a Stage) -> Option<(&'a Instruction, String)> {
        let mut current = Some(stage);
        let mut guard = 0;
        while let Some(s) = current {
            if let Some(inst) = self
                .stage_instructions(s)
                .filter(|i| i.keyword == Keyword::User)
                .last()
            {
                let user = self.expand(inst, inst.body().trim()).0;
                return Some((inst, user));
            }
            guard += 1;
            current = s.base_stage.and_then(|b| self.stages.get(b));
            if guard > self.stages.len() {
                break;
            }
        }
        None
    }

    /// Variables visible at instruction `at`: global `ARG`s for `FROM`, otherwise the
    /// stage's `ARG`s (defaults from global ones) and `ENV`s declared before it.
    #[must_use]
    pub fn vars_at(&self, at: &Instruction) -> HashMap<String, String> {
        let mut global: HashMap<String, String> = HashMap::new();
        for inst in self.instructions.iter().take_while(|i| i.stage.is_none()) {
            if inst.keyword == Keyword::Arg {
                for kv in inst.key_values() {
                    if let Some(v) = &kv.value {
                        let v = expand_with(v, &global).0;
                        global.insert(kv.key.clone(), v);
                    }
                }
            }
        }
        let Some(stage) = at.stage.and_then(|s| self.stages.get(s)) else {
            return global;
        };
        if at.keyword == Keyword::From {
            return global;
        }
        // ENV (not ARG) is inherited from a parent stage.
        let mut vars = match stage.base_stage.and_then(|b| self.stages.get(b)) {
            Some(parent) if parent.index < stage.index => self.stage_env(parent),
            _ => HashMap::new(),
        };
        for inst in self.stage_instructions(stage) {
            if std::ptr::eq(inst, at) {
                break;
            }
            match inst.keyword {
                Keyword::Arg => {
                    for kv in inst.key_values() {
                        let v = match &kv.value {
                            Some(v) => Some(expand_with(v, &vars).0),
                            None => global.get(&kv.key).cloned(),
                        };
                        if let Some(v) = v {
                            vars.insert(kv.key.clone(), v);
                        }
                    }
                }
                Keyword::Env => {
                    for kv in inst.key_values() {
                        let v = expand_with(kv.value.as_deref().unwrap_or(""), &vars).0;
                        vars.insert(kv.key.clone(), v);
                    }
                }
                _ => {}
            }
        }
        vars
    }

    /// The ENV variables a stage ends with (inherited by stages built on it).
    fn stage_env(&self, stage: &Stage) -> HashMap<String, String> {
        let mut env = match stage.base_stage.and_then(|b| self.stages.get(b)) {
            Some(parent) if parent.index < stage.index => self.stage_env(parent),
            _ => HashMap::new(),
        };
        for inst in self.stage_instructions(stage) {
            if inst.keyword == Keyword::Env {
                let vars = self.vars_at(inst);
                for kv in inst.key_values() {
                    env.insert(
                        kv.key.clone(),
                        expand_with(kv.value.as_deref().unwrap_or(""), &vars).0,
                    );
                }
            }
        }
        env
    }

    /// Substitute variables visible at `at` into `text`. The flag is true when every
    /// variable was known.
    #[must_use]
    pub fn expand(&self, at: &Instruction, text: &str) -> (String, bool) {
        if !text.contains('$') {
            return (text.to_string(), true);
        }
        expand_with(text, &self.vars_at(at))
    }
}

/// Map an offset of joined text to the source through its segments. An end offset at a
/// segment boundary maps to the end of the earlier segment (not the next line's start).
fn seg_map(segments: &[Segment], off: usize, is_end: bool) -> usize {
    let mut best = None;
    for s in segments {
        let inside = if is_end {
            off > s.text_start && off <= s.text_start + s.len
        } else {
            off >= s.text_start && off < s.text_start + s.len
        };
        if inside {
            return s.src_start + (off - s.text_start);
        }
        if s.text_start <= off {
            best = Some(s.src_start + s.len);
        }
    }
    best.or_else(|| segments.first().map(|s| s.src_start))
        .unwrap_or(0)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expand `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:+a}`, `${V+a}`, `${V:?m}` using `vars`.
/// Returns the text and whether every variable referenced was defined.
#[must_use]
pub fn expand_with(text: &str, vars: &HashMap<String, String>) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut known = true;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with("\\$") {
            out.push('$');
            i += 2;
            continue;
        }
        let Some(after) = rest.strip_prefix('$') else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        };
        if let Some(inner) = after.strip_prefix('{') {
            let Some(close) = inner.find('}') else {
                out.push_str(rest);
                break;
            };
            let expr = &inner[..close];
            let name_len = expr.find(|c: char| !is_name_char(c)).unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_len);
            let val = vars.get(name);
            let set_nonempty = val.is_some_and(|v| !v.is_empty());
            let sub = |word: &str| expand_with(word, vars);
            let (value, ok) = if let Some(d) = op.strip_prefix(":-") {
                if set_nonempty {
                    (val.cloned().unwrap_or_default(), true)
                } else {
                    sub(d)
                }
            } else if let Some(d) = op.strip_prefix('-') {
                match val {
                    Some(v) => (v.clone(), true),
                    None => sub(d),
                }
            } else if let Some(a) = op.strip_prefix(":+") {
                if set_nonempty {
                    sub(a)
                } else {
                    (String::new(), true)
                }
            } else if let Some(a) = op.strip_prefix('+') {
                if val.is_some() {
                    sub(a)
                } else {
                    (String::new(), true)
                }
            } else {
                // `${V}`, `${V:?msg}`, and pattern forms: use the value.
                (val.cloned().unwrap_or_default(), val.is_some())
            };
            known &= ok;
            out.push_str(&value);
            i += 2 + close + 1; // `${` + expr + `}`
        } else {
            let starts_name = after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            let name_len = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            if name_len == 0 || !starts_name {
                out.push('$');
                i += 1;
                continue;
            }
            match vars.get(&after[..name_len]) {
                Some(v) => out.push_str(v),
                None => known = false,
            }
            i += 1 + name_len;
        }
    }
    (out, known)
}

/// Split shell text into commands of words: `(unquoted text, range in text)`, ranges
/// mapped through `map`. A light lexer: quotes, escapes, `$(…)`, backticks, comments,
/// `&&`, `||`, `|`, `;`, `&`, parentheses and newlines as separators.
fn split_commands(text: &str, map: impl Fn(usize) -> usize) -> Vec<Vec<(String, Range<usize>)>> {
    let mut cmds: Vec<Vec<(String, Range<usize>)>> = Vec::new();
    let mut cur: Vec<(String, Range<usize>)> = Vec::new();
    lex_commands(text, |token| match token {
        Token::Word(w, r) => cur.push((w, map(r.start)..map(r.end))),
        Token::End => {
            if !cur.is_empty() {
                cmds.push(std::mem::take(&mut cur));
            }
        }
    });
    cmds
}

/// What [`lex_commands`] reports, in order.
enum Token {
    /// A word: its unquoted text and its byte range in the lexed text.
    Word(String, Range<usize>),
    /// The end of a command (possibly an empty one), and at the end of the text.
    End,
}

/// The lexer of [`split_commands`], reporting words and command ends as they are read
/// (no intermediate vectors: callers build exactly what they keep).
fn lex_commands(text: &str, mut emit: impl FnMut(Token)) {
    let b = text.as_bytes();
    let mut word = String::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    macro_rules! end_word {
        () => {
            if let Some(s) = start.take() {
                emit(Token::Word(std::mem::take(&mut word), s..i));
            }
        };
    }
    macro_rules! end_cmd {
        () => {
            end_word!();
            emit(Token::End);
        };
    }
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' => {
                end_word!();
                i += 1;
            }
            b'\n' => {
                end_cmd!();
                i += 1;
            }
            b'#' if start.is_none() => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' => {
                if b.get(i + 1) == Some(&b'\n') {
                    // Continuation inside a heredoc script.
                    end_word!();
                    i += 2;
                    continue;
                }
                start.get_or_insert(i);
                i += 1;
                if let Some(ch) = text[i..].chars().next() {
                    word.push(ch);
                    i += ch.len_utf8();
                }
            }
            b'\'' => {
                start.get_or_insert(i);
                i += 1;
                let s = i;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                word.push_str(&text[s..i]);
                i = (i + 1).min(b.len());
            }
            b'"' => {
                start.get_or_insert(i);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\'
                        && matches!(b.get(i + 1), Some(b'"' | b'\\' | b'$' | b'`' | b'\n'))
                    {
                        if b[i + 1] != b'\n' {
                            word.push(b[i + 1] as char);
                        }
                        i += 2;
                        continue;
                    }
                    // A run up to the next quote or backslash, copied at once (both are
                    // ASCII, so the run ends on a character boundary).
                    let run = b[i + 1..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\')
                        .map_or(b.len(), |p| i + 1 + p);
                    word.push_str(&text[i..run]);
                    i = run;
                }
                i = (i + 1).min(b.len());
            }
            b'$' if b.get(i + 1) == Some(&b'(') => {
                start.get_or_insert(i);
                let s = i;
                let mut depth = 0usize;
                while i < b.len() {
                    match b[i] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                word.push_str(&text[s..i]);
            }
            b'`' => {
                start.get_or_insert(i);
                let s = i;
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
                word.push_str(&text[s..i]);
            }
            b'&' | b'|' | b';' | b'(' | b')' => {
                // `2>&1`, `>|`: part of a redirection word.
                if matches!(c, b'&' | b'|') && (word.ends_with('>') || word.ends_with('<')) {
                    word.push(c as char);
                    i += 1;
                    continue;
                }
                end_cmd!();
                i += 1;
                if matches!(c, b'&' | b'|') && b.get(i) == Some(&c) {
                    i += 1;
                }
            }
            _ => {
                start.get_or_insert(i);
                // Copy the run of ordinary bytes up to the next one the lexer handles
                // (all ASCII, so the run ends on a character boundary; `#` inside a word
                // and `$` without `(` are ordinary, and stop the run only to be
                // re-read here).
                let run = b[i + 1..]
                    .iter()
                    .position(|&c| {
                        matches!(
                            c,
                            b' ' | b'\t'
                                | b'\r'
                                | b'\n'
                                | b'\\'
                                | b'\''
                                | b'"'
                                | b'$'
                                | b'`'
                                | b'&'
                                | b'|'
                                | b';'
                                | b'('
                                | b')'
                        )
                    })
                    .map_or(b.len(), |p| i + 1 + p);
                word.push_str(&text[i..run]);
                i = run;
            }
        }
    }
    end_cmd!();
}

/// Parse a JSON array of strings starting at `text[at..]`, the whole rest of `text`.
fn parse_json_array(text: &str, at: usize) -> Option<Vec<(String, Range<usize>)>> {
    let b = text.as_bytes();
    let mut i = at;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i += 1;
    let mut out = Vec::new();
    skip_ws(&mut i);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            skip_ws(&mut i);
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let s = i;
            i += 1;
            let mut v = String::new();
            loop {
                match b.get(i)? {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        let e = *b.get(i + 1)?;
                        i += 2;
                        match e {
                            b'n' => v.push('\n'),
                            b't' => v.push('\t'),
                            b'r' => v.push('\r'),
                            b'u' => {
                                let cp = u32::from_str_radix(text.get(i..i + 4)?, 16).ok()?;
                                v.push(char::from_u32(cp)?);
                                i += 4;
                            }
                            b'"' | b'\\' | b'/' => v.push(e as char),
                            b'b' => v.push('\u{8}'),
                            b'f' => v.push('\u{c}'),
                            _ => return None,
                        }
                    }
                    _ => {
                        let ch = text[i..].chars().next()?;
                        v.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push((v, s..i));
            skip_ws(&mut i);
            match b.get(i)? {
                b',' => i += 1,
                b']' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    skip_ws(&mut i);
    (i == b.len()).then_some(out)
}

struct Line<'a> {
    start: usize,
    text: &'a str,
}

struct Parser<'a> {
    file: &'a SourceFile,
    lines: Vec<Line<'a>>,
    df: Dockerfile,
}

impl<'a> Parser<'a> {
    fn new(file: &'a SourceFile) -> Self {
        let text = file.text.as_str();
        // The lines of `split_inclusive('\n')`, from the line starts the source file has
        // already indexed (no second scan for line breaks).
        let starts = file.lines.starts();
        let mut lines = Vec::with_capacity(starts.len());
        for (k, &start) in starts.iter().enumerate() {
            if start >= text.len() {
                break;
            }
            let end = starts.get(k + 1).copied().unwrap_or(text.len());
            let l = &text[start..end];
            let body = l.strip_suffix('\n').unwrap_or(l);
            let body = body.strip_suffix('\r').unwrap_or(body);
            lines.push(Line { start, text: body });
        }
        // A byte order mark is not part of the first line's text.
        if let Some(first) = lines.first_mut()
            && let Some(rest) = first.text.strip_prefix('\u{feff}')
        {
            first.text = rest;
            first.start += 3;
        }
        // Upper bound on instructions: lines that start with a letter.
        let starts = lines
            .iter()
            .filter(|l| {
                l.text
                    .trim_start()
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_alphabetic)
            })
            .count();
        Self {
            file,
            lines,
            df: Dockerfile {
                escape: '\\',
                instructions: Vec::with_capacity(starts),
                ..Dockerfile::default()
            },
        }
    }

    fn issue(&mut self, range: Range<usize>, message: impl Into<String>) {
        let span = self.file.span(range);
        self.df.issues.push(ParseIssue {
            message: message.into(),
            span,
        });
    }

    fn run(mut self) -> Dockerfile {
        let mut i = self.directives();
        while i < self.lines.len() {
            let t = self.lines[i].text.trim_start();
            if t.is_empty() || t.starts_with('#') {
                i += 1;
                continue;
            }
            i = self.instruction(i);
        }
        // The capacity was an upper bound (continuation and heredoc lines count too):
        // give the excess back, since every parsed file stays in memory for the run.
        self.df.instructions.shrink_to_fit();
        self.finish();
        self.df
    }

    /// Read parser directives at the top; returns the first line after them.
    fn directives(&mut self) -> usize {
        let mut i = 0;
        while let Some(line) = self.lines.get(i) {
            let Some(rest) = line.text.strip_prefix('#') else {
                break;
            };
            let Some((name, value)) = rest.split_once('=') else {
                break;
            };
            let name = name.trim();
            let value = value.trim();
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric())
                || value.is_empty()
            {
                break;
            }
            let lname = name.to_ascii_lowercase();
            if !matches!(lname.as_str(), "syntax" | "escape" | "check") {
                // Unknown directives are comments and end directive processing.
                break;
            }
            let range = line.start..line.start + line.text.len();
            if self.df.directives.iter().any(|d| d.name == lname) {
                self.issue(
                    range.clone(),
                    format!("parser directive `{lname}` repeated"),
                );
            }
            if lname == "escape" {
                match value {
                    "\\" => self.df.escape = '\\',
                    "`" => self.df.escape = '`',
                    _ => self.issue(
                        range.clone(),
                        format!("invalid escape character `{value}` (use \\ or `)"),
                    ),
                }
            }
            self.df.directives.push(Directive {
                name: lname,
                value: value.to_string(),
                range,
            });
            i += 1;
        }
        i
    }

    /// Parse the instruction starting at line `i`; returns the next line to read.
    fn instruction(&mut self, mut i: usize) -> usize {
        let esc = self.df.escape;
        let first = &self.lines[i];
        let lead = first.text.len() - first.text.trim_start().len();
        let start = first.start + lead;
        // Size the joined text and its segments first (the same walk over continuation
        // lines as below), so neither grows while it is built.
        let (mut len, mut count) = (0, 0);
        {
            let (content, mut cont) = strip_continuation(&first.text[lead..], esc);
            len += content.len();
            count += 1;
            let mut j = i + 1;
            while cont && j < self.lines.len() {
                let line = &self.lines[j];
                let t = line.text.trim_start();
                j += 1;
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let (content, c) = strip_continuation(line.text, esc);
                len += content.len();
                count += 1;
                cont = c;
            }
        }
        let mut text = String::with_capacity(len);
        let multi = count > 1;
        let mut segments = if multi {
            Vec::with_capacity(count)
        } else {
            Vec::new()
        };
        let mut end;
        let mut push = |text: &mut String, src_start: usize, s: &str| {
            if multi {
                segments.push(Segment {
                    text_start: text.len(),
                    src_start,
                    len: s.len(),
                });
            }
            text.push_str(s);
        };
        let (content, mut cont) = strip_continuation(&first.text[lead..], esc);
        push(&mut text, start, content);
        end = first.start + first.text.len();
        i += 1;
        while cont && i < self.lines.len() {
            let line = &self.lines[i];
            let t = line.text.trim_start();
            i += 1;
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (content, c) = strip_continuation(line.text, esc);
            push(&mut text, line.start, content);
            end = line.start + line.text.len();
            cont = c;
        }

        let kw_len = text.find(|c: char| c.is_whitespace()).unwrap_or(text.len());
        let keyword = Keyword::parse(&text[..kw_len]);
        let args_start = text[kw_len..]
            .find(|c: char| !c.is_whitespace())
            .map_or(text.len(), |o| kw_len + o);
        let mut inst = Instruction {
            keyword,
            keyword_range: start..start + kw_len,
            range: start..end,
            text,
            args_start,
            body_start: args_start,
            flags: Vec::new(),
            form: Form::Shell,
            heredocs: Vec::new(),
            stage: None,
            segments,
            cache: InstCache::default(),
        };
        if keyword == Keyword::Unknown {
            self.issue(
                inst.keyword_range.clone(),
                format!("unknown instruction `{}`", inst.keyword_text()),
            );
        }
        if keyword.takes_flags() {
            parse_flags(&mut inst);
        }
        if keyword == Keyword::Healthcheck {
            let body = inst.body();
            let upper = body.get(..3).map(str::to_ascii_uppercase);
            if upper.as_deref() == Some("CMD") && body[3..].starts_with(char::is_whitespace) {
                let skip = body[3..]
                    .find(|c: char| !c.is_whitespace())
                    .map_or(body.len(), |o| 3 + o);
                inst.body_start += skip;
            }
        }
        if keyword.allows_json()
            && inst.body().trim_start().starts_with('[')
            && let Some(items) = parse_json_array(&inst.text, inst.body_start)
        {
            let words = items
                .into_iter()
                .map(|(t, r)| Word {
                    range: inst.src_range(r),
                    text: t,
                })
                .collect();
            inst.form = Form::Exec(words);
        }
        if keyword.allows_heredoc() && inst.form == Form::Shell {
            i = self.heredocs(&mut inst, i);
        }
        let needs_args = !matches!(keyword, Keyword::Unknown | Keyword::Healthcheck);
        if needs_args && inst.args().trim().is_empty() {
            self.issue(
                inst.keyword_range.clone(),
                format!("{} requires at least one argument", keyword.as_str()),
            );
        }
        self.df.instructions.push(inst);
        i
    }

    /// Find heredoc markers on the instruction line and read their bodies from line `i`.
    fn heredocs(&mut self, inst: &mut Instruction, mut i: usize) -> usize {
        let body = inst.body();
        if !has_double_lt(body) {
            return i;
        }
        let markers: Vec<(String, bool, bool, Range<usize>)> =
            split_commands(body, |o| inst.body_start + o)
                .into_iter()
                .flatten()
                .filter_map(|(t, r)| {
                    let raw = &inst.text[r.clone()];
                    let digits =
                        raw.len() - raw.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                    let raw_rest = raw[digits..].strip_prefix("<<")?;
                    if raw_rest.starts_with('<') {
                        return None; // here-string
                    }
                    let text_rest = t[digits..].strip_prefix("<<")?;
                    let chomp = text_rest.starts_with('-');
                    let name = text_rest.trim_start_matches('-').to_string();
                    if name.is_empty() || name.contains('<') {
                        return None;
                    }
                    let quoted = raw_rest.contains(['"', '\'']);
                    Some((name, quoted, chomp, inst.src_range(r)))
                })
                .collect();
        for (name, quoted, chomp, marker_range) in markers {
            let body_line = i;
            let mut terminated = false;
            let mut body = String::new();
            let mut segments = Vec::new();
            while let Some(line) = self.lines.get(i) {
                let cmp = if chomp {
                    line.text.trim_start_matches('\t')
                } else {
                    line.text
                };
                i += 1;
                if cmp == name {
                    terminated = true;
                    break;
                }
                segments.push(Segment {
                    text_start: body.len(),
                    src_start: line.start + (line.text.len() - cmp.len()),
                    len: cmp.len() + 1,
                });
                body.push_str(cmp);
                body.push('\n');
            }
            let body_start = self
                .lines
                .get(body_line)
                .map_or(self.file.text.len(), |l| l.start);
            let last_body = if terminated { i - 1 } else { i };
            let body_end = if last_body > body_line {
                let l = &self.lines[last_body - 1];
                l.start + l.text.len()
            } else {
                body_start
            };
            if let Some(l) = i.checked_sub(1).and_then(|k| self.lines.get(k))
                && i > body_line
            {
                inst.range.end = inst.range.end.max(l.start + l.text.len());
            }
            if !terminated {
                self.issue(
                    marker_range.clone(),
                    format!("heredoc `{name}` is never terminated"),
                );
            }
            inst.heredocs.push(Heredoc {
                name,
                quoted,
                chomp,
                marker_range,
                body,
                body_range: body_start..body_end,
                terminated,
                segments,
            });
        }
        i
    }

    /// Group instructions into stages and resolve base images.
    fn finish(&mut self) {
        let mut current: Option<usize> = None;
        let froms = self
            .df
            .instructions
            .iter()
            .filter(|i| i.keyword == Keyword::From)
            .count();
        let mut stages: Vec<Stage> = Vec::with_capacity(froms);
        let mut issues = Vec::new();
        for idx in 0..self.df.instructions.len() {
            let inst = &self.df.instructions[idx];
            if inst.keyword == Keyword::From {
                let words = inst.words();
                let image = words.first();
                let name = match (words.get(1), words.get(2)) {
                    (Some(a), Some(n)) if a.text.eq_ignore_ascii_case("as") => {
                        Some(n.text.to_ascii_lowercase())
                    }
                    _ => None,
                };
                if words.len() > 1 && name.is_none() || words.len() > 3 {
                    issues.push((
                        inst.range.clone(),
                        "FROM takes `image [AS name]`".to_string(),
                    ));
                }
                let raw = image.map(|w| w.text.clone()).unwrap_or_default();
                let base_range = image.map_or(inst.keyword_range.clone(), |w| w.range.clone());
                let base_stage = stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(raw.to_ascii_lowercase().as_str()));
                let platform = inst.flag("platform").and_then(|f| f.value.clone());
                let index = stages.len();
                stages.push(Stage {
                    index,
                    name,
                    base: ImageRef::parse(&raw),
                    base_range,
                    base_stage,
                    platform,
                    from: idx,
                    instructions: vec![idx],
                });
                current = Some(index);
            } else if let Some(s) = current {
                stages[s].instructions.push(idx);
            } else if inst.keyword != Keyword::Arg && inst.keyword != Keyword::Unknown {
                issues.push((
                    inst.keyword_range.clone(),
                    format!("{} before the first FROM", inst.keyword.as_str()),
                ));
            }
            self.df.instructions[idx].stage = current;
        }
        self.df.stages = stages;
        // Substitute global ARG defaults into base images (`FROM python:${PY}`).
        for s in 0..self.df.stages.len() {
            let raw = self.df.stages[s].base.raw.clone();
            if raw.contains('$') {
                let from = &self.df.instructions[self.df.stages[s].from];
                let (expanded, _) = self.df.expand(from, &raw);
                let mut base = ImageRef::parse(&expanded);
                base.raw = expanded;
                self.df.stages[s].base = base;
                let lower = self.df.stages[s].base.raw.to_ascii_lowercase();
                self.df.stages[s].base_stage = self.df.stages[..s]
                    .iter()
                    .position(|p| p.name.as_deref() == Some(lower.as_str()));
            }
        }
        for (r, m) in issues {
            self.issue(r, m);
        }
        if self.df.stages.is_empty() {
            let r = self
                .df
                .instructions
                .first()
                .map_or(0..0, |i| i.keyword_range.clone());
            self.issue(r, "no FROM instruction: this Dockerfile cannot build");
        }
    }
}

/// Does `text` contain `<<`? (`find` of one byte is a `memchr`; most bodies have no `<`.)
fn has_double_lt(text: &str) -> bool {
    let mut from = 0;
    while let Some(i) = text[from..].find('<') {
        let at = from + i;
        if text.as_bytes().get(at + 1) == Some(&b'<') {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Strip a trailing escape character (optionally followed by blanks).
fn strip_continuation(line: &str, esc: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(esc) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

/// Consume leading `--name[=value]` words of the arguments (quotes allowed in values).
fn parse_flags(inst: &mut Instruction) {
    let b = inst.text.as_bytes();
    let mut p = inst.args_start;
    let mut flags = Vec::new();
    while inst.text[p..].starts_with("--") {
        let start = p;
        let mut quote: Option<u8> = None;
        while p < b.len() {
            let c = b[p];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c.is_ascii_whitespace() => break,
                None => {}
            }
            p += 1;
        }
        let raw = &inst.text[start + 2..p];
        let (name, value) = if raw.contains(['"', '\'']) {
            let word = raw.replace(['"', '\''], "");
            match word.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (word, None),
            }
        } else {
            // No quotes to strip: split the text in place.
            match raw.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (raw.to_string(), None),
            }
        };
        flags.push(Flag {
            name,
            value,
            range: inst.src_range(start..p),
        });
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
    }
    inst.flags = flags;
    inst.body_start = p;
}

#[cfg(test)]
mod tests;
