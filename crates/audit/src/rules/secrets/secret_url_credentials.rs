//! `secret-url-credentials`: a password inside a URL (`scheme://user:pass@host`).

use std::sync::LazyLock;

use regex::Regex;

use super::scannable;
use crate::finding::{Confidence, Severity, redact};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::{is_placeholder, regex};

/// Finds `scheme://user:password@host` with a real-looking password.
pub struct UrlCredentials;

static META: RuleMeta = RuleMeta {
    id: "secret-url-credentials",
    title: "Credentials embedded in a URL",
    family: "secrets",
    severity: Severity::High,
    confidence: Confidence::Medium,
    help: "Change the password on the server it belongs to, then build the URL at run time \
           from an environment variable or secret (`postgres://app:${DB_PASSWORD}@db/app`) \
           instead of committing it.",
};

static URL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"\b([A-Za-z][A-Za-z0-9+.-]{1,20})://([^\s:/@'"<>{}\[\]()`]{1,64}):([^\s@/'"<>{}\[\]()`]{1,128})@([A-Za-z0-9._-]+)"#,
    )
});

/// Passwords that are local-development defaults, not secrets, on local hosts.
const DEV_DEFAULTS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "pwd",
    "secret",
    "postgres",
    "root",
    "admin",
    "guest",
    "user",
    "test",
    "dev",
    "mysql",
    "redis",
    "rabbitmq",
    "minio",
    "minioadmin",
    "x",
    "123456",
    "local",
    "docker",
];

/// A necessary condition for a [`URL`] match, checked without the regex: some `://` is
/// followed by an `@` before any character that neither the user nor the password may
/// contain (blanks, `/`, quotes, brackets). Linear: every `://` holds a `/`, which ends
/// the scan from the previous one.
fn may_hold_credentials(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("://") {
        let start = from + i + 3;
        for &c in &b[start..] {
            match c {
                b'@' => return true,
                b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'\'' | b'"' | b'<' | b'>' | b'{' | b'}'
                | b'[' | b']' | b'(' | b')' | b'`' => break,
                _ => {}
            }
        }
        from = start;
    }
    false
}

fn is_local_host(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    h == "localhost"
        || h.starts_with("127.")
        || h == "0.0.0.0"
        || h == "host.docker.internal"
        || h.ends_with(".local")
        || h.ends_with(".localhost")
        || !h.contains('.') // a compose service name (`db`, `postgres`)
}

impl Rule for UrlCredentials {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        if !scannable(cx) {
            return;
        }
        let text = &cx.source().text;
        if !may_hold_credentials(text) {
            return;
        }
        for caps in URL.captures_iter(text) {
            let (Some(scheme), Some(user), Some(pass), Some(host)) =
                (caps.get(1), caps.get(2), caps.get(3), caps.get(4))
            else {
                continue;
            };
            let p = pass.as_str();
            let local = is_local_host(host.as_str());
            if is_placeholder(p)
                || p.contains('$')
                || p == user.as_str()
                || is_placeholder(host.as_str())
                || (local && DEV_DEFAULTS.contains(&p.to_ascii_lowercase().as_str()))
            {
                continue;
            }
            let severity = if local {
                Severity::Medium
            } else {
                Severity::High
            };
            out.report(
                cx.loc_range(pass.range(), "password"),
                format!(
                    "{} URL for host `{}` embeds the password `{}` of user `{}`",
                    scheme.as_str(),
                    host.as_str(),
                    redact(p),
                    user.as_str()
                ),
            )
            .severity(severity)
            .secret(p)
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
    fn finds_passwords_in_urls() {
        let f = run_rule(
            &UrlCredentials,
            &[
                (
                    "config/settings.py",
                    "DATABASE_URL = \"postgres://app:Vq9r2LzW81xk@prod-db.acme.internal:5432/app\"\n",
                ),
                (
                    "docker-compose.yml",
                    "services:\n  api:\n    environment:\n      REDIS_URL: redis://default:Kx81Lq2pZv@redis:6379\n",
                ),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].locations[0].path, "config/settings.py");
        assert_eq!(f[0].severity, Severity::High);
        assert!(!f[0].message.contains("Vq9r2LzW81xk"));
        assert!(f[0].message.contains("prod-db.acme.internal"));
        assert_eq!(f[1].severity, Severity::Medium);
    }

    #[test]
    fn ignores_variables_placeholders_and_local_defaults() {
        let text = "\
a: postgres://app:${DB_PASSWORD}@db/app
b: postgres://postgres:postgres@localhost:5432/app
c: https://user:password@example.com/x
d: mysql://root:<password>@db.acme.io/x
e: https://github.com/org/repo
f: amqp://guest:guest@rabbitmq:5672
g: postgres://{{ user }}:{{ pass }}@db/x
";
        let f = run_rule(&UrlCredentials, &[("values.yaml", text)]);
        assert!(f.is_empty(), "{f:?}");
    }
}
