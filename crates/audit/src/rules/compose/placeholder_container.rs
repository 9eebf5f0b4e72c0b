//! `placeholder-container`: the container's command only keeps it alive (`sleep
//! infinity`, `tail -f /dev/null`): nothing runs, and a healthcheck that expects a
//! server can never pass.

use super::built_dockerfile;
use super::health::{Cmd, Simple, compose_command, compose_probe, dockerfile_cmd, probes_server};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::parse::dockerfile::{Dockerfile, Keyword};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::dockerfile::final_instruction;
use crate::views::Compose;

/// Flags `sleep infinity`-style commands; high when a server healthcheck expects more.
pub struct PlaceholderContainer;

static META: RuleMeta = RuleMeta {
    id: "placeholder-container",
    title: "Container only sleeps (placeholder command)",
    family: "compose",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "Run the real process (`uvicorn app:app --host 0.0.0.0 --port 8000`), or drop the \
           server healthcheck if the container is a placeholder on purpose (a toolbox or a \
           devcontainer).",
};

fn is_keepalive(c: &Simple) -> bool {
    let args: Vec<&str> = c.args().iter().map(String::as_str).collect();
    match c.program() {
        Some("sleep") => match args.as_slice() {
            [d] => {
                let d = d.to_ascii_lowercase();
                if matches!(d.as_str(), "infinity" | "inf") {
                    return true;
                }
                let (num, unit) =
                    d.split_at(d.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(d.len()));
                let Ok(n) = num.parse::<u64>() else {
                    return false;
                };
                let secs = match unit {
                    "" | "s" => n,
                    "m" => n * 60,
                    "h" => n * 3600,
                    "d" => n * 86_400,
                    _ => return false,
                };
                secs >= 3600
            }
            _ => false,
        },
        Some("tail") => {
            args.last() == Some(&"/dev/null") && args.iter().any(|a| matches!(*a, "-f" | "-F"))
        }
        _ => false,
    }
}

/// The command only keeps the container alive: a keep-alive, maybe after `echo`s or in a
/// `while true; do sleep 1; done` loop, and nothing else.
fn placeholder(cmd: &Cmd) -> Option<String> {
    let cmds = cmd.commands();
    let text = cmd.text();
    let compact: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let looping = ["while true; do sleep", "while :; do sleep"]
        .iter()
        .any(|p| compact.contains(p));
    let mut found = false;
    for c in &cmds {
        let prog = c.program().unwrap_or("");
        if is_keepalive(c) || (looping && matches!(prog, "while" | "true" | ":" | "sleep" | "done"))
        {
            found = true;
        } else if !matches!(prog, "echo" | "printf" | "set" | "true" | ":" | "") {
            return None;
        }
    }
    found.then_some(compact)
}

fn report(
    cx: &FileCx<'_>,
    out: &mut Sink,
    at: crate::Location,
    subject: &str,
    cmd: &str,
    server_probe: Option<crate::Location>,
) {
    let b = match server_probe {
        Some(probe) => out
            .report(
                at,
                format!(
                    "{subject} only runs `{cmd}`, but its healthcheck expects a server: it can \
                     never be healthy"
                ),
            )
            .related(probe)
            .severity(Severity::High),
        None => {
            if cx.file.path().starts_with(".devcontainer/")
                || cx.file.path().contains("/.devcontainer/")
            {
                return; // devcontainers keep a container alive for the editor on purpose
            }
            out.report(
                at,
                format!("{subject} only runs `{cmd}`: nothing runs in it"),
            )
        }
    };
    b.emit();
}

impl PlaceholderContainer {
    fn dockerfile(cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        if final_instruction(df, Keyword::Entrypoint).is_some() {
            return; // CMD is the entrypoint's arguments
        }
        let Some(inst) = final_instruction(df, Keyword::Cmd) else {
            return;
        };
        let Some(text) = dockerfile_cmd(inst).as_ref().and_then(placeholder) else {
            return;
        };
        let probe = final_instruction(df, Keyword::Healthcheck)
            .filter(|h| dockerfile_cmd(h).is_some_and(|c| probes_server(&c)))
            .map(|h| cx.loc_range(h.range.clone(), "expects a server"));
        report(
            cx,
            out,
            cx.loc_range(inst.range.clone(), "placeholder"),
            "the image",
            &text,
            probe,
        );
    }
}

