//! `mixed-cloud-projects`: several Google Cloud project ids in the deploy configuration,
//! beyond per-environment variants (`acme-prod` / `acme-staging`): usually a leftover
//! from a migration.

use std::sync::LazyLock;

use super::{candidates, occurrences, summary};
use crate::finding::{Confidence, Severity};
use crate::repo::Repository;
use crate::rule::{Rule, RuleMeta, Sink};
use crate::rules::scan::{GatedRegex, Prefilter, is_placeholder};

/// Cross-file: one finding listing every project id with its use count.
pub struct MixedCloudProjects;

static META: RuleMeta = RuleMeta {
    id: "mixed-cloud-projects",
    title: "Several cloud project ids used for the same deployment",
    family: "identifiers",
    severity: Severity::Medium,
    confidence: Confidence::Medium,
    help: "If one id is a leftover, rename it everywhere with `orchestra fix rename-id OLD \
           NEW` and list it in `stale-ids` so it cannot come back; if the projects are \
           intentional (separate environments), ignore this rule in .orchestra-audit.toml.",
};

/// A GCP project id: 6–30 characters, lowercase letters, digits and hyphens.
const ID: &str = r"([a-z][a-z0-9-]{4,28}[a-z0-9])";

static PREFILTER: LazyLock<Prefilter> = LazyLock::new(|| {
    Prefilter::new(&[
        "project",
        "gcr.io/",
        "docker.pkg.dev/",
        "projects/",
        ".iam.gserviceaccount.com",
    ])
});

