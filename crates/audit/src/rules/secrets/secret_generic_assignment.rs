//! `secret-generic-assignment`: a secret-named key (`API_KEY=`, `password:`, `token =`)
//! assigned a literal, high-entropy value.

use std::sync::LazyLock;

use regex::Regex;

use super::{is_generated, scannable, secret_provider_token::find_tokens};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity, redact};
use crate::knowledge::secret_name_matches;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::{Prefilter, entropy, is_placeholder, regex};

/// Finds `secret_name = "random-looking literal"` in any text file.
pub struct GenericAssignment;

static META: RuleMeta = RuleMeta {
    id: "secret-generic-assignment",
    title: "High-entropy secret assigned in plain text",
    family: "secrets",
    severity: Severity::Medium,
    confidence: Confidence::Low,
    help: "If the value is real, rotate it and read it at run time from the environment or \
           a secret store (`printf %s \"$NEW\" | orchestra secrets set API_KEY`, then \
           `secrets: [API_KEY]` on the service; `API_KEY=${API_KEY}`, \
           `${{ secrets.API_KEY }}`, `var.api_key` marked sensitive); if it is a test \
           fixture, mark the line with `# orchestra: ignore[secret-generic-assignment] test value`.",
};

const KEYWORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "access-key",
    "private_key",
    "auth_key",
    "credential",
    "passphrase",
];

static PREFILTER: LazyLock<Prefilter> = LazyLock::new(|| Prefilter::new(KEYWORDS));

/// A key (optionally quoted) followed by `=`, `:`, `:=` or `=>`.
static ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"(?m)(?:^|[^A-Za-z0-9_.-])["']?([A-Za-z_][A-Za-z0-9_.-]{0,80})["']?[ \t]*(?::=|=>|=|:)[ \t]*"#,
    )
});

/// Does a key name in any text file look like it holds a secret? Stricter about what is *not*
/// one than [`crate::knowledge::is_secret_name`] (which sees only Dockerfile ENV/ARG keys): free-form config
/// also names versions, formats, sources and counts of secrets; `PWD` counts here too.
pub(crate) fn is_secret_key(name: &str) -> bool {
    secret_name_matches(
        name,
        &["pwd"],
        &[
            "_env",
            "_var",
            "_key_id",
            "_count",
            "_hash",
            "_version",
            "_format",
            "_prefix",
            "_location",
            "_source",
            "_provider",
            "_field",
        ],
    )
}

/// The literal value after an assignment operator: quoted, or bare up to a separator.
/// Returns its byte range relative to `rest`.
fn value_at(rest: &str) -> Option<std::ops::Range<usize>> {
    let first = rest.chars().next()?;
    if first == '"' || first == '\'' {
        let end = rest[1..].find(first)?;
        let inner = &rest[1..1 + end];
        if inner.contains('\n') {
            return None;
        }
        return Some(1..1 + end);
    }
    let end = rest
        .find(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | '#' | ',' | ';' | '}' | ')' | ']')
        })
        .unwrap_or(rest.len());
    (end > 0).then_some(0..end)
}

/// Is `v` shaped like a random secret rather than a word, a reference or a path?
fn looks_random(v: &str) -> bool {
    let n = v.chars().count();
    if !(10..=200).contains(&n) || v.chars().any(char::is_whitespace) || is_placeholder(v) {
        return false;
    }
    // References, paths, URLs, function calls, env var names.
    if v.contains("://")
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("~/")
        || v.contains('(')
        || v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        || v.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-' || b == b'.')
    {
        return false;
    }
    let dotted_ref = v.contains('.')
        && v.split('.').all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && p.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        });
    // `serde_json::Value` in `pub secrets: serde_json::Value,`: a type, not a value.
    let ident = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && p.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
    };
    let type_path = v.contains("::") && v.split("::").all(ident);
    if dotted_ref || type_path {
        return false;
    }
    let classes = [
        v.bytes().any(|b| b.is_ascii_lowercase()),
        v.bytes().any(|b| b.is_ascii_uppercase()),
        v.bytes().any(|b| b.is_ascii_digit()),
        v.bytes().any(|b| !b.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|c| **c)
    .count();
    let e = entropy(v);
    if n >= 16 {
        e >= 3.5 && classes >= 2
    } else {
        e >= 3.0 && classes >= 3
    }
}

