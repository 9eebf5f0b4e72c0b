//! Inline ignores: `# orchestra: ignore[rule-id, other-id] reason`.
//!
//! A comment suppresses the listed rules on its own line, and on the next line when the
//! comment stands alone on its line. Any comment leader works (`#`, `//`, `<!--`), so the
//! same syntax serves Dockerfiles, YAML, TOML, JSONC and shell.

use crate::source::SourceFile;

const MARKER: &str = "orchestra: ignore[";

/// One ignore comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoreComment {
    /// 1-based line of the comment.
    pub line: u32,
    /// Rule ids listed (`*` or `all` ignores every rule).
    pub rules: Vec<String>,
    /// The text after `]`, if any.
    pub reason: String,
    /// The comment stands alone, so it also covers the next line.
    pub covers_next: bool,
}

/// All ignore comments of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineIgnores {
    /// Comments in line order.
    pub comments: Vec<IgnoreComment>,
}

impl InlineIgnores {
    /// Find ignore comments in `file` (a substring search first: most files have none).
    #[must_use]
    pub fn scan(file: &SourceFile) -> Self {
        let mut comments = Vec::new();
        if !file.text.contains(MARKER) {
            return Self { comments };
        }
        for (i, line) in file.text.lines().enumerate() {
            let Some(at) = line.find(MARKER) else {
                continue;
            };
            let after = &line[at + MARKER.len()..];
            let Some(close) = after.find(']') else {
                continue;
            };
            let rules = after[..close]
                .split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect();
            let before = line[..at].trim();
            let covers_next = ["#", "//", "/*", "<!--", "--", ";"].iter().any(|lead| {
                before
                    .strip_prefix(lead)
                    .is_some_and(|r| r.trim().is_empty())
            });
            comments.push(IgnoreComment {
                line: i as u32 + 1,
                rules,
                reason: after[close + 1..]
                    .trim()
                    .trim_end_matches("-->")
                    .trim_end_matches("*/")
                    .trim()
                    .to_string(),
                covers_next,
            });
        }
        Self { comments }
    }

    /// Is `rule` ignored on 1-based `line`?
    #[must_use]
    pub fn suppresses(&self, rule: &str, line: u32) -> bool {
        self.comments.iter().any(|c| {
            (c.line == line || (c.covers_next && c.line + 1 == line))
                && c.rules.iter().any(|r| r == rule || r == "*" || r == "all")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_line_and_line_above() {
        let f = SourceFile::new(
            "Dockerfile",
            "FROM x:latest # orchestra: ignore[a] pinned by CI\n# orchestra: ignore[b, c] why\nRUN y\nRUN z\n",
        );
        let ig = InlineIgnores::scan(&f);
        assert!(ig.suppresses("a", 1));
        assert!(!ig.suppresses("a", 2));
        assert!(ig.suppresses("c", 3));
        assert!(!ig.suppresses("c", 4));
        assert_eq!(ig.comments[0].reason, "pinned by CI");
    }

    #[test]
    fn trailing_comment_does_not_cover_next_line() {
        let f = SourceFile::new("x", "a: 1 # orchestra: ignore[r]\nb: 2\n");
        let ig = InlineIgnores::scan(&f);
        assert!(!ig.suppresses("r", 2));
    }
}
