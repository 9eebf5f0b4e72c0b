//! Helpers shared by the raw-text rule families (secrets, workflows, drift, identifiers,
//! dependencies): static regexes, placeholder detection, entropy, identifier boundaries
//! and small version-number utilities.

use std::cmp::Ordering;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

/// A cheap keyword scan run before any regex: which of a fixed set of keywords (ASCII
/// case-insensitive) occur in a text.
///
/// The text is ASCII-lowercased into a per-thread buffer and searched for the lowercased
/// keywords with a case-sensitive automaton: the same matches as an ASCII
/// case-insensitive search, but it can use aho-corasick's SIMD (Teddy) prefilter, which
/// a case-insensitive automaton cannot. Nearly every file has no keyword at all, so
/// [`Prefilter::hits`] answers "none" from that fast scan before any per-keyword work.
pub struct Prefilter {
    /// Leftmost-first over the lowercased keywords: the fast yes/no scan.
    any: Option<AnyScan>,
    /// Standard semantics over the same keywords, for overlapping per-keyword hits.
    all: Option<AhoCorasick>,
    len: usize,
}

/// The yes/no scan: aho-corasick's packed (Teddy) searcher directly where the CPU has
/// it (the automaton picks a slower rare-byte prefilter for a few keywords), else the
/// automaton.
enum AnyScan {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl AnyScan {
    fn is_match(&self, haystack: &[u8]) -> bool {
        match self {
            AnyScan::Packed(s) => s.find(haystack).is_some(),
            AnyScan::Automaton(ac) => ac.is_match(haystack),
        }
    }
}

thread_local! {
    /// Scratch buffer for lowercased text (reused: no allocation per file).
    static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` on the ASCII-lowercased bytes of `text`.
fn with_lowercase<R>(text: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    LOWER.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            buf.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
            f(&buf)
        }
        // Re-entered on this thread (never in practice): use a fresh buffer.
        Err(_) => f(&text.to_ascii_lowercase().into_bytes()),
    })
}

impl Prefilter {
    /// Build a prefilter for `keywords`.
    #[must_use]
    pub fn new(keywords: &[&str]) -> Self {
        let lower: Vec<String> = keywords.iter().map(|k| k.to_ascii_lowercase()).collect();
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(&lower)
            .build();
        let any = match packed {
            Some(p) if !lower.is_empty() => Some(AnyScan::Packed(p)),
            _ => AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(&lower)
                .ok()
                .map(AnyScan::Automaton),
        };
        let all = AhoCorasick::builder().build(&lower).ok();
        let (any, all) = match (any, all) {
            (Some(a), Some(b)) => (Some(a), Some(b)),
            _ => (None, None),
        };
        Self {
            any,
            all,
            len: keywords.len(),
        }
    }

    /// For each keyword, whether it occurs in `text` (all `true` if the automaton could
    /// not be built, so rules fall back to their regexes).
    #[must_use]
    pub fn hits(&self, text: &str) -> Vec<bool> {
        let (Some(any), Some(all)) = (&self.any, &self.all) else {
            return vec![true; self.len];
        };
        with_lowercase(text, |lower| {
            let mut seen = vec![false; self.len];
            if !any.is_match(lower) {
                return seen;
            }
            let mut left = self.len;
            for m in all.find_overlapping_iter(lower) {
                let i = m.pattern().as_usize();
                if !seen[i] {
                    seen[i] = true;
                    left -= 1;
                    if left == 0 {
                        break;
                    }
                }
            }
            seen
        })
    }

    /// Whether any keyword occurs in `text`.
    #[must_use]
    pub fn any(&self, text: &str) -> bool {
        match &self.any {
            Some(ac) => with_lowercase(text, |lower| ac.is_match(lower)),
            None => true,
        }
    }
}

/// Compile a pattern written in the source (never user input).
///
/// `\b` is made ASCII-only (`(?-u:\b)`): Unicode word boundaries would force the regex
/// crate off its fast DFA engines on any non-ASCII file, and every boundary these rules
/// need is between ASCII characters.
///
/// # Panics
/// On an invalid pattern: a programming error caught by the unit tests of every rule.
#[must_use]
pub fn regex(pattern: &str) -> Regex {
    let ascii = pattern.replace(r"\b", r"(?-u:\b)");
    #[allow(clippy::expect_used)]
    Regex::new(&ascii).expect("static regex")
}

/// Which of a fixed set of literal needles (case-sensitive) occur in a text, in one SIMD
/// scan instead of one substring search per needle. Sound, not exact: a needle found
/// also reports every needle that could start inside it (the scan reports matches that
/// do not overlap), so a needle that occurs is always reported.
pub struct NeedleSet {
    searcher: Option<aho_corasick::packed::Searcher>,
    needles: Vec<&'static str>,
    /// For each needle, the needles to report when it is found (itself included).
    implied: Vec<Vec<usize>>,
}

impl NeedleSet {
    /// A set of `needles` (none empty).
    #[must_use]
    pub fn new(needles: &[&'static str]) -> Self {
        let searcher = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(needles)
            .build()
            .filter(|_| !needles.is_empty() && needles.iter().all(|n| !n.is_empty()));
        // `n` may start inside `m` when, at some offset of `m`, the rest of `m` and the
        // start of `n` agree.
        let implied = needles
            .iter()
            .map(|m| {
                (0..needles.len())
                    .filter(|&k| {
                        let n = needles[k].as_bytes();
                        let m = m.as_bytes();
                        (0..m.len()).any(|o| {
                            let len = (m.len() - o).min(n.len());
                            m[o..o + len] == n[..len]
                        })
                    })
                    .collect()
            })
            .collect();
        Self {
            searcher,
            needles: needles.to_vec(),
            implied,
        }
    }

    /// For each needle, whether it may occur in `text` (`false`: it does not).
    #[must_use]
    pub fn hits(&self, text: &str) -> Vec<bool> {
        let Some(searcher) = &self.searcher else {
            return self.needles.iter().map(|n| text.contains(n)).collect();
        };
        let mut seen = vec![false; self.needles.len()];
        for m in searcher.find_iter(text) {
            for &k in &self.implied[m.pattern().as_usize()] {
                seen[k] = true;
            }
        }
        seen
    }
}

/// A source pattern compiled on first use, and only tried on texts that contain one of
/// its `needles`: literal text (case-sensitive, like the pattern) that every match holds.
/// Most patterns never match most files, and compiling them all costs more than a scan.
pub struct GatedRegex {
    pattern: String,
    needles: &'static [&'static str],
    re: std::sync::OnceLock<Regex>,
}

impl GatedRegex {
    /// `pattern` (see [`regex`]) and literals every match of it contains.
    #[must_use]
    pub fn new(pattern: impl Into<String>, needles: &'static [&'static str]) -> Self {
        Self {
            pattern: pattern.into(),
            needles,
            re: std::sync::OnceLock::new(),
        }
    }

    /// Could the pattern match in `text`? (False means it cannot.)
    #[must_use]
    pub fn may_match(&self, text: &str) -> bool {
        self.needles.iter().any(|n| text.contains(n))
    }

    /// The compiled pattern.
    #[must_use]
    pub fn regex(&self) -> &Regex {
        self.re.get_or_init(|| regex(&self.pattern))
    }
}

/// Values that are obviously not real secrets or ids: templates and variable references,
/// examples, masked or empty values, and values made only of filler words.
///
/// The one detector for every rule (it merges two that disagreed; the table
/// `PLACEHOLDERS` in the tests records what each accepted and every deliberate change):
///
/// - templates and references: `${VAR}`, `$VAR`, `{{ x }}`, `$(cmd)`, `%(x)s`, `#{x}`,
///   `<your-key>`, `[REDACTED]`, `{value}`, `process.env…`, `os.environ…`, `env(…)`,
///   `secrets.…`, `var.…`, `local.…`;
/// - example words anywhere in the value: `changeme`, `changeit`, `replace`, `example`,
///   `placeholder`, `dummy`, `sample`, `fake`, `redacted`, `insert`, `todo`, `fixme`,
///   `your-`/`your_`, `notasecret`, `notreal`, `xxx`, `...`, `…`, `***`;
/// - one character repeated (`********`, `0000`), and `true`, `false`, `yes`, `no`, `0`,
///   `1`, `required`, `optional`;
/// - a value made only of the filler words `secret`, `password`, `pass`, `token`, `key`,
///   `test`, `my`, `none`, `null`… (`test-password`, `mysecretpassword`, `token`), but
///   not a real-looking value that merely contains one (`supersecret`, `password123`,
///   `acme-test-1234`).
#[must_use]
pub fn is_placeholder(value: &str) -> bool {
    let v = value
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '`')
        .trim();
    if v.is_empty() {
        return true;
    }
    // Templates and variable references: ${VAR}, $VAR, {{ x }}, $(cmd), %(x)s, <your-key>.
    if v.contains("${")
        || v.starts_with('$')
        || v.contains("{{")
        || v.contains("$(")
        || v.contains("%(")
        || v.contains("#{")
        || (v.starts_with('<') && v.ends_with('>'))
        || (v.starts_with('[') && v.ends_with(']'))
        || (v.starts_with('{') && v.ends_with('}'))
        || v.starts_with("process.env")
        || v.starts_with("os.environ")
        || v.starts_with("env(")
        || v.starts_with("secrets.")
        || v.starts_with("var.")
        || v.starts_with("local.")
    {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "replace",
        "xxx",
        "your_",
        "your-",
        "yourkey",
        "example",
        "dummy",
        "placeholder",
        "sample",
        "redacted",
        "insert",
        "fixme",
        "todo",
        "fake",
        "notreal",
        "not-a-real",
        "not_a_real",
        "notasecret",
        "not-a-secret",
        "<",
        "...",
        "\u{2026}",
        "***",
    ];
    if WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // A single repeated character (`0000000000`, `aaaaaaaa`, `*`).
    let mut chars = v.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return true;
    }
    matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "0" | "1" | "required" | "optional"
    ) || only_filler_words(&lower)
}

