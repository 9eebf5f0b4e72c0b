//! `workflow-oidc-without-id-token`: a job authenticates to a cloud with OIDC (workload
//! identity federation, an assumed role) but its token cannot request an OIDC token.

use super::{ActionRef, Triggers};
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Job, Step, Workflow};

/// Flags OIDC cloud logins in jobs without `id-token: write`.
pub struct OidcWithoutIdToken;

static META: RuleMeta = RuleMeta {
    id: "workflow-oidc-without-id-token",
    title: "OIDC cloud login without `id-token: write`",
    family: "workflows",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Grant the job `permissions: {id-token: write, contents: read}` (job-level \
           `permissions:` replace the workflow's, so list everything the job needs).",
};

/// The provider an OIDC login step authenticates to, if it is one.
fn oidc_login(step: &Step<'_>) -> Option<&'static str> {
    let uses = step.uses()?.as_str()?;
    let action = ActionRef::parse(uses)?;
    let with = |k: &str| step.node.get_path(&["with", k]).and_then(Node::as_str);
    match action.repo.to_ascii_lowercase().as_str() {
        "google-github-actions/auth" => (with("workload_identity_provider").is_some()
            && with("credentials_json").is_none())
        .then_some("Google Cloud"),
        "aws-actions/configure-aws-credentials" => (with("role-to-assume").is_some()
            && with("aws-access-key-id").is_none()
            && with("web-identity-token-file").is_none())
        .then_some("AWS"),
        "azure/login" => (with("client-id").is_some()
            && with("client-secret").is_none()
            && with("creds").is_none())
        .then_some("Azure"),
        _ => None,
    }
}

/// Whether a `permissions:` value grants `id-token: write`.
fn grants_id_token(p: &Node) -> bool {
    if let Some(s) = p.as_str() {
        return s == "write-all";
    }
    p.get_str("id-token") == Some("write")
}

impl Rule for OidcWithoutIdToken {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_job(&self, cx: &FileCx<'_>, wf: &Workflow<'_>, job: &Job<'_>, out: &mut Sink) {
        let Some((step, provider)) = job.steps.iter().find_map(|s| oidc_login(s).map(|p| (s, p)))
        else {
            return;
        };
        let declared = job
            .node
            .get("permissions")
            .map(|p| (p, "the job's"))
            .or_else(|| wf.root.get("permissions").map(|p| (p, "the workflow's")));
        let message = match declared {
            Some((p, _)) if grants_id_token(p) => return,
            Some((_, whose)) => format!(
                "job `{}` logs in to {provider} with OIDC, but {whose} `permissions:` do not \
                 grant `id-token: write`: the login fails",
                job.id
            ),
            None => {
                // A reusable workflow gets its caller's token: the caller decides.
                let t = Triggers::of(wf);
                if !t.events.is_empty() && t.events.iter().all(|e| e == "workflow_call") {
                    return;
                }
                format!(
                    "job `{}` logs in to {provider} with OIDC, but no `permissions:` are \
                     declared and the default token has no `id-token: write`: the login fails",
                    job.id
                )
            }
        };
        let mut b = out.report(cx.loc(step.node.span, "OIDC login"), message);
        if let Some((p, _)) = declared {
            b = b.related(cx.loc(p.span, "permissions"));
        }
        b.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    const GCP: &str = "      - uses: google-github-actions/auth@v2\n        with:\n          workload_identity_provider: projects/1/locations/global/workloadIdentityPools/p/providers/gh\n          service_account: deploy@p.iam.gserviceaccount.com\n";

    fn run(w: &str) -> Vec<crate::Finding> {
        run_rule(&OidcWithoutIdToken, &[(".github/workflows/deploy.yml", w)])
    }

    #[test]
    fn flags_missing_id_token() {
        let none =
            format!("on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n{GCP}");
        let f = run(&none);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("no `permissions:`"));
        assert_eq!(f[0].locations[0].span.start.line, 6);
        // Job permissions replace the workflow's.
        let job = format!(
            "on: push\npermissions:\n  id-token: write\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    permissions:\n      contents: read\n    steps:\n{GCP}"
        );
        let f = run(&job);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("the job's"));
        let aws = "on: push\npermissions: read-all\njobs:\n  deploy:\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::1:role/deploy\n      - uses: azure/login@v2\n        with:\n          client-id: x\n          tenant-id: y\n";
        let f = run(aws);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("AWS"));
    }

    #[test]
    fn accepts_granted_or_non_oidc_logins() {
        for w in [
            format!("on: push\npermissions:\n  id-token: write\n  contents: read\njobs:\n  deploy:\n    steps:\n{GCP}"),
            format!("on: push\njobs:\n  deploy:\n    permissions: write-all\n    steps:\n{GCP}"),
            format!("on: workflow_call\njobs:\n  deploy:\n    steps:\n{GCP}"),
            "on: push\njobs:\n  deploy:\n    steps:\n      - uses: google-github-actions/auth@v2\n        with:\n          credentials_json: ${{ secrets.GCP_SA_KEY }}\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.AWS_KEY_ID }}\n          aws-secret-access-key: ${{ secrets.AWS_SECRET }}\n          role-to-assume: arn:aws:iam::1:role/x\n".to_string(),
        ] {
            assert!(run(&w).is_empty(), "{w}: {:?}", run(&w));
        }
    }
}
