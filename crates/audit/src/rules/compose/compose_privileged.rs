//! `compose-privileged`: a privileged container, or one with every capability.

use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Compose, ComposeService};

/// Flags `privileged: true` and `cap_add: [ALL]` / `SYS_ADMIN`.
pub struct Privileged;

static META: RuleMeta = RuleMeta {
    id: "compose-privileged",
    title: "Container runs privileged",
    family: "compose",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Remove `privileged: true`; grant only the capabilities or devices the service \
           needs (`cap_add: [NET_BIND_SERVICE]`, `devices:`, GPU `deploy.resources.reservations`).",
};

impl Rule for Privileged {
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
        if let Some(p) = svc.node.get("privileged")
            && p.as_bool() == Some(true)
        {
            out.report(
                cx.loc(p.span, "privileged"),
                format!(
                    "service `{}` runs privileged: it can take over the host",
                    svc.name
                ),
            )
            .emit();
        }
        if let Some(caps) = svc.node.get("cap_add") {
            for c in caps.items() {
                let cap = c.as_str().unwrap_or("").to_ascii_uppercase();
                if matches!(cap.as_str(), "ALL" | "SYS_ADMIN" | "CAP_SYS_ADMIN") {
                    out.report(
                        cx.loc(c.span, "near-root capability"),
                        format!("service `{}` adds capability {cap}", svc.name),
                    )
                    .emit();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_privileged_and_all_caps() {
        let f = run_rule(
            &super::Privileged,
            &[(
                "compose.yml",
                "services:\n  a:\n    image: x:1\n    privileged: true\n    cap_add: [ALL]\n",
            )],
        );
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn accepts_narrow_caps() {
        let f = run_rule(
            &super::Privileged,
            &[(
                "compose.yml",
                "services:\n  a:\n    image: x:1\n    privileged: false\n    cap_add: [NET_BIND_SERVICE]\n",
            )],
        );
        assert!(f.is_empty());
    }
}