/// Is `lower` (lowercase) made only of filler words, joined directly or by `-`, `_`,
/// `.` or spaces (`test-password`, `mysecretpassword`, `none`)?
fn only_filler_words(lower: &str) -> bool {
    const FILLER: &[&str] = &[
        "secrets", "secret", "password", "passwd", "pass", "pwd", "token", "key", "testing",
        "test", "my", "your", "none", "null", "nil", "string",
    ];
    // Can `part` be cut into filler words? (`ok[i]`: its first `i` bytes can.)
    let segmentable = |part: &str| {
        let b = part.as_bytes();
        let mut ok = vec![false; b.len() + 1];
        ok[0] = true;
        for i in 0..b.len() {
            if !ok[i] {
                continue;
            }
            for w in FILLER {
                if b[i..].starts_with(w.as_bytes()) {
                    ok[i + w.len()] = true;
                }
            }
        }
        ok[b.len()]
    };
    let mut parts = lower
        .split(['-', '_', '.', ' '])
        .filter(|p| !p.is_empty())
        .peekable();
    parts.peek().is_some() && parts.all(segmentable)
}

/// Is `value` a file path or file name rather than a secret: rooted (`/run/secrets/db`,
/// `./certs/tls.pem`, `../x`, `~/.aws/credentials`) with path-like segments, or a file
/// name with a key/config extension (`key.json`, `server.pem`)? Base64 secrets may hold
/// `/` too: a segment of 16+ characters mixing upper case, lower case and digits, or any
/// `+` or `=`, is not a path.
#[must_use]
pub fn is_path_like(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'~'))
    {
        return false;
    }
    let random_segment = |seg: &str| {
        seg.len() >= 16
            && seg.bytes().any(|b| b.is_ascii_uppercase())
            && seg.bytes().any(|b| b.is_ascii_lowercase())
            && seg.bytes().any(|b| b.is_ascii_digit())
    };
    if v.split('/').any(random_segment) {
        return false;
    }
    const EXTENSIONS: &[&str] = &[
        "json", "pem", "key", "crt", "cer", "der", "p12", "pfx", "jks", "keystore", "pub", "gpg",
        "asc", "txt", "env", "yaml", "yml", "toml", "ini", "cfg", "conf",
    ];
    let name = v.rsplit('/').next().unwrap_or(v);
    let file_name = name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    });
    let rooted = ["/", "./", "../", "~/"].iter().any(|p| v.starts_with(p)) && v.len() > 1;
    rooted || file_name
}

