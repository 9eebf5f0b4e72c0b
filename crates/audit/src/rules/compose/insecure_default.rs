//! `insecure-default`: authentication switched off, or left at a product's documented
//! default credential, in a compose service or an env file.

use super::health::compose_command;
use super::interpolate;
use crate::collect::FileKind;
use crate::finding::{Confidence, Location, Severity};
use crate::knowledge::{INSECURE_FLAGS, Insecurity, insecure_setting};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::is_test_path;
use crate::views::{Compose, ComposeService};

/// Flags `ARANGO_NO_AUTH=1`, `--api.insecure=true`, `RABBITMQ_DEFAULT_PASS=guest`, ….
pub struct InsecureDefault;

static META: RuleMeta = RuleMeta {
    id: "insecure-default",
    title: "Authentication disabled or left at a default credential",
    family: "compose",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Turn authentication on and set a generated password from a secret (`env_file:` \
           kept out of git, compose `secrets:`, or `${VAR:?required}` so an unset value \
           fails): default credentials are the first thing a scanner tries.",
};

/// One insecure thing found: the message and its severity.
fn describe(key: &str, kind: Insecurity, product: &str) -> (String, Severity) {
    match kind {
        Insecurity::AuthDisabled => (
            format!("`{key}` turns {product} authentication off"),
            Severity::High,
        ),
        Insecurity::EmptyPassword => (
            format!("`{key}` is empty: {product} runs without a password"),
            Severity::High,
        ),
        Insecurity::KnownDefault => (
            format!("`{key}` is {product}'s well-known default credential"),
            Severity::Medium,
        ),
    }
}

/// Example env files are templates to copy, not settings.
fn is_template(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    ["example", "sample", "template", ".dist", ".tpl"]
        .iter()
        .any(|w| name.contains(w))
}

fn emit(
    cx: &FileCx<'_>,
    out: &mut Sink,
    at: Location,
    message: String,
    mut severity: Severity,
    published: bool,
) {
    if severity == Severity::Medium && !published {
        severity = Severity::Low;
    }
    if is_test_path(cx.file.path()) {
        severity = Severity::Info;
    }
    out.report(at, message).severity(severity).emit();
}

/// `(key, value, node)` of a service's environment; values through compose
/// interpolation (`${PW:-guest}` → `guest`), variables without a default left out.
fn environment<'a>(svc: &ComposeService<'a>) -> Vec<(String, String, &'a Node)> {
    let Some(env) = svc.node.get("environment") else {
        return Vec::new();
    };
    if env.is_map() {
        return env
            .entries()
            .iter()
            .filter_map(|e| {
                let v = interpolate(e.value.as_str()?)?;
                Some((e.key_str().to_string(), v, &e.value))
            })
            .collect();
    }
    env.items()
        .iter()
        .filter_map(|item| {
            let (k, v) = item.as_str()?.split_once('=')?;
            Some((k.to_string(), interpolate(v)?, item))
        })
        .collect()
}

impl InsecureDefault {
    fn service(cx: &FileCx<'_>, svc: &ComposeService<'_>, out: &mut Sink) {
        let published = svc.node.get("ports").is_some_and(|p| !p.items().is_empty())
            || svc.node.get_str("network_mode") == Some("host");
        for (key, value, node) in environment(svc) {
            if let Some(s) = insecure_setting(&key, &value) {
                let (message, severity) = describe(s.key, s.kind, s.product);
                emit(
                    cx,
                    out,
                    cx.loc(node.span, "insecure"),
                    format!("service `{}`: {message}", svc.name),
                    severity,
                    published,
                );
            }
        }
        let Some(node) = svc.node.get("command") else {
            return;
        };
        let Some(cmd) = compose_command(node) else {
            return;
        };
        for c in cmd.commands() {
            for (i, w) in c.words.iter().enumerate() {
                let (flag, value) = w.split_once('=').unwrap_or((w.as_str(), "true"));
                if let Some((f, product)) = INSECURE_FLAGS.iter().find(|(f, _)| *f == flag)
                    && value.eq_ignore_ascii_case("true")
                {
                    let span = cx
                        .source()
                        .find_in(node.span.range(), f)
                        .unwrap_or(node.span);
                    emit(
                        cx,
                        out,
                        cx.loc(span, "insecure"),
                        format!(
                            "service `{}`: `{f}` serves the {product} API and dashboard \
                             without authentication",
                            svc.name
                        ),
                        Severity::High,
                        published,
                    );
                }
                if w == "--requirepass"
                    && let Some(pw) = c.words.get(i + 1)
                    && interpolate(pw).is_some_and(|p| p.is_empty())
                {
                    let span = cx
                        .source()
                        .find_in(node.span.range(), "--requirepass")
                        .unwrap_or(node.span);
                    emit(
                        cx,
                        out,
                        cx.loc(span, "empty password"),
                        format!(
                            "service `{}`: Redis is started with an empty `--requirepass`",
                            svc.name
                        ),
                        Severity::High,
                        published,
                    );
                }
            }
        }
    }
}

