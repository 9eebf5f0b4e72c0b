//! `secret-gcp-service-account-key`: a Google Cloud service-account key (JSON with
//! `"type": "service_account"` and a `private_key`).

use std::sync::LazyLock;

use regex::Regex;

use super::pem::{self, KeyBody};
use super::{is_service_account_json, scannable};
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;

/// Finds service-account key JSON, as a file or embedded in another file. A sample (a
/// `private_key` that is not a complete key, or a `private_key_id` that is not 40 hex
/// characters) is not reported as critical.
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

/// Help for a sample key.
const SAMPLE_HELP: &str = "Nothing to delete if this is documentation or a test sample (mark it \
                           with `# orchestra: ignore[secret-gcp-service-account-key] sample`); \
                           if it was cut from a real key file, delete that key in IAM.";

static TYPE: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"\\?"type\\?"\s*:\s*\\?"service_account\\?""#));
static KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"\\?"private_key\\?"\s*:\s*\\?"(-----BEGIN [A-Z ]*PRIVATE KEY-----(?:\\\\n|\\n|\n)[A-Za-z0-9+/=]{20,}[^"]*)"#,
    )
});
static KEY_ID: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"\\?"private_key_id\\?"\s*:\s*\\?"([^"\\]*)\\?""#));
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
            let account = match &email {
                Some(e) => format!("service-account key for `{e}`"),
                None => "service-account key".to_string(),
            };
            // Real key ids are 40 hex characters; samples have `0123abcd` or `KEY_ID`.
            let key_id = KEY_ID
                .captures_iter(text)
                .filter_map(|c| c.get(1))
                .min_by_key(|m| m.start().abs_diff(key.start()))
                .map(|m| m.as_str());
            let sample_id = key_id
                .is_some_and(|id| id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()));
            let body = match pem::find_header(key.as_str()) {
                Some((kind, header)) => pem::check(kind, &key.as_str()[header.end..]),
                None => KeyBody::Unknown,
            };
            let loc = cx.loc_range(key.range(), "private key");
            match body {
                KeyBody::Placeholder => {}
                KeyBody::Sample(why) => out
                    .report(
                        loc,
                        format!(
                            "{account} looks like a sample: its `private_key` is not a \
                             complete key ({why})"
                        ),
                    )
                    .severity(Severity::Info)
                    .confidence(Confidence::Low)
                    .help(SAMPLE_HELP)
                    .redact()
                    .emit(),
                KeyBody::Complete(b64) if sample_id => out
                    .report(
                        loc,
                        format!(
                            "{account} has a sample `private_key_id` (not 40 hex \
                             characters), but its private key looks complete"
                        ),
                    )
                    .severity(Severity::Medium)
                    .confidence(Confidence::Low)
                    .secret(&b64)
                    .redact()
                    .emit(),
                KeyBody::Complete(b64) => out
                    .report(loc, format!("{account} is committed"))
                    .secret(&b64)
                    .redact()
                    .emit(),
                KeyBody::Unknown => out
                    .report(loc, format!("{account} is committed"))
                    .redact()
                    .emit(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    use crate::testing::{fake_private_key, random_text};

    /// A key file with a complete (fake) key and a 40-hex key id; `\n` escaped as in
    /// the files Google issues.
    fn key_json(email: &str) -> String {
        key_json_with(
            email,
            &random_text("0123456789abcdef", 40, 5),
            &fake_private_key("", 5),
        )
    }

    fn key_json_with(email: &str, id: &str, pem: &str) -> String {
        let pem = pem.replace('\n', "\\n");
        format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme-prod\",\n  \"private_key_id\": \"{id}\",\n  \"private_key\": \"{pem}\",\n  \"client_email\": \"{email}\"\n}}\n"
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
        assert_eq!(f[1].severity, Severity::Critical);
        let body = &fake_private_key("", 5)[28..60];
        assert!(!f[1].message.contains(body));
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

    #[test]
    fn samples_are_not_critical() {
        let email = "ci@acme-prod.iam.gserviceaccount.com";
        let good_id = random_text("0123456789abcdef", 40, 6);
        let head = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        let truncated = format!("-----BEGIN PRIVATE KEY-----\n{head}\n-----END PRIVATE KEY-----\n");
        let f = run_rule(
            &GcpServiceAccountKey,
            &[
                // A complete key with a made-up key id: medium.
                (
                    "a.json",
                    &key_json_with(email, "0123abcd", &fake_private_key("", 7)),
                ),
                // A real-looking id, a truncated key: info.
                ("b.json", &key_json_with(email, &good_id, &truncated)),
                // `MIIE...`: nothing.
                (
                    "c.json",
                    &key_json_with(
                        email,
                        &good_id,
                        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC...\n-----END PRIVATE KEY-----\n",
                    ),
                ),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].severity, Severity::Medium, "{}", f[0].message);
        assert!(
            f[0].message.contains("sample `private_key_id`"),
            "{}",
            f[0].message
        );
        assert_eq!(f[1].severity, Severity::Info, "{}", f[1].message);
        assert!(
            f[1].message.contains("looks like a sample"),
            "{}",
            f[1].message
        );
    }
}
