//! The explicit list of rules, in a fixed order (output order for ties, SARIF rule index).
//!
//! One line per rule. Add yours at the end of its family's block; the test
//! `registry_matches_rule_files_and_docs` keeps this list, `src/rules/**` and
//! `docs/audit/` in sync.

use crate::rule::Rule;
use crate::rules;

/// Every rule, in registry order.
#[must_use]
pub fn all() -> Vec<Box<dyn Rule>> {
    vec![
        // general
        Box::new(rules::parse_error::ParseError),
        // dockerfile
        Box::new(rules::dockerfile::dockerfile_latest_tag::LatestTag),
        // compose
    ]
}

/// The ids of every rule, in registry order.
#[must_use]
pub fn ids() -> Vec<&'static str> {
    all().iter().map(|r| r.meta().id).collect()
}

/// The known id closest to `id` (for "did you mean" hints), if reasonably close.
#[must_use]
pub fn closest<'a>(id: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(id, k), *k))
        .filter(|(d, _)| *d <= 3.max(id.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
