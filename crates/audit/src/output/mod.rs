//! Report renderers: human text, versioned JSON, SARIF 2.1.0.

pub mod json;
mod pretty;
pub mod sarif;
pub mod text;

use std::collections::HashMap;

use crate::rule::RuleMeta;
use crate::runner::Report;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// A summary and the secrets to rotate, then repeats grouped, most severe first, with
    /// source snippets and the fix.
    #[default]
    Text,
    /// `{"version": 1, "findings": [...], "groups": [...], "summary": {...}}`.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other viewers.
    Sarif,
}

/// Rule id → metadata, for renderers.
pub(crate) fn meta_index(report: &Report) -> HashMap<&'static str, &'static RuleMeta> {
    report.rules.iter().map(|m| (m.id, *m)).collect()
}
