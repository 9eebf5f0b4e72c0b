//! `secret-gcp-service-account-key`: a Google Cloud service-account key (JSON with
//! `"type": "service_account"` and a `private_key`).

use std::sync::LazyLock;

use regex::Regex;

use super::{is_service_account_json, scannable};
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;

/// Finds service-account key JSON, as a file or embedded in another file.
pub struct GcpServiceAccountKey;

static META: RuleMeta = RuleMeta {
    id: "secret-gcp-service-account-key",
    title: "Google Cloud service-account key committed",
    family: "secrets",
    severity: Severity::Critical,
    confidence: Confidence::High,
    help: "Delete the key now (`gcloud iam service-accounts keys delete KEY_ID \
           --iam-account=EMAIL`), purge the file from history, and stop using key files: \
           use Workload Identity Federation in CI (google-github-actions/auth with \
           workload_identity_provider) and attached service accounts at run time.",
};

static TYPE: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"\\?"type\\?"\s*:\s*\\?"service_account\\?""#));
static KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"\\?"private_key\\?"\s*:\s*\\?"(-----BEGIN [A-Z ]*PRIVATE KEY-----(?:\\\\n|\\n|\n)[A-Za-z0-9+/=]{20,}[^"]*)"#,
    )
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(r#"\\?"client_email\\?"\s*:\s*\\?"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+)\\?""#)
});

impl Rule for GcpServiceAccountKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        if !scannable(cx) {
            return;
        }
        let text = &cx.source().text;
        if !is_service_account_json(text) || !TYPE.is_match(text) {
            return;
        }
        for caps in KEY.captures_iter(text) {
            let Some(key) = caps.get(1) else { continue };
            // The email closest to this key names the account (not a secret).
            let email = EMAIL
                .captures_iter(text)
                .filter_map(|c| c.get(1))
                .min_by_key(|m| m.start().abs_diff(key.start()))
                .map(|m| m.as_str().to_string());
            let message = match &email {
                Some(e) => format!("service-account key for `{e}` is committed"),
                None => "service-account key is committed".to_string(),
            };
            out.report(cx.loc_range(key.range(), "private key"), message)
                .redact()
                .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    const B: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";

    fn key_json(email: &str) -> String {
        format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme-prod\",\n  \"private_key_id\": \"0123abcd\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{B}\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"{email}\"\n}}\n"
        )
    }

    #[test]
    fn finds_key_files_and_embedded_keys() {
        let embedded = format!(
            "GCP_SA_KEY='{}'\n",
            key_json("ci@acme-prod.iam.gserviceaccount.com").replace('\n', "")
        );
        let f = run_rule(
            &GcpServiceAccountKey,
            &[
                (
                    "infra/sa.json",
                    &key_json("deployer@acme-prod.iam.gserviceaccount.com"),
                ),
                ("ci/.env.ci", &embedded),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[1].locations[0].path, "infra/sa.json");
        assert!(
            f[1].message
                .contains("deployer@acme-prod.iam.gserviceaccount.com")
        );
        assert_eq!(f[1].locations[0].span.start.line, 5);
        assert!(!f[1].message.contains(B));
    }

    #[test]
    fn ignores_templates_and_other_json() {
        let template = "{\"type\": \"service_account\", \"private_key\": \"<paste here>\"}\n";
        let f = run_rule(
            &GcpServiceAccountKey,
            &[
                ("sa.template.json", template),
                ("package.json", "{\"name\": \"x\", \"private_key\": 1}\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
