//! Secrets: provider tokens, private keys, service-account keys, credentials in URLs,
//! `.htpasswd` entries, committed sensitive files and high-entropy generic assignments.
//!
//! Every rule here scans raw text, so each runs an aho-corasick keyword prefilter
//! ([`crate::rules::scan::Prefilter`]) before any regex, and never puts a secret value in
//! a message ([`crate::finding::redact`]) or an unmasked snippet (`.redact()`).

pub(crate) mod pem;
pub mod secret_committed_file;
pub mod secret_gcp_service_account_key;
pub mod secret_generic_assignment;
pub mod secret_htpasswd_entry;
pub mod secret_private_key;
pub mod secret_provider_token;
pub mod secret_url_credentials;

use crate::collect::FileKind;
use crate::rule::FileCx;

/// True when `cx` is a file worth scanning as text (not binary, not empty).
pub(crate) fn scannable(cx: &FileCx<'_>) -> bool {
    !cx.source().text.is_empty() && !matches!(cx.file.doc, crate::parse::Document::Binary)
}

/// True when the file is a GCP service-account key (reported by its own rule).
pub(crate) fn is_service_account_json(text: &str) -> bool {
    text.contains("service_account") && text.contains("private_key")
}

/// Kinds whose content is generated and full of random-looking hashes.
pub(crate) fn is_generated(kind: FileKind) -> bool {
    kind.is_lockfile()
}
