//! `secret-generic-assignment`: a secret-named key (`API_KEY=`, `password:`, `token =`)
//! assigned a literal, high-entropy value.

use std::sync::LazyLock;

use regex::Regex;

use super::{is_generated, scannable, secret_provider_token::find_tokens};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity, redact};
use crate::knowledge::secret_name_matches;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::{
    Prefilter, entropy, is_path_like, is_patterned, is_placeholder, is_test_path, regex,
};

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

/// Help for a finding in a test file.
const TEST_HELP: &str = "In a test file this is usually a made-up value: if so, build it at run \
                         time or mark the line with `# orchestra: ignore[secret-generic-assignment] \
                         test value`; if it is a real credential, rotate it and load it from the \
                         environment in the test.";

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
            c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '#' | ',' | ';' | '}' | ')' | ']')
        })
        .unwrap_or(rest.len());
    (end > 0).then_some(0..end)
}

/// Is `v` shaped like a random secret rather than a word, a reference or a path?
fn looks_random(v: &str) -> bool {
    let n = v.chars().count();
    if !(10..=200).contains(&n)
        || v.chars().any(char::is_whitespace)
        || is_placeholder(v)
        || is_path_like(v)
        || is_patterned(v)
    {
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

/// Source code, where a literal is always quoted: a bare value after `=` or `:` is a
/// name (`settings.db_password`), a call (`get_token()`) or a type (`apiKey: string`).
fn is_code(path: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "py", "pyi", "js", "mjs", "cjs", "jsx", "ts", "tsx", "mts", "cts", "go", "rs", "java",
        "kt", "kts", "scala", "swift", "rb", "php", "cs", "dart", "c", "h", "cc", "cpp", "hpp",
        "ex", "exs", "lua", "groovy", "gradle",
    ];
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Does the line before byte `at` leave a `"` or `'` string open (an odd number of
/// unescaped quotes of one kind)?
fn inside_string(text: &str, at: usize) -> bool {
    let line = &text[text[..at].rfind('\n').map_or(0, |i| i + 1)..at];
    let mut open: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        match (open, c) {
            (_, _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => open = None,
            (None, '"' | '\'' | '`') => open = Some(c),
            _ => {}
        }
    }
    open.is_some()
}

/// A type rather than a value: a name applied to type arguments (`Optional[str]`,
/// `Record<string, string>`, `Dict[str, Any]`).
fn is_type_expression(v: &str) -> bool {
    let Some(open) = v.find(['[', '<']) else {
        return false;
    };
    let head = &v[..open];
    !head.is_empty()
        && head
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && head.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
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
        let path = cx.file.path();
        let code = is_code(path);
        let test_file = is_test_path(path);
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
            let quoted = r.start > 0;
            let range = all.end() + r.start..all.end() + r.end;
            let value = &text[range.clone()];
            // `secret_key: Optional[str] = None`, `password: SecretStr = Field(...)`,
            // `apiKey: string`: an annotation names a type, not a value.
            let after = text[range.end + usize::from(quoted)..].trim_start_matches([' ', '\t']);
            let annotation = op.trim() == ":"
                && ((after.starts_with('=') && !after.starts_with("=="))
                    || (!quoted && is_type_expression(value)));
            // In code a bare value is a name, unless the assignment is itself inside a
            // string literal (`"host=db password=Xq7…"`, a DSN).
            if annotation || (code && !quoted && !inside_string(text, key.start())) {
                continue;
            }
            if !looks_random(value)
                || tokens
                    .iter()
                    .any(|(_, t)| t.start < range.end && range.start < t.end)
            {
                continue;
            }
            let message = format!(
                "`{}` is assigned the literal `{}`, which looks like a real secret",
                key.as_str(),
                redact(value)
            );
            let finding = out.report(cx.loc_range(range, "secret value"), message);
            // Test files hold made-up credentials more often than real ones: shown, at
            // the bottom of the report, and never failing a build.
            let finding = if test_file {
                finding
                    .severity(Severity::Info)
                    .confidence(Confidence::Low)
                    .help(TEST_HELP)
            } else {
                finding
            };
            finding.secret(value).redact().emit();
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

    #[test]
    fn type_annotations_are_not_values() {
        let python = "\
class Settings(BaseSettings):
    secret_key: Optional[str] = None
    api_key: str
    password: SecretStr = Field(...)
    client_secret: Optional[SecretStr] = Field(default=None)
    auth_token: Dict[str, Any] = {}
    secret_token: \"Optional[str]\" = None
    refresh_token: 'Union[str, None]' = None
";
        let typescript = "\
interface Config {
  apiKey: string;
  authToken?: string | undefined;
  clientSecret: Readonly<Record<string, string>>;
  accessKey: AccessKeyType;
}
";
        let f = run_rule(
            &GenericAssignment,
            &[
                ("app/settings.py", python),
                ("web/src/config.ts", typescript),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn interpolations_are_not_values() {
        let text = "\
password: \"${{ secrets.DB_PASSWORD }}\"
api_token: ${{ secrets.API_TOKEN }}
secret: ${SECRET_VALUE_FROM_ENV}
token: \"$(cat /run/secrets/token)\"
password: \"{{ .Values.db.password }}\"
auth_token: \"{{.Values.authToken}}\"
db_password: '%(db_password)s'
client_secret = os.environ[\"CLIENT_SECRET\"]
apiKey: process.env.API_KEY_VALUE
";
        let f = run_rule(&GenericAssignment, &[("deploy/values.yaml", text)]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn code_references_are_not_values() {
        let python = "\
password = settings.db_password
token = get_token()
key=self.key
api_key=self.api_key
db_password = DbPassword9Factory
secret_token = SECRETS_TABLE[index2Key]
";
        let typescript = "\
const apiKey = process.env.API_KEY;
const accessKey: string = config.accessKey;
const secretToken = useSecretToken(props);
const authToken = tokenStore2Xq.current;
";
        // Quoted as code in prose: the backtick ends the value.
        let prose = "Not secrets: `password = settings.db_password`, `token = get_token()`.\n";
        let f = run_rule(
            &GenericAssignment,
            &[
                ("app/db.py", python),
                ("web/src/api.ts", typescript),
                ("docs/secrets.md", prose),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
        // Quoted literals in code are still values, so are assignments inside a string
        // literal, and bare values in config.
        let f = run_rule(
            &GenericAssignment,
            &[
                ("app/db.py", "password = \"Tz8qLw2xVb9rKeMn\"\n"),
                (
                    "app/dsn.py",
                    "DSN = \"host=db.internal password=Tz8qLw2xVb9rKeMn user=app\"\n",
                ),
                ("config/app.yaml", "password: Tz8qLw2xVb9rKeMn\n"),
                ("config/app.ini", "password = Tz8qLw2xVb9rKeMn\n"),
            ],
        );
        assert_eq!(f.len(), 4, "{f:?}");
    }

    #[test]
    fn test_files_are_reported_as_info() {
        let line = "password = \"Tz8qLw2xVb9rKeMn\"\n";
        let paths = [
            "tests/test_api.py",
            "test_login.py",
            "pkg/auth/token_test.go",
            "web/src/login.spec.ts",
            "app/fixtures/users.yaml",
        ];
        let files: Vec<(&str, &str)> = paths.iter().map(|p| (*p, line)).collect();
        let f = run_rule(&GenericAssignment, &files);
        assert_eq!(f.len(), paths.len(), "{f:?}");
        for x in &f {
            assert_eq!(x.severity, Severity::Info, "{}", x.locations[0].path);
            assert_eq!(x.confidence, Confidence::Low);
            assert!(x.help.contains("test"), "{}", x.help);
        }
        let f = run_rule(&GenericAssignment, &[("app/login.py", line)]);
        assert_eq!(f[0].severity, Severity::Medium);
    }

    #[test]
    fn patterned_and_path_values_are_not_secrets() {
        let text = "\
api_key: \"abcdef123456abcdef123456\"
secret: \"0123456789abcdefABCDEF\"
credentials: \"./keys/service-account.json\"
";
        let f = run_rule(&GenericAssignment, &[("config/app.yaml", text)]);
        assert!(f.is_empty(), "{f:?}");
    }
}
