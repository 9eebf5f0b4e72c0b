//! `compose-missing-resource-limits`: a service without a memory limit.

use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Compose, ComposeService};

/// Flags services with neither `deploy.resources.limits.memory` nor `mem_limit`.
pub struct MissingResourceLimits;

static META: RuleMeta = RuleMeta {
    id: "compose-missing-resource-limits",
    title: "Service has no memory limit",
    family: "compose",
    severity: Severity::Low,
    confidence: Confidence::High,
    help: "Set `deploy.resources.limits.memory` (and `cpus`) so one runaway service — a model \
           server loading weights, a leaking worker — cannot starve the others on the host.",
};

impl Rule for MissingResourceLimits {
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
        if !svc.node.is_map() {
            return;
        }
        let limited = svc
            .node
            .get_path(&["deploy", "resources", "limits", "memory"])
            .is_some()
            || svc.node.get("mem_limit").is_some();
        if !limited {
            out.report(
                cx.loc(svc.key.span, "no memory limit"),
                format!("service `{}` has no memory limit", svc.name),
            )
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::run_rule;

    #[test]
    fn flags_unlimited_services() {
        let f = run_rule(
            &super::MissingResourceLimits,
            &[(
                "compose.yml",
                "services:\n  api:\n    image: x:1\n    deploy:\n      replicas: 2\n",
            )],
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("`api`"));
    }

    #[test]
    fn accepts_deploy_limits_and_mem_limit() {
        let f = run_rule(
            &super::MissingResourceLimits,
            &[(
                "compose.yml",
                "services:\n  api:\n    image: x:1\n    deploy:\n      resources:\n        limits:\n          memory: 512M\n  old:\n    image: y:1\n    mem_limit: 1g\n",
            )],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