/// A value that only looks random: one short unit repeated (`abcabcabc…`,
/// `1234567890abcdef1234567890abcdef`), mostly runs of consecutive characters
/// (`0123456789`, `abcdefgh`), or too few distinct characters for its length. Real
/// tokens are random, and none of these shapes occurs by chance at token lengths.
#[must_use]
pub fn is_patterned(value: &str) -> bool {
    let b = value.as_bytes();
    let n = b.len();
    if n < 8 {
        return false;
    }
    // A unit of at most half the length, repeated (the last copy may be cut short).
    if (1..=n / 2).any(|p| (p..n).all(|i| b[i] == b[i - p])) {
        return true;
    }
    // Runs of at least 4 characters each one more (or one less) than the last:
    // `0123`, `abcd`, `9876`. Mostly such runs → a keyboard pattern, not a key.
    let mut in_runs = 0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        let step = |a: u8, c: u8| {
            a.is_ascii_alphanumeric() && c.is_ascii_alphanumeric() && a.abs_diff(c) == 1
        };
        if j < n && step(b[i], b[j]) {
            let up = b[j] > b[i];
            while j < n && step(b[j - 1], b[j]) && (b[j] > b[j - 1]) == up {
                j += 1;
            }
        }
        if j - i >= 4 {
            in_runs += j - i;
        }
        i = j;
    }
    if in_runs * 2 >= n {
        return true;
    }
    // Few distinct characters: random base62 of 16+ characters has entropy near 4 bits.
    let limit = if n >= 20 { 3.0 } else { 2.5 };
    entropy(value) < limit
}

