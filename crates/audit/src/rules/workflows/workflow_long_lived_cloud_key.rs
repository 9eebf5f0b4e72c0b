//! `workflow-long-lived-cloud-key`: a cloud login step that uses a stored key where
//! OpenID Connect (short-lived, keyless) fits.

use super::ActionRef;
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::views::{Job, Step, Workflow};

/// Flags `credentials_json:` (GCP), `aws-access-key-id:` (AWS) and `creds:` (Azure).
pub struct LongLivedCloudKey;

static META: RuleMeta = RuleMeta {
    id: "workflow-long-lived-cloud-key",
    title: "Long-lived cloud key used where OIDC fits",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Use GitHub's OIDC token instead of a stored key: add `permissions: id-token: \
           write` and configure Workload Identity Federation (GCP: \
           `workload_identity_provider` + `service_account`), an IAM role (AWS: \
           `role-to-assume`) or a federated credential (Azure: `client-id`, `tenant-id`, \
           `subscription-id`); then delete the key and its secret.",
};

/// `(action repo, input, cloud, OIDC alternative)`.
const KEY_INPUTS: &[(&str, &str, &str, &str)] = &[
    (
        "google-github-actions/auth",
        "credentials_json",
        "GCP service-account key",
        "workload_identity_provider",
    ),
    (
        "google-github-actions/setup-gcloud",
        "service_account_key",
        "GCP service-account key",
        "google-github-actions/auth with workload_identity_provider",
    ),
    (
        "aws-actions/configure-aws-credentials",
        "aws-access-key-id",
        "AWS access key",
        "role-to-assume",
    ),
    (
        "azure/login",
        "creds",
        "Azure service-principal secret",
        "client-id/tenant-id (OIDC)",
    ),
];

impl Rule for LongLivedCloudKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_step(
        &self,
        cx: &FileCx<'_>,
        _wf: &Workflow<'_>,
        job: &Job<'_>,
        step: &Step<'_>,
        out: &mut Sink,
    ) {
        let Some(a) = step
            .uses()
            .and_then(|u| u.as_str())
            .and_then(ActionRef::parse)
        else {
            return;
        };
        let repo = a.repo.to_ascii_lowercase();
        for (action, input, what, instead) in KEY_INPUTS {
            if repo != *action {
                continue;
            }
            let Some(entry) = step.node.get("with").and_then(|w| w.entry(input)) else {
                continue;
            };
            out.report(
                cx.loc(entry.key.span, "long-lived key"),
                format!(
                    "job `{}` logs in to the cloud with a {what} (`{input}`); use OIDC (`{instead}`) instead",
                    job.id
                ),
            )
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_stored_keys() {
        let w = "on: push\njobs:\n  deploy:\n    steps:\n      - uses: google-github-actions/auth@v2\n        with:\n          credentials_json: ${{ secrets.GCP_SA_KEY }}\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}\n          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n";
        let f = run_rule(&LongLivedCloudKey, &[(".github/workflows/deploy.yml", w)]);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].message.contains("GCP service-account key"));
        assert_eq!(f[0].locations[0].span.start.line, 7);
        assert!(f[1].message.contains("role-to-assume"));
    }

    #[test]
    fn accepts_oidc() {
        let w = "on: push\npermissions:\n  id-token: write\njobs:\n  deploy:\n    steps:\n      - uses: google-github-actions/auth@v2\n        with:\n          workload_identity_provider: projects/1/locations/global/workloadIdentityPools/p/providers/gh\n          service_account: deploy@acme.iam.gserviceaccount.com\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::123456789012:role/deploy\n";
        let f = run_rule(&LongLivedCloudKey, &[(".github/workflows/deploy.yml", w)]);
        assert!(f.is_empty(), "{f:?}");
    }
}
