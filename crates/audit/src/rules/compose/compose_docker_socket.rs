//! `compose-docker-socket`: the Docker socket mounted into a container.

use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Compose, ComposeService};

/// Flags `/var/run/docker.sock` (or `/run/docker.sock`, a Podman socket) in `volumes:`.
pub struct DockerSocket;

static META: RuleMeta = RuleMeta {
    id: "compose-docker-socket",
    title: "Docker socket mounted into a container",
    family: "compose",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Do not mount the Docker socket: it gives the container root on the host. If the \
           service must watch containers, use a read-only socket proxy that allows only the \
           API calls it needs.",
};

impl Rule for DockerSocket {
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
        let Some(volumes) = svc.node.get("volumes") else {
            return;
        };
        for v in volumes.items() {
            let source = match v.as_str() {
                Some(s) => s.split(':').next().unwrap_or(s),
                None => v.get_str("source").unwrap_or(""),
            };
            if source.ends_with("docker.sock") || source.ends_with("podman.sock") {
                out.report(
                    cx.loc(v.span, "host socket"),
                    format!(
                        "service `{}` mounts the container engine socket `{source}`",
                        svc.name
                    ),
                )
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_short_and_long_syntax() {
        let f = run_rule(
            &super::DockerSocket,
            &[(
                "compose.yml",
                "services:\n  a:\n    image: x:1\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock:ro\n  b:\n    image: x:1\n    volumes:\n      - type: bind\n        source: /run/docker.sock\n        target: /sock\n",
            )],
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].locations[0].span.start.line, 5);
    }

    #[test]
    fn accepts_other_mounts() {
        let f = run_rule(
            &super::DockerSocket,
            &[(
                "compose.yml",
                "services:\n  a:\n    image: x:1\n    volumes:\n      - ./data:/data\n      - cache:/cache\n",
            )],
        );
        assert!(f.is_empty());
    }
}