impl Rule for InsecureDefault {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_compose_service(
        &self,
        cx: &FileCx<'_>,
        _compose: &Compose<'_>,
        svc: &ComposeService<'_>,
        out: &mut Sink,
    ) {
        Self::service(cx, svc, out);
    }

    fn check_text(&self, cx: &FileCx<'_>, out: &mut Sink) {
        if cx.file.kind != FileKind::Env || is_template(cx.file.path()) {
            return;
        }
        let src = cx.source();
        for n in 1..=src.line_count() {
            let line = src.line(n as u32);
            let t = line.trim_start();
            let t = t.strip_prefix("export ").unwrap_or(t);
            let Some((key, raw)) = t.split_once('=') else {
                continue;
            };
            if key.starts_with('#') || key.contains(char::is_whitespace) {
                continue;
            }
            let raw = raw.trim();
            let value = if let Some(q) = raw
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .or_else(|| raw.strip_prefix('\'').and_then(|r| r.split_once('\'')))
            {
                q.0
            } else {
                raw.split(" #").next().unwrap_or("").trim()
            };
            if let Some(s) = insecure_setting(key, value) {
                let (message, severity) = describe(s.key, s.kind, s.product);
                emit(
                    cx,
                    out,
                    cx.loc(src.line_span(n as u32), "insecure"),
                    message,
                    severity,
                    true,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn guest() -> String {
        ["gu", "est"].concat()
    }

    #[test]
    fn flags_disabled_auth_and_default_credentials() {
        let compose = format!(
            "services:\n  proxy:\n    image: traefik:v3.1\n    command: [\"--api.insecure=true\", \"--providers.docker\"]\n    ports: [\"80:80\", \"8080:8080\"]\n  mq:\n    image: rabbitmq:3\n    ports: [\"5672:5672\"]\n    environment:\n      RABBITMQ_DEFAULT_PASS: {}\n  arango:\n    image: arangodb:3.12\n    environment:\n      - ARANGO_NO_AUTH=1\n  cache:\n    image: redis:7\n    command: redis-server --requirepass \"${{REDIS_PASSWORD:-}}\"\n",
            guest()
        );
        let f = run_rule(&InsecureDefault, &[("compose.yaml", compose.as_str())]);
        let got: Vec<(u32, Severity)> = f
            .iter()
            .map(|x| (x.locations[0].span.start.line, x.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                (4, Severity::High),
                (10, Severity::Medium),
                (14, Severity::High),
                (17, Severity::High),
            ],
            "{f:?}"
        );
        assert!(f[0].message.contains("Traefik"));
        assert!(f[1].message.contains("RabbitMQ"));
        assert!(!f[1].message.contains(&guest()));
    }

    #[test]
    fn unpublished_defaults_are_low_and_interpolation_defaults_count() {
        let compose = format!(
            "services:\n  mq:\n    image: rabbitmq:3\n    environment:\n      RABBITMQ_DEFAULT_PASS: ${{MQ_PASS:-{}}}\n",
            guest()
        );
        let f = run_rule(&InsecureDefault, &[("compose.yaml", compose.as_str())]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Low);
    }

    #[test]
    fn reads_env_files_but_not_templates() {
        let redis = "REDIS_PASSWORD";
        let env = format!(
            "# local\nexport RABBITMQ_DEFAULT_PASS=\"{}\"\n{redis}=\nOTHER=1\n",
            guest()
        );
        let f = run_rule(&InsecureDefault, &[(".env", env.as_str())]);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].locations[0].span.start.line, 2);
        assert_eq!(f[1].severity, Severity::High);
        let f = run_rule(&InsecureDefault, &[(".env.example", env.as_str())]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn accepts_real_values_and_passthroughs() {
        let compose = "services:\n  proxy:\n    image: traefik:v3.1\n    command: [\"--api.insecure=false\", \"--api.dashboard=true\"]\n  mq:\n    image: rabbitmq:3\n    ports: [\"5672:5672\"]\n    environment:\n      RABBITMQ_DEFAULT_PASS: ${MQ_PASS}\n      REDIS_PASSWORD:\n      ARANGO_NO_AUTH: \"0\"\n  db:\n    image: postgres:16\n    environment:\n      - POSTGRES_PASSWORD_FILE=/run/secrets/pg\n      - POSTGRES_PASSWORD\n  cache:\n    image: redis:7\n    command: redis-server --requirepass \"${REDIS_PASSWORD}\"\n";
        let f = run_rule(&InsecureDefault, &[("compose.yaml", compose)]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn test_fixtures_are_info() {
        let compose = "services:\n  arango:\n    image: arangodb:3.12\n    environment:\n      ARANGO_NO_AUTH: 1\n";
        let f = run_rule(&InsecureDefault, &[("tests/compose.yaml", compose)]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Info);
    }
}
