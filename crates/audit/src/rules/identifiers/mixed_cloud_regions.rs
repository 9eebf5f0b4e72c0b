//! `mixed-cloud-regions`: deploy commands and configuration that name several regions of
//! the same cloud (`us-central1` here, `europe-west1` there).

use std::sync::LazyLock;

use super::{candidates, occurrences, summary};
use crate::finding::{Confidence, Severity};
use crate::repo::{ParsedFile, Repository};
use crate::rule::{Rule, RuleMeta, Sink};
use crate::rules::scan::{GatedRegex, Prefilter};

/// Cross-file: one finding per cloud whose deploy regions disagree.
pub struct MixedCloudRegions;

static META: RuleMeta = RuleMeta {
    id: "mixed-cloud-regions",
    title: "Several cloud regions used for deploys",
    family: "identifiers",
    severity: Severity::Low,
    confidence: Confidence::Low,
    help: "Deploy to one region from a single setting (a workflow `env: REGION`, a \
           Terraform variable) so services, registries and databases stay together; if a \
           multi-region setup is intended, ignore this rule in .orchestra-audit.toml.",
};

const DIRS: &str = "north|south|east|west|central|northeast|southeast|northwest|southwest";

static GCP: LazyLock<Vec<GatedRegex>> = LazyLock::new(|| {
    let r = format!(
        r"((?:us|europe|asia|australia|northamerica|southamerica|me|africa)-(?:{DIRS})[0-9])"
    );
    contexts(&r)
});
static AWS: LazyLock<Vec<GatedRegex>> = LazyLock::new(|| {
    let r = format!(r"((?:us|eu|ap|sa|ca|me|af|il|mx)-(?:{DIRS})-[0-9])");
    contexts(&r)
});

/// Region values in deploy contexts: flags, `region =` settings, REGION variables,
/// Artifact Registry hosts.
fn contexts(region: &str) -> Vec<GatedRegex> {
    vec![
        GatedRegex::new(
            format!(r#"--(?:region|location)(?:=|\s+)["']?{region}\b"#),
            &["--region", "--location"],
        ),
        GatedRegex::new(
            format!(r#"\b(?:region|location|aws-region)["']?\s*[:=]\s*["']?{region}\b"#),
            &["region", "location"],
        ),
        GatedRegex::new(
            format!(r#"\b[A-Z_]*REGION["']?\s*[:=]\s*["']?{region}\b"#),
            &["REGION"],
        ),
        GatedRegex::new(
            format!(r"\b{region}-docker\.pkg\.dev\b"),
            &["-docker.pkg.dev"],
        ),
    ]
}

static PREFILTER: LazyLock<Prefilter> =
    LazyLock::new(|| Prefilter::new(&["region", "location", "docker.pkg.dev"]));

fn report(files: &[&ParsedFile], cloud: &str, patterns: &[GatedRegex], out: &mut Sink) {
    let found = occurrences(files, patterns, |_| true);
    if found.len() < 2 {
        return;
    }
    let mut counts: Vec<(&String, usize)> = found.iter().map(|(k, v)| (k, v.len())).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let last = counts.len() - 1;
    let odd = (counts[last].1 < counts[last - 1].1).then(|| counts[last].0.as_str());
    let primary_id = counts[last].0;
    let Some(primary) = found.get(primary_id).and_then(|v| v.first()) else {
        return;
    };
    let mut b = out.report(
        primary.clone(),
        format!(
            "{} {cloud} regions are used for deploys: {}",
            counts.len(),
            summary(&counts, odd)
        ),
    );
    for (id, _) in &counts[..last] {
        if let Some(l) = found.get(*id).and_then(|v| v.first()) {
            b = b.related(l.clone());
        }
    }
    b.emit();
}

impl Rule for MixedCloudRegions {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        // One keyword scan for both clouds; the regexes are compiled only when needed.
        let files = candidates(repo, &PREFILTER);
        if files.is_empty() {
            return;
        }
        report(&files, "Google Cloud", &GCP, out);
        report(&files, "AWS", &AWS, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn flags_mixed_regions() {
        let f = run_rule(
            &MixedCloudRegions,
            &[
                (
                    ".github/workflows/deploy.yml",
                    "env:\n  REGION: us-central1\njobs:\n  d:\n    steps:\n      - run: gcloud run deploy api --region us-central1 --image us-central1-docker.pkg.dev/p/r/api\n",
                ),
                (
                    "scripts/deploy-worker.sh",
                    "gcloud run deploy worker --region=europe-west1\n",
                ),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "2 Google Cloud regions are used for deploys: `us-central1` (3 uses), `europe-west1` (1 use, the odd one out)"
        );
        assert_eq!(f[0].locations[0].path, "scripts/deploy-worker.sh");
    }

    #[test]
    fn one_region_per_cloud_is_fine() {
        let f = run_rule(
            &MixedCloudRegions,
            &[
                (
                    "deploy.sh",
                    "gcloud run deploy api --region us-central1\naws ecs update-service --region us-east-1\n",
                ),
                ("notes.md", "we used to deploy to --region europe-west4\n"),
                ("zones.tf", "zone = \"us-central1-a\"\n"),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
