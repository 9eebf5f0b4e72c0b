//! `healthcheck-cannot-fail`: a healthcheck that passes whatever the application does
//! (`curl` without `--fail`, `|| true`, `requests.get` without a status check).

use super::health::{Cmd, Op, Simple, compose_probe, dockerfile_cmd};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::parse::dockerfile::{Dockerfile, Keyword};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::source::Span;
use crate::views::Compose;

/// Flags compose healthchecks and Dockerfile `HEALTHCHECK`s that cannot fail.
pub struct HealthcheckCannotFail;

static META: RuleMeta = RuleMeta {
    id: "healthcheck-cannot-fail",
    title: "Healthcheck passes even when the application fails",
    family: "compose",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Make the probe exit non-zero on failure: `curl -fsS http://localhost:8000/healthz` \
           (`--fail` turns HTTP 4xx/5xx into an error), no `|| true` / `|| exit 0` at the end, \
           `r.raise_for_status()` after `requests.get`.",
};

/// Why a probe cannot fail, and the text to point at.
#[derive(Debug, PartialEq, Eq)]
struct Why {
    needle: String,
    message: String,
}

fn curl_fails(args: &[String]) -> bool {
    // Short options that take a value: letters after one of them are that value.
    const TAKES_VALUE: &str = "AbcCdDeEFHKmoPQrTtuUwxXyYz";
    args.iter().any(|a| {
        if let Some(long) = a.strip_prefix("--") {
            return matches!(long, "fail" | "fail-with-body");
        }
        let Some(short) = a.strip_prefix('-') else {
            return false;
        };
        for c in short.chars() {
            if c == 'f' {
                return true;
            }
            if TAKES_VALUE.contains(c) {
                return false;
            }
        }
        false
    })
}

/// `requests.get(...)` / `httpx.get(...)` in Python code with nothing that looks at the
/// response status.
fn python_unchecked(code: &str) -> Option<&'static str> {
    const CALLS: &[&str] = &[
        "requests.get(",
        "requests.head(",
        "httpx.get(",
        "httpx.head(",
    ];
    const CHECKS: &[&str] = &[
        "raise_for_status",
        "status_code",
        "status ",
        ".status",
        ".ok",
        "assert",
        "exit(",
        "raise ",
    ];
    let call = CALLS.iter().find(|c| code.contains(*c))?;
    if CHECKS.iter().any(|c| code.contains(c)) {
        return None;
    }
    Some(call.trim_end_matches('('))
}