impl Rule for PlaceholderContainer {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_dockerfile(&self, cx: &FileCx<'_>, df: &Dockerfile, out: &mut Sink) {
        Self::dockerfile(cx, df, out);
    }

    fn check_yaml(&self, cx: &FileCx<'_>, docs: &[Node], out: &mut Sink) {
        if cx.file.kind != FileKind::Compose {
            return;
        }
        for root in docs {
            for svc in Compose::new(root).services {
                let Some(node) = svc
                    .node
                    .get("command")
                    .or_else(|| svc.node.get("entrypoint"))
                else {
                    continue;
                };
                let Some(text) = compose_command(node).as_ref().and_then(placeholder) else {
                    continue;
                };
                let probe = match svc.node.get("healthcheck") {
                    Some(hc) => compose_probe(hc)
                        .filter(|(c, _)| probes_server(c))
                        .map(|(_, test)| cx.loc(test.span, "expects a server")),
                    None => {
                        built_dockerfile(cx.repo, cx.file.dir(), &svc).and_then(|(path, df)| {
                            let h = final_instruction(df, Keyword::Healthcheck)?;
                            if !dockerfile_cmd(h).is_some_and(|c| probes_server(&c)) {
                                return None;
                            }
                            let file = cx.repo.file(path)?;
                            Some(crate::Location::new(
                                &file.source,
                                file.source.span(h.range.clone()),
                                "the image's HEALTHCHECK expects a server",
                            ))
                        })
                    }
                };
                report(
                    cx,
                    out,
                    cx.loc(node.span, "placeholder"),
                    &format!("service `{}`", svc.name),
                    &text,
                    probe,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn high_when_a_server_healthcheck_waits() {
        let f = run_rule(
            &PlaceholderContainer,
            &[(
                "compose.yaml",
                "services:\n  api:\n    image: api:1\n    command: sleep infinity\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8000/health\"]\n  tools:\n    image: tools:1\n    command: [\"tail\", \"-f\", \"/dev/null\"]\n",
            )],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].severity, Severity::High);
        assert!(f[0].message.contains("never be healthy"));
        assert_eq!(f[0].locations.len(), 2);
        assert_eq!(f[1].severity, Severity::Low);
        assert!(f[1].message.contains("`tail -f /dev/null`"));
    }

    #[test]
    fn reads_the_built_images_healthcheck_and_dockerfile_cmd() {
        let df = "FROM python:3.12\nHEALTHCHECK CMD curl -f http://localhost:8000/ || exit 1\nCMD [\"sleep\", \"3600\"]\n";
        let f = run_rule(
            &PlaceholderContainer,
            &[
                ("api/Dockerfile", df),
                (
                    "compose.yaml",
                    "services:\n  api:\n    build: ./api\n    command: sh -c \"while true; do sleep 30; done\"\n",
                ),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|x| x.severity == Severity::High), "{f:?}");
        assert!(f.iter().any(|x| x.locations[0].path == "api/Dockerfile"));
    }

    #[test]
    fn accepts_real_commands_and_devcontainers() {
        for (path, text) in [
            (
                "compose.yaml",
                "services:\n  a:\n    image: a:1\n    command: uvicorn app:app\n  b:\n    image: b:1\n    command: sh -c \"python worker.py & sleep infinity\"\n  c:\n    image: c:1\n    command: sleep 5\n  d:\n    image: d:1\n    command: [\"sh\", \"-c\", \"sleep 10 && exec server\"]\n",
            ),
            (
                ".devcontainer/docker-compose.yml",
                "services:\n  dev:\n    image: mcr.microsoft.com/devcontainers/base:1\n    command: sleep infinity\n",
            ),
            (
                "Dockerfile",
                "FROM alpine:3.20\nENTRYPOINT [\"/entry.sh\"]\nCMD [\"sleep\", \"infinity\"]\n",
            ),
            (
                "Dockerfile",
                "FROM alpine:3.20 AS base\nCMD sleep infinity\nFROM base\nCMD [\"server\"]\n",
            ),
        ] {
            let f = run_rule(&PlaceholderContainer, &[(path, text)]);
            assert!(f.is_empty(), "{text}: {f:?}");
        }
    }
}