impl Rule for GenericAssignment {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        let kind = cx.file.kind;
        // Generated lockfiles are full of hashes; Dockerfile ENV/ARG have their own rule
        // (dockerfile-secret-in-env); key files, state and .htpasswd are reported whole.
        if !scannable(cx)
            || is_generated(kind)
            || matches!(
                kind,
                FileKind::Dockerfile
                    | FileKind::KeyFile
                    | FileKind::TerraformState
                    | FileKind::Htpasswd
            )
        {
            return;
        }
        let text = &cx.source().text;
        if !PREFILTER.any(text) {
            return;
        }
        let tokens = find_tokens(text);
        for caps in ASSIGN.captures_iter(text) {
            let (Some(all), Some(key)) = (caps.get(0), caps.get(1)) else {
                continue;
            };
            // `${VAR:-default}` is a variable reference, `a::b` a path, `==` a comparison.
            let op = &text[key.end()..all.end()];
            if !is_secret_key(key.as_str())
                || text[..key.start()].ends_with("${")
                || op.contains("::")
            {
                continue;
            }
            let rest = &text[all.end()..];
            if rest.starts_with([':', '=', '-', '>']) {
                continue;
            }
            let Some(r) = value_at(rest) else { continue };
            let range = all.end() + r.start..all.end() + r.end;
            let value = &text[range.clone()];
            if !looks_random(value)
                || tokens
                    .iter()
                    .any(|(_, t)| t.start < range.end && range.start < t.end)
            {
                continue;
            }
            out.report(
                cx.loc_range(range, "secret value"),
                format!(
                    "`{}` is assigned the literal `{}`, which looks like a real secret",
                    key.as_str(),
                    redact(value)
                ),
            )
            .redact()
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn finds_high_entropy_assignments() {
        let f = run_rule(
            &GenericAssignment,
            &[
                ("config/app.yaml", "db:\n  password: \"Tz8#qLw2!xVb9rKe\"\n"),
                ("settings.py", "SECRET_KEY = 'h3K9vQ2mZx7LpW4tR8nB5cY1'\n"),
                (
                    "infra/main.tf",
                    "resource \"x\" \"y\" {\n  api_key = \"9fK2xQ7mLp3ZvW8r\"\n}\n",
                ),
                (
                    ".npmrc.json",
                    "{\"auth_token\": \"Yq7Lm2ZpX9vK4rT1wB6n\"}\n",
                ),
            ],
        );
        assert_eq!(f.len(), 4, "{f:?}");
        let p = f
            .iter()
            .find(|x| x.locations[0].path == "config/app.yaml")
            .unwrap();
        assert_eq!(
            (
                p.locations[0].span.start.line,
                p.locations[0].span.start.col
            ),
            (2, 14)
        );
        assert!(p.message.contains("`password`"));
        assert!(!p.message.contains("qLw2"));
    }

    #[test]
    fn ignores_words_references_and_placeholders() {
        let text = "\
password: ${DB_PASSWORD}
token = var.github_token
API_KEY=your_api_key_here
secret_name: prod-db-password
password_file: /run/secrets/db
token: ${{ secrets.DEPLOY_TOKEN }}
PASSWORD=mysecretpassword
client_secret = os.environ['CLIENT_SECRET']
api_key: SOME_ENV_VAR_NAME
token: abc
command: redis-server --requirepass ${REDIS_PASSWORD:-Xq7vL2mZ9pK4}
Box::new(rules::secrets::secret_provider_token::ProviderToken),
if password == \"Tz8#qLw2!xVb9rKe\" {
    pub secrets: serde_json::Value,
    api_token: std::collections::BTreeMap,
";
        let f = run_rule(&GenericAssignment, &[("config/values.yaml", text)]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn skips_lockfiles_and_provider_tokens() {
        let ghp = format!("ghp_{}", "q8Zr2LmW0pXv7TnB4kYdHs3Jc6Fg1Ue9Ai5O");
        let f = run_rule(
            &GenericAssignment,
            &[
                (
                    "poetry.lock",
                    "[metadata]\ntoken = \"Yq7Lm2ZpX9vK4rT1wB6n\"\n",
                ),
                ("ci.env.sh", &format!("GH_TOKEN={ghp}\n")),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