fn analyze(cmd: &Cmd) -> Option<Why> {
    let cmds = cmd.commands();
    if let Cmd::Shell(_) = cmd
        && let Some(last) = cmds.last()
        && matches!(last.op, Op::Or | Op::Seq)
        && cmds.len() > 1
    {
        let w: Vec<&str> = last.words.iter().map(String::as_str).collect();
        if matches!(w.as_slice(), ["true"] | [":"] | ["exit"] | ["exit", "0"]) {
            let sep = if last.op == Op::Or { "||" } else { ";" };
            let tail = w.join(" ");
            return Some(Why {
                needle: tail.clone(),
                message: format!("ends in `{sep} {tail}`, so it always exits 0"),
            });
        }
    }
    for (i, c) in cmds.iter().enumerate() {
        let piped = cmds.get(i + 1).is_some_and(|n: &Simple| n.op == Op::Pipe);
        match c.program() {
            Some("curl") if !piped && !curl_fails(c.args()) => {
                return Some(Why {
                    needle: "curl".into(),
                    message: "runs `curl` without `--fail`: curl exits 0 on HTTP errors \
                              (404, 500), so the check passes while the application fails"
                        .into(),
                });
            }
            Some(p) if p.starts_with("python") => {
                let args = c.args();
                if let Some(at) = args.iter().position(|a| a == "-c")
                    && let Some(code) = args.get(at + 1)
                    && let Some(call) = python_unchecked(code)
                {
                    return Some(Why {
                        needle: call.into(),
                        message: format!(
                            "calls `{call}` without checking the status: it returns normally \
                             on HTTP errors (404, 500), so the check passes while the \
                             application fails"
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    None
}

fn report(cx: &FileCx<'_>, within: Span, subject: &str, why: &Why, out: &mut Sink) {
    let span = cx
        .source()
        .find_in(within.range(), &why.needle)
        .unwrap_or(within);
    out.report(
        cx.loc(span, "cannot fail"),
        format!("{subject} {}", why.message),
    )
    .emit();
}

impl HealthcheckCannotFail {
    fn check_dockerfile(cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        for inst in df
            .instructions
            .iter()
            .filter(|i| i.keyword == Keyword::Healthcheck)
        {
            if let Some(cmd) = dockerfile_cmd(inst)
                && let Some(why) = analyze(&cmd)
            {
                report(cx, cx.span(inst.range.clone()), "HEALTHCHECK", &why, out);
            }
        }
    }
}

impl Rule for HealthcheckCannotFail {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        Self::check_dockerfile(cx, df, out);
    }

    fn check_yaml(&self, cx: &FileCx<'_>, docs: &[Node], out: &mut Sink) {
        if !matches!(
            cx.file.kind,
            FileKind::Compose | FileKind::OrchestraManifest
        ) {
            return;
        }
        for root in docs {
            for svc in Compose::new(root).services {
                if let Some(hc) = svc.node.get("healthcheck")
                    && let Some((cmd, test)) = compose_probe(hc)
                    && let Some(why) = analyze(&cmd)
                {
                    let subject = format!("the healthcheck of service `{}`", svc.name);
                    report(cx, test.span, &subject, &why, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn compose(test: &str) -> String {
        format!("services:\n  api:\n    image: app:1\n    healthcheck:\n      test: {test}\n")
    }

    fn count(test: &str) -> usize {
        run_rule(
            &HealthcheckCannotFail,
            &[("compose.yaml", compose(test).as_str())],
        )
        .len()
    }

    #[test]
    fn flags_probes_that_always_pass() {
        let f = run_rule(
            &HealthcheckCannotFail,
            &[(
                "compose.yaml",
                compose("[\"CMD\", \"curl\", \"http://localhost:8000/health\"]").as_str(),
            )],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("service `api`"));
        assert!(f[0].message.contains("--fail"));
        assert_eq!(f[0].locations[0].span.start.line, 5);
        for bad in [
            "curl -s http://localhost:8000/ || exit 1",
            "[\"CMD-SHELL\", \"curl -sS -o /dev/null http://localhost/health\"]",
            "wget -q -O- http://localhost/health || true",
            "\"curl -f http://localhost/ || exit 0\"",
            "\"curl -f http://localhost/; exit 0\"",
            "[\"CMD\", \"sh\", \"-c\", \"wget -qO- localhost:80 || :\"]",
            "python -c \"import requests; requests.get('http://localhost:8000/health')\"",
        ] {
            assert_eq!(count(bad), 1, "{bad}");
        }
    }

    #[test]
    fn accepts_probes_that_can_fail() {
        for good in [
            "[\"CMD\", \"curl\", \"-f\", \"http://localhost:8000/health\"]",
            "curl -fsS http://localhost/ || exit 1",
            "curl -sSf http://localhost/",
            "curl --fail-with-body http://localhost/",
            "curl -s http://localhost/health | grep -q ok",
            "[ \"$(curl -s -o /dev/null -w '%{http_code}' http://localhost/)\" = 200 ]",
            "wget -q --spider http://localhost/ || exit 1",
            "[\"CMD\", \"pg_isready\", \"-U\", \"postgres\"]",
            "python -c \"import requests; requests.get('http://x').raise_for_status()\"",
            "python -c \"import urllib.request; urllib.request.urlopen('http://x')\"",
            "[\"NONE\"]",
            "curl -o /dev/null -sf http://localhost/",
        ] {
            assert_eq!(count(good), 0, "{good}");
        }
        // `-o` takes a value: the `f` after it is the file name, not `--fail`.
        assert_eq!(count("curl -so f http://localhost/"), 1);
    }

    #[test]
    fn checks_dockerfile_healthchecks() {
        let f = run_rule(
            &HealthcheckCannotFail,
            &[(
                "Dockerfile",
                "FROM nginx:1.27\nHEALTHCHECK --interval=30s CMD curl http://localhost/ || exit 1\n",
            )],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.starts_with("HEALTHCHECK runs `curl`"));
        assert_eq!(f[0].locations[0].span.start.col, 32);
        let ok = run_rule(
            &HealthcheckCannotFail,
            &[(
                "Dockerfile",
                "FROM nginx:1.27\nHEALTHCHECK CMD [\"curl\", \"-f\", \"http://localhost/\"]\nHEALTHCHECK NONE\n",
            )],
        );
        assert!(ok.is_empty(), "{ok:?}");
    }
}
