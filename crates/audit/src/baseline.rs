//! `--baseline report.json`: a previous JSON report whose findings are not shown again.
//!
//! Matching is by fingerprint (rule, file, line text, message — no line numbers), as a
//! multiset: two identical findings in the baseline hide at most two now.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::AuditError;

/// Fingerprints of a previous report.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    fingerprints: Vec<String>,
}

#[derive(Deserialize)]
struct RawReport {
    version: u32,
    findings: Vec<RawFinding>,
}

#[derive(Deserialize)]
struct RawFinding {
    fingerprint: String,
}

impl Baseline {
    /// Read a report written by `--format json`.
    ///
    /// # Errors
    /// Unreadable file, not a version-1 JSON report.
    pub fn load(path: &Path) -> Result<Baseline, AuditError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Baseline::parse(&text).map_err(|message| AuditError::Baseline {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parse report text.
    ///
    /// # Errors
    /// Not a version-1 JSON report.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let raw: RawReport = serde_json::from_str(text)
            .map_err(|e| format!("not an `orchestra audit --format json` report: {e}"))?;
        if raw.version != 1 {
            return Err(format!(
                "report version {} is not supported (expected 1)",
                raw.version
            ));
        }
        Ok(Baseline {
            fingerprints: raw.findings.into_iter().map(|f| f.fingerprint).collect(),
        })
    }

    /// Fingerprint → how many times it occurs.
    #[must_use]
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for f in &self.fingerprints {
            *m.entry(f.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Number of findings in the baseline.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    /// True when the baseline holds no finding.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }
}
