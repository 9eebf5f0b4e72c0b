//! `stale-id`: an identifier that must no longer appear (an old project id, bucket,
//! region, hostname), given with `--stale-id OLD` or `stale-ids = [...]` in the config.

use crate::config::CONFIG_FILE;
use crate::finding::{Confidence, Severity};
use crate::rule::{FileCx, Rule, RuleMeta, Sink};
use crate::rules::scan::find_identifier;

/// Reports every occurrence of every stale id.
pub struct StaleId;

static META: RuleMeta = RuleMeta {
    id: "stale-id",
    title: "Stale identifier still referenced",
    family: "identifiers",
    severity: Severity::Medium,
    confidence: Confidence::High,
    help: "Replace it everywhere with `orchestra fix rename-id OLD NEW` (add --dry-run to \
           preview), or remove the reference; lockfiles are only rewritten with \
           --include-lockfiles.",
};

impl Rule for StaleId {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file(&self, cx: &FileCx<'_>, out: &mut Sink) {
        let ids = &cx.repo.settings.stale_ids;
        let text = &cx.source().text;
        if ids.is_empty() || text.is_empty() || cx.file.name() == CONFIG_FILE {
            return;
        }
        let keys: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        // No separate keyword prefilter: `find_identifier` is itself a fast substring
        // search, and an id that does not occur (even case-insensitively) yields nothing.
        for id in keys {
            for r in find_identifier(text, id) {
                out.report(
                    cx.loc_range(r, "stale"),
                    format!("stale identifier `{id}` is still referenced"),
                )
                .subject(id)
                .emit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Settings;
    use crate::testing::run_rule_with;

    fn settings(ids: &[&str]) -> Settings {
        Settings {
            stale_ids: ids.iter().map(|s| (*s).to_string()).collect(),
            ..Settings::default()
        }
    }

    #[test]
    fn reports_every_occurrence() {
        let f = run_rule_with(
            &StaleId,
            &[
                (
                    "deploy.sh",
                    "gcloud run deploy api --project old-proj-123\nIMG=gcr.io/old-proj-123/api\n",
                ),
                (
                    ".github/workflows/d.yml",
                    "env:\n  PROJECT: old-proj-123\n  BUCKET: legacy-bucket\n",
                ),
                (".orchestra-audit.toml", "stale-ids = [\"old-proj-123\"]\n"),
            ],
            settings(&["old-proj-123", "legacy-bucket"]),
        );
        assert_eq!(f.len(), 4, "{f:?}");
        assert_eq!(f[0].locations[0].path, ".github/workflows/d.yml");
        assert_eq!(
            (
                f[2].locations[0].span.start.line,
                f[2].locations[0].span.start.col
            ),
            (1, 33)
        );
        assert_eq!(
            f[3].message,
            "stale identifier `old-proj-123` is still referenced"
        );
    }

    #[test]
    fn needs_whole_identifiers_and_configured_ids() {
        let files = [("a.sh", "old-proj-1234 xold-proj-123 old-proj-123_b\n")];
        assert!(run_rule_with(&StaleId, &files, settings(&["old-proj-123"])).is_empty());
        assert!(
            run_rule_with(&StaleId, &[("a.sh", "old-proj-123\n")], Settings::default()).is_empty()
        );
    }
}