/// Shannon entropy in bits per character.
#[must_use]
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Characters that continue an identifier: an id match must not touch one of them.
#[must_use]
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Byte ranges of `needle` in `text` standing alone as an identifier: the characters
/// around each match are not letters, digits or `_` (`-`, `.`, `/`, quotes separate).
#[must_use]
pub fn find_identifier(text: &str, needle: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    if needle.is_empty() {
        return out;
    }
    let first_is_id = needle.chars().next().is_some_and(is_id_char);
    let last_is_id = needle.chars().next_back().is_some_and(is_id_char);
    let mut from = 0;
    while let Some(i) = text[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = !first_is_id || !text[..start].chars().next_back().is_some_and(is_id_char);
        let after_ok = !last_is_id || !text[end..].chars().next().is_some_and(is_id_char);
        if before_ok && after_ok {
            out.push(start..end);
            from = end;
        } else {
            from = start + needle.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// Test code and fixtures: a file under `tests/`, `test/`, `__tests__/`, `spec/`,
/// `fixtures/`, `testdata/`, or named like a test (`test_*.py`, `*_test.py`, `conftest.py`,
/// `*_test.go`, `*.test.ts`, `*.spec.js`, `*_spec.rb`, `*Test.java`).
#[must_use]
pub fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('/').collect();
    let name = parts.pop().unwrap_or("");
    const DIRS: &[&str] = &[
        "test",
        "tests",
        "__tests__",
        "spec",
        "specs",
        "fixtures",
        "__fixtures__",
        "testdata",
        "test-data",
        "test_data",
    ];
    if parts.iter().any(|d| DIRS.contains(d)) {
        return true;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    // `AuthTest.java`: the case of the original name matters here.
    let original = path.rsplit('/').next().unwrap_or(path);
    let java_test = matches!(ext, "java" | "kt")
        && original
            .rsplit_once('.')
            .is_some_and(|(stem, _)| stem.ends_with("Test") || stem.ends_with("Tests"));
    stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_spec")
        || stem.ends_with(".test")
        || stem.ends_with(".spec")
        || stem == "conftest"
        || java_test
}

/// Files that hold prose rather than configuration (`*.md`, `*.rst`, `docs/`): rules
/// looking for pinned versions or ids skip them to avoid counting examples.
#[must_use]
pub fn is_prose(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".md", ".markdown", ".rst", ".adoc", ".txt", ".html"]
        .iter()
        .any(|e| lower.ends_with(e))
        && !lower
            .rsplit('/')
            .next()
            .unwrap_or("")
            .starts_with("requirements")
        && !lower
            .rsplit('/')
            .next()
            .unwrap_or("")
            .starts_with("constraints")
}

/// The leading numeric components of a version string (`v3.11.2-slim` → `[3, 11, 2]`).
#[must_use]
pub fn numeric_prefix(version: &str) -> Vec<u64> {
    let v = version.trim().trim_start_matches(['v', 'V', '=']);
    let mut out = Vec::new();
    for part in v.split('.') {
        let n = part.bytes().take_while(u8::is_ascii_digit).count();
        let digits = &part[..n];
        if digits.is_empty() {
            break;
        }
        match digits.parse() {
            Ok(n) => out.push(n),
            Err(_) => break,
        }
        if digits.len() != part.len() {
            break;
        }
    }
    out
}

/// Compare two dotted numeric versions (missing components count as 0).
#[must_use]
pub fn cmp_numeric(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

/// PEP 503 normalized Python package name (`Foo_Bar.baz` → `foo-bar-baz`).
#[must_use]
pub fn normalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case of the two placeholder detectors merged into [`is_placeholder`]:
    /// `(value, knowledge::is_placeholder before, scan::is_placeholder before, now,
    /// why now differs from "either accepted it")`. The merge accepts what either did,
    /// except that `knowledge` also accepted any value *containing* `secret`,
    /// `password`, `test`, `none` or `null`: now a value must consist of filler words.
    const PLACEHOLDERS: &[(&str, bool, bool, bool, &str)] = &[
        ("", true, true, true, ""),
        ("  ", true, true, true, ""),
        ("changeme", true, true, true, ""),
        ("CHANGE_ME", true, true, true, ""),
        ("changeit", true, false, true, ""),
        ("replace_me", true, true, true, ""),
        ("please-replace-this", true, false, true, ""),
        ("xxx", true, true, true, ""),
        ("xxxxxxxx", true, true, true, ""),
        ("<your-key>", true, true, true, ""),
        ("<paste here>", true, true, true, ""),
        ("[REDACTED]", true, true, true, ""),
        ("{value}", false, true, true, ""),
        ("your_api_key_here", true, true, true, ""),
        ("yourkey", true, true, true, ""),
        ("${API_KEY}", true, true, true, ""),
        ("$API_KEY", true, true, true, ""),
        ("prefix-${X}", true, true, true, ""),
        ("{{ secrets.TOKEN }}", true, true, true, ""),
        ("{{ .Values.x }}", true, true, true, ""),
        ("$(cat /run/secret)", true, true, true, ""),
        ("%(password)s", true, true, true, ""),
        ("#{token}", false, true, true, ""),
        ("process.env.API_KEY", false, true, true, ""),
        ("os.environ['X']", false, true, true, ""),
        ("env(DB_PASSWORD)", true, true, true, ""),
        ("secrets.TOKEN", true, true, true, ""),
        ("var.api_key", false, true, true, ""),
        ("local.token", false, true, true, ""),
        ("example-token", true, true, true, ""),
        ("dummy", true, true, true, ""),
        ("sample-key", true, true, true, ""),
        ("insert-key-here", false, true, true, ""),
        ("fake-token", true, true, true, ""),
        ("notreal", false, true, true, ""),
        ("not-a-real-key", false, true, true, ""),
        ("notasecret", true, false, true, ""),
        ("not-a-secret", true, false, true, ""),
        ("abc...", true, true, true, ""),
        ("abc\u{2026}", false, true, true, ""),
        ("***", true, true, true, ""),
        ("*", true, false, true, ""),
        ("aa", true, false, true, ""),
        ("aaaa", true, true, true, ""),
        ("00000000", true, true, true, ""),
        ("0", true, false, true, ""),
        ("1", true, false, true, ""),
        ("yes", true, false, true, ""),
        ("no", true, false, true, ""),
        ("true", true, true, true, ""),
        ("FALSE", true, true, true, ""),
        ("none", true, true, true, ""),
        ("nil", false, true, true, ""),
        ("secret", true, true, true, ""),
        ("password", true, true, true, ""),
        ("passwd", false, true, true, ""),
        ("token", false, true, true, ""),
        ("test", true, true, true, ""),
        ("string", false, true, true, ""),
        ("required", false, true, true, ""),
        ("optional", false, true, true, ""),
        ("'changeme'", true, true, true, ""),
        ("`changeme`", true, true, true, ""),
        (" \"changeme\" ", true, true, true, ""),
        ("AKIAIOSFODNN7EXAMPLE", true, true, true, ""),
        ("AKIAXXXXXXXXXXXXXXXX", true, true, true, ""),
        // Words only `knowledge` found inside a value.
        (
            "supersecret",
            true,
            false,
            false,
            "a real-looking word that contains `secret` is a value",
        ),
        ("mysecretpassword", true, false, true, ""),
        ("test-password", true, false, true, ""),
        (
            "testpass123",
            true,
            false,
            false,
            "digits make a (weak) real password",
        ),
        (
            "password123",
            true,
            false,
            false,
            "digits make a (weak) real password",
        ),
        (
            "mytest-Zq8x9",
            true,
            false,
            false,
            "`test` inside a random value",
        ),
        (
            "acme-test-1234",
            true,
            false,
            false,
            "an id with `test` in it is a real id",
        ),
        (
            "prod-db-password",
            true,
            false,
            false,
            "not only filler words",
        ),
        (
            "nonempty-Zq8x",
            true,
            false,
            false,
            "`none` inside another word",
        ),
        // Real-looking values neither accepted.
        ("hunter2-Zq8", false, false, false, ""),
        ("acme-prod", false, false, false, ""),
        ("sk-live-9f8a7b6c5d4e3f2a1b0c", false, false, false, ""),
        ("q8Zr2LmW0pXv7TnB4kYd", false, false, false, ""),
        ("Tz8#qLw2!xVb9rKe", false, false, false, ""),
        (
            "sk-1234567890abcdef1234567890abcdef",
            false,
            false,
            false,
            "",
        ),
        // New with the merge: only filler words.
        ("my_token", false, false, true, "only filler words"),
        ("testtoken", false, false, true, "only filler words"),
    ];

    #[test]
    fn placeholders_keep_what_both_detectors_accepted() {
        for (v, knowledge, scan, now, change) in PLACEHOLDERS {
            assert_eq!(is_placeholder(v), *now, "{v:?}");
            if change.is_empty() {
                assert_eq!(*now, *knowledge || *scan, "{v:?}: undocumented change");
            } else {
                assert_ne!(
                    *now,
                    *knowledge || *scan,
                    "{v:?}: documented, but unchanged"
                );
            }
        }
    }

    #[test]
    fn paths_are_not_secrets() {
        for v in [
            "/secrets/key.json",
            "/run/secrets/db_password",
            "./certs/server.pem",
            "../keys/deploy.key",
            "~/.aws/credentials",
            "key.json",
            "\"service-account.JSON\"",
            "tls.pem",
        ] {
            assert!(is_path_like(v), "{v}");
        }
        for v in [
            "/Xq7vL2mZ9pK4RtB8nW3q",
            "ab+cd/ef==",
            "s3cr3t-Zq8x",
            "/",
            "json",
            ".pem",
            "key json",
        ] {
            assert!(!is_path_like(v), "{v}");
        }
    }

    #[test]
    fn test_files() {
        for p in [
            "tests/test_api.py",
            "app/tests/conftest.py",
            "test_settings.py",
            "pkg/auth/token_test.go",
            "web/src/api.spec.ts",
            "web/src/api.test.js",
            "spec/models/user_spec.rb",
            "crates/x/tests/fixtures/app.env",
            "src/test/java/AuthTest.java",
        ] {
            assert!(is_test_path(p), "{p}");
        }
        for p in [
            "app/settings.py",
            "contest.py",
            "latest/config.yaml",
            "attestation.go",
        ] {
            assert!(!is_test_path(p), "{p}");
        }
    }

    #[test]
    fn patterned_values_only_look_random() {
        for v in [
            "1234567890abcdef1234567890abcdef",
            "abcdef123456abcdef123456",
            "XXXXXXXXXXXXXXXX",
            "0123456789abcdefghij",
            "9876543210zyxwvu",
            "ababababababababab",
            "aaaabbbbaaaabbbbcccc",
        ] {
            assert!(is_patterned(v), "{v}");
        }
        for v in [
            "q8Zr2LmW0pXv7TnB4kYdHs3Jc6Fg1Ue9Ai5O",
            "Q3ZT7N2KXW4RJ8BM",
            "wJalrXUtnFEMIK7MDENGbPxRfiCY9q2LmZ0pXv7T",
            "9f8a7b6c5d4e3f2a1b0c",
            "short",
        ] {
            assert!(!is_patterned(v), "{v}");
        }
    }

    #[test]
    fn entropy_orders_randomness() {
        assert!(entropy("aaaaaaaa") < 0.1);
        assert!(entropy("q8Zr2LmW0pXv7TnB4kYd") > 4.0);
    }

    #[test]
    fn identifiers_need_boundaries() {
        let t = "old-proj old-proj-2 xold-proj old-proj_x gcr.io/old-proj/app";
        let found: Vec<_> = find_identifier(t, "old-proj")
            .into_iter()
            .map(|r| r.start)
            .collect();
        assert_eq!(found, vec![0, 9, 48]);
    }

    #[test]
    fn versions() {
        assert_eq!(numeric_prefix("3.11-slim"), vec![3, 11]);
        assert_eq!(numeric_prefix("v4"), vec![4]);
        assert_eq!(numeric_prefix("3.10.4"), vec![3, 10, 4]);
        assert!(numeric_prefix("lts/*").is_empty());
        assert_eq!(cmp_numeric(&[3, 10], &[3, 9, 9]), Ordering::Greater);
        assert_eq!(normalize_pypi_name("Foo_Bar.baz"), "foo-bar-baz");
    }
}