static PATTERNS: LazyLock<Vec<GatedRegex>> = LazyLock::new(|| {
    vec![
        GatedRegex::new(format!(r#"--project(?:=|\s+)["']?{ID}\b"#), &["--project"]),
        GatedRegex::new(
            format!(r#"\b(?:project_id|project-id|projectId|project)["']?\s*[:=]\s*["']{ID}["']"#),
            &["project"],
        ),
        GatedRegex::new(
            format!(
                r#"\b(?:GOOGLE_CLOUD_PROJECT|GCLOUD_PROJECT|GCP_PROJECT(?:_ID)?|CLOUDSDK_CORE_PROJECT|PROJECT_ID)["']?\s*[:=]\s*["']?{ID}\b"#
            ),
            &["PROJECT"],
        ),
        GatedRegex::new(format!(r"\bgcr\.io/{ID}/"), &["gcr.io/"]),
        GatedRegex::new(
            format!(r"[a-z0-9-]+-docker\.pkg\.dev/{ID}/"),
            &["-docker.pkg.dev/"],
        ),
        GatedRegex::new(format!(r"\bprojects/{ID}/"), &["projects/"]),
        GatedRegex::new(
            format!(r"@{ID}\.iam\.gserviceaccount\.com"),
            &[".iam.gserviceaccount.com"],
        ),
    ]
});

/// Environment words that distinguish sibling projects (`acme-prod`, `acme-staging`).
const ENV_WORDS: &[&str] = &[
    "prod",
    "production",
    "prd",
    "staging",
    "stage",
    "stg",
    "dev",
    "development",
    "test",
    "testing",
    "qa",
    "uat",
    "sandbox",
    "preview",
    "demo",
    "int",
    "integration",
    "nonprod",
    "preprod",
    "ci",
];

/// The project "family": the id without environment words.
fn family(id: &str) -> String {
    id.split('-')
        .filter(|p| !ENV_WORDS.contains(p))
        .collect::<Vec<_>>()
        .join("-")
}

/// Google-owned projects that host public images and tools (`gcr.io/distroless/static`,
/// `gcr.io/cloud-builders/docker`): used by everyone, never a deployment's own project.
const PUBLIC_PROJECTS: &[&str] = &[
    "distroless",
    "cloud-builders",
    "google-containers",
    "google-samples",
    "google-appengine",
    "cloudsql-docker",
    "cloud-sql-connectors",
    "kaniko-project",
    "k8s-artifacts-prod",
    "k8s-staging-images",
    "gke-release",
    "cloudrun",
    "buildpacks",
    "serverless-runtimes",
    "gcp-runtimes",
    "cloud-marketplace",
    "deeplearning-platform-release",
    "vertex-ai",
    "vertex-ai-restricted",
    "ml-pipeline",
    "tfx-oss-public",
    "kubeflow-images-public",
    "knative-releases",
    "istio-release",
    "spinnaker-marketplace",
    "google-cloud-sdk",
    "cloud-spanner-emulator",
    "oss-fuzz",
];

fn real_id(id: &str) -> bool {
    !PUBLIC_PROJECTS.contains(&id)
        && !is_placeholder(id)
        && !id.starts_with("my-")
        && !matches!(
            id,
            "project-id" | "gcp-project" | "project-name" | "cloud-project"
        )
}

impl Rule for MixedCloudProjects {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_repository(&self, repo: &Repository, out: &mut Sink) {
        let files = candidates(repo, &PREFILTER);
        if files.is_empty() {
            return;
        }
        let found = occurrences(&files, &PATTERNS, real_id);
        let mut families: Vec<String> = found.keys().map(|id| family(id)).collect();
        families.sort();
        families.dedup();
        if families.len() < 2 {
            return;
        }
        let mut counts: Vec<(&String, usize)> = found.iter().map(|(k, v)| (k, v.len())).collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        // The odd one out: the least used family, when it is used less than every other.
        let mut fam_counts: Vec<(String, usize)> = families
            .iter()
            .map(|f| {
                let n = counts
                    .iter()
                    .filter(|(id, _)| &family(id) == f)
                    .map(|(_, n)| n)
                    .sum();
                (f.clone(), n)
            })
            .collect();
        fam_counts.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let odd_family = (fam_counts[0].1 < fam_counts[1].1).then(|| fam_counts[0].0.clone());
        let odd_id = odd_family.as_ref().and_then(|f| {
            counts
                .iter()
                .filter(|(id, _)| &family(id) == f)
                .min_by_key(|(_, n)| *n)
                .map(|(id, _)| id.as_str())
        });
        let primary_id = odd_id.unwrap_or_else(|| counts[counts.len() - 1].0.as_str());
        let Some(primary) = found.get(primary_id).and_then(|v| v.first()) else {
            return;
        };
        let mut b = out.report(
            primary.clone(),
            format!(
                "{} Google Cloud project ids are used: {}",
                counts.len(),
                summary(&counts, odd_id)
            ),
        );
        for (id, _) in &counts {
            if id.as_str() != primary_id
                && let Some(l) = found.get(*id).and_then(|v| v.first())
            {
                b = b.related(l.clone());
            }
        }
        b.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run_rule;

    #[test]
    fn names_the_odd_project_out() {
        let f = run_rule(
            &MixedCloudProjects,
            &[
                (
                    ".github/workflows/deploy.yml",
                    "env:\n  GOOGLE_CLOUD_PROJECT: acme-prod\njobs:\n  d:\n    steps:\n      - run: gcloud run deploy api --project acme-prod --image us-docker.pkg.dev/acme-prod/app/api\n",
                ),
                (
                    "infra/main.tf",
                    "provider \"google\" {\n  project = \"acme-staging\"\n}\n",
                ),
                ("scripts/push.sh", "docker push gcr.io/old-acme-1234/api\n"),
            ],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "3 Google Cloud project ids are used: `acme-prod` (3 uses), `acme-staging` (1 use), `old-acme-1234` (1 use, the odd one out)"
        );
        assert_eq!(f[0].locations[0].path, "scripts/push.sh");
        assert_eq!(f[0].locations.len(), 3);
    }

    #[test]
    fn environments_of_one_project_and_placeholders_are_fine() {
        let f = run_rule(
            &MixedCloudProjects,
            &[
                (
                    "deploy.sh",
                    "gcloud run deploy api --project=acme-prod\ngcloud run deploy api --project=acme-staging\n",
                ),
                (
                    "README.md",
                    "gcloud config set project other-project\n--project old-thing-1\n",
                ),
                (
                    "x.tf",
                    "project = \"my-project\"\nproject_id = \"your-project-id\"\n",
                ),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
