//! `workflow-secret-in-set-env-vars`: a repository secret deployed as a plain environment
//! variable of a Cloud Run service or function (`--set-env-vars KEY=${{ secrets.X }}`),
//! readable by anyone who can view the service, instead of a Secret Manager reference.

use std::sync::LazyLock;

use regex::Regex;

use super::ActionRef;
use crate::finding::{Confidence, Severity};
use crate::parse::Node;
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;
use crate::views::{Job, Step, Workflow};

/// Flags secrets in `--set-env-vars` / `--update-env-vars` and `deploy-cloudrun` `env_vars`.
pub struct SecretInSetEnvVars;

static META: RuleMeta = RuleMeta {
    id: "workflow-secret-in-set-env-vars",
    title: "Secret deployed as a plain environment variable",
    family: "workflows",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Store the value in Secret Manager and reference it: `--set-secrets \
           DATABASE_URL=database-url:latest` (or `secrets:` of deploy-cloudrun). Plain env \
           vars are shown in the console, `gcloud run services describe` and revisions to \
           anyone with viewer access.",
};

static ENV_VARS_FLAG: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"--(?:set|update)-env-vars(?:=|\s+)("[^"]*"|'[^']*'|\S+)"#));
static SECRET_EXPR: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}"));
static SHELL_VAR: LazyLock<Regex> = LazyLock::new(|| regex(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"));

/// The secret an `env:` variable holds, looked up step, job, then workflow.
fn env_secret(wf: &Workflow<'_>, job: &Job<'_>, step: &Step<'_>, var: &str) -> Option<String> {
    [step.node, job.node, wf.root]
        .iter()
        .find_map(|n| n.get_path(&["env", var]))
        .and_then(Node::as_str)
        .and_then(|v| SECRET_EXPR.captures(v))
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

/// `(text to point at, secret name)` of each secret in a `KEY=value,…` list.
fn secrets_in(
    value: &str,
    wf: &Workflow<'_>,
    job: &Job<'_>,
    step: &Step<'_>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = SECRET_EXPR
        .captures_iter(value)
        .filter_map(|c| {
            Some((
                c.get(0)?.as_str().to_string(),
                c.get(1)?.as_str().to_string(),
            ))
        })
        .collect();
    let without_exprs = SECRET_EXPR.replace_all(value, "");
    for c in SHELL_VAR.captures_iter(&without_exprs) {
        if let (Some(all), Some(var)) = (c.get(0), c.get(1))
            && let Some(secret) = env_secret(wf, job, step, var.as_str())
        {
            out.push((all.as_str().to_string(), secret));
        }
    }
    out
}

impl Rule for SecretInSetEnvVars {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_step(
        &self,
        cx: &FileCx<'_>,
        wf: &Workflow<'_>,
        job: &Job<'_>,
        step: &Step<'_>,
        out: &mut Sink,
    ) {
        if let Some(run) = step.run()
            && let Some(script) = run.as_str()
            && script.contains("-env-vars")
            && (script.contains("gcloud") || script.contains("run deploy"))
        {
            for c in ENV_VARS_FLAG.captures_iter(script) {
                let Some(value) = c.get(1) else { continue };
                for (needle, secret) in secrets_in(value.as_str(), wf, job, step) {
                    let span = cx
                        .source()
                        .find_in(run.span.range(), &needle)
                        .unwrap_or(run.span);
                    out.report(
                        cx.loc(span, "plain env var"),
                        format!(
                            "secret `{secret}` is deployed as a plain environment variable \
                             (`--set-env-vars`) instead of a Secret Manager reference"
                        ),
                    )
                    .emit();
                }
            }
        }
        let is_deploy_action = step
            .uses()
            .and_then(Node::as_str)
            .and_then(ActionRef::parse)
            .is_some_and(|a| {
                a.repo
                    .eq_ignore_ascii_case("google-github-actions/deploy-cloudrun")
            });
        if is_deploy_action && let Some(vars) = step.node.get_path(&["with", "env_vars"]) {
            let text = vars.as_str().unwrap_or("");
            for (needle, secret) in secrets_in(text, wf, job, step) {
                let span = cx
                    .source()
                    .find_in(vars.span.range(), &needle)
                    .unwrap_or(vars.span);
                out.report(
                    cx.loc(span, "plain env var"),
                    format!(
                        "secret `{secret}` is deployed as a plain environment variable \
                         (`env_vars`) instead of a Secret Manager reference (`secrets`)"
                    ),
                )
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn run(w: &str) -> Vec<crate::Finding> {
        run_rule(&SecretInSetEnvVars, &[(".github/workflows/deploy.yml", w)])
    }

    #[test]
    fn flags_secrets_in_env_vars() {
        let w = "on: push\nenv:\n  STRIPE: ${{ secrets.STRIPE_KEY }}\njobs:\n  deploy:\n    steps:\n      - run: |\n          gcloud run deploy api --image x \\\n            --set-env-vars \"DB_PASSWORD=${{ secrets.DB_PASSWORD }},MODE=prod,STRIPE=$STRIPE\"\n      - uses: google-github-actions/deploy-cloudrun@v2\n        with:\n          service: api\n          env_vars: |\n            TOKEN=${{ secrets.API_TOKEN }}\n";
        let f = run(w);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].message.contains("`DB_PASSWORD`"));
        assert_eq!(f[0].locations[0].span.start.line, 9);
        assert!(f[1].message.contains("`STRIPE_KEY`"));
        assert!(f[2].message.contains("`API_TOKEN`"));
        assert_eq!(f[2].locations[0].span.start.line, 14);
    }

    #[test]
    fn accepts_set_secrets_and_plain_values() {
        let w = "on: push\nenv:\n  REGION: europe-west1\njobs:\n  deploy:\n    steps:\n      - run: |\n          gcloud run deploy api --image x --region $REGION \\\n            --set-env-vars MODE=prod,REGION=$REGION,SHA=${{ github.sha }} \\\n            --set-secrets DATABASE_URL=database-url:latest\n          echo ${{ secrets.NOT_DEPLOYED }} | docker login --password-stdin\n";
        assert!(run(w).is_empty(), "{:?}", run(w));
    }
}
