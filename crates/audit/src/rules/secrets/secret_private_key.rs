//! `secret-private-key`: a PEM / OpenSSH private key block inside a file.

use std::sync::LazyLock;

use regex::Regex;

use super::{is_service_account_json, scannable};
use crate::collect::FileKind;
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::regex;

/// Finds `-----BEGIN … PRIVATE KEY-----` blocks with real key material.
pub struct PrivateKey;

static META: RuleMeta = RuleMeta {
    id: "secret-private-key",
    title: "Private key committed",
    family: "secrets",
    severity: Severity::High,
    confidence: Confidence::High,
    help: "Treat the key as compromised: revoke or replace it wherever it is trusted \
           (certificate, deploy key, SSH authorized_keys, signing key), remove it from the \
           repository history, and mount the new one at run time from a secret store.",
};

static BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?)PRIVATE KEY(?: BLOCK)?-----")
});

/// Base64 key material right after the header (possibly after `\n` escapes).
static BODY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?:\s|\\n|\\r|[A-Za-z-]+: [^\n]*\n)*[A-Za-z0-9+/=]{40,}"));

impl Rule for PrivateKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        // Key files by name are reported by `secret-committed-file`, service-account
        // JSON by `secret-gcp-service-account-key`.
        if cx.file.kind == FileKind::KeyFile || !scannable(cx) {
            return;
        }
        let text = &cx.source().text;
        if !text.contains("PRIVATE KEY") || is_service_account_json(text) {
            return;
        }
        for caps in BEGIN.captures_iter(text) {
            let (Some(all), kind) = (caps.get(0), caps.get(1).map_or("", |m| m.as_str())) else {
                continue;
            };
            let after = &text[all.end()..text.len().min(all.end() + 400)];
            if !BODY.is_match(after) {
                continue; // `-----BEGIN PRIVATE KEY-----\n...` placeholders
            }
            let kind = kind.trim();
            let (what, severity) = match kind {
                "ENCRYPTED" => ("encrypted private key", Severity::Medium),
                "" => ("private key", Severity::High),
                other => (other, Severity::High),
            };
            let what = if what == kind {
                format!("{kind} private key")
            } else {
                what.to_string()
            };
            out.report(
                cx.loc_range(all.range(), "private key"),
                format!("{what} block is committed in this file"),
            )
            .severity(severity)
            .redact()
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    fn pem(kind: &str) -> String {
        let b = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        format!("-----BEGIN {kind}PRIVATE KEY-----\n{b}\n{b}\n-----END {kind}PRIVATE KEY-----\n")
    }

    #[test]
    fn finds_key_blocks_in_any_text_file() {
        let yaml = format!(
            "tls:\n  key: |\n    {}",
            pem("RSA ").replace('\n', "\n    ")
        );
        let f = run_rule(
            &PrivateKey,
            &[
                ("deploy/values.yaml", yaml.as_str()),
                (
                    "scripts/setup.sh",
                    &format!("cat > k <<EOF\n{}EOF\n", pem("OPENSSH ")),
                ),
                ("old.txt", &pem("ENCRYPTED ")),
            ],
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].locations[0].path, "deploy/values.yaml");
        assert!(f[0].message.starts_with("RSA private key"));
        assert_eq!(f[0].locations[0].span.start.line, 3);
        assert_eq!(f[1].severity, Severity::Medium);
        assert!(f.iter().all(|x| x.locations[0].redact));
    }

    #[test]
    fn ignores_placeholders_public_keys_and_key_files() {
        let f = run_rule(
            &PrivateKey,
            &[
                (
                    "README.md",
                    "Paste it:\n-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
                ),
                (
                    "pub.txt",
                    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1\n",
                ),
                ("certs/tls.key", &pem("")),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
