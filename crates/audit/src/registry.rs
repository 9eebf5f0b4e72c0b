//! The explicit list of rules, in a fixed order (output order for ties, SARIF rule index).
//!
//! One line per rule. Add yours at the end of its family's block; the test
//! `registry_matches_rule_files_and_docs` keeps this list, `src/rules/**` and
//! `docs/audit/` in sync (tests/integration/registry.rs).

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
        Box::new(rules::dockerfile::dockerfile_eol_base::EolBase),
        Box::new(rules::dockerfile::dockerfile_root_user::RootUser),
        Box::new(rules::dockerfile::dockerfile_secret_in_env::SecretInEnv),
        Box::new(rules::dockerfile::dockerfile_tls_verification_disabled::TlsVerificationDisabled),
        Box::new(
            rules::dockerfile::dockerfile_copy_env_without_dockerignore::CopyEnvWithoutDockerignore,
        ),
        Box::new(rules::dockerfile::dockerfile_exec_form_variable::ExecFormVariable),
        Box::new(rules::dockerfile::dockerfile_missing_healthcheck::MissingHealthcheck),
        Box::new(rules::dockerfile::dockerfile_package_cache::PackageCache),
        Box::new(rules::dockerfile::dockerfile_add_instead_of_copy::AddInsteadOfCopy),
        // compose
        Box::new(rules::compose::compose_privileged::Privileged),
        Box::new(rules::compose::compose_docker_socket::DockerSocket),
        Box::new(rules::compose::compose_port_conflict::PortConflict),
        Box::new(rules::compose::compose_missing_path::MissingPath),
        Box::new(rules::compose::compose_latest_tag::LatestTag),
        Box::new(rules::compose::compose_healthcheck_mismatch::HealthcheckMismatch),
        Box::new(rules::compose::compose_missing_healthcheck::MissingHealthcheck),
        Box::new(rules::compose::compose_missing_resource_limits::MissingResourceLimits),
        Box::new(rules::compose::healthcheck_cannot_fail::HealthcheckCannotFail),
        Box::new(rules::compose::healthcheck_wrong_port::HealthcheckWrongPort),
        Box::new(rules::compose::placeholder_container::PlaceholderContainer),
        Box::new(rules::compose::insecure_default::InsecureDefault),
        // secrets
        Box::new(rules::secrets::secret_provider_token::ProviderToken),
        Box::new(rules::secrets::secret_private_key::PrivateKey),
        Box::new(rules::secrets::secret_gcp_service_account_key::GcpServiceAccountKey),
        Box::new(rules::secrets::secret_url_credentials::UrlCredentials),
        Box::new(rules::secrets::secret_htpasswd_entry::HtpasswdEntry),
        Box::new(rules::secrets::secret_committed_file::CommittedFile),
        Box::new(rules::secrets::secret_generic_assignment::GenericAssignment),
        // workflows
        Box::new(rules::workflows::workflow_unpinned_action::UnpinnedAction),
        Box::new(rules::workflows::workflow_missing_permissions::MissingPermissions),
        Box::new(rules::workflows::workflow_excessive_permissions::ExcessivePermissions),
        Box::new(rules::workflows::workflow_long_lived_cloud_key::LongLivedCloudKey),
        Box::new(rules::workflows::workflow_template_injection::TemplateInjection),
        Box::new(rules::workflows::workflow_duplicate_deploy::DuplicateDeploy),
        Box::new(rules::workflows::workflow_test_continue_on_error::TestContinueOnError),
        Box::new(rules::workflows::workflow_deploy_without_concurrency::DeployWithoutConcurrency),
        Box::new(rules::workflows::workflow_unknown_runner::UnknownRunner),
        Box::new(rules::workflows::workflow_oidc_without_id_token::OidcWithoutIdToken),
        Box::new(rules::workflows::workflow_secret_in_set_env_vars::SecretInSetEnvVars),
        Box::new(rules::workflows::workflow_deploy_on_any_branch::DeployOnAnyBranch),
        Box::new(rules::workflows::ci_swallowed_failure::SwallowedFailure),
        // drift
        Box::new(rules::drift::drift_tool_version::ToolVersion),
        Box::new(rules::drift::drift_base_image::BaseImage),
        Box::new(rules::drift::drift_action_version::ActionVersion),
        Box::new(rules::drift::drift_requirements_lock::RequirementsLock),
        // identifiers
        Box::new(rules::identifiers::stale_id::StaleId),
        Box::new(rules::identifiers::mixed_cloud_projects::MixedCloudProjects),
        Box::new(rules::identifiers::mixed_cloud_regions::MixedCloudRegions),
        // dependencies
        Box::new(rules::dependencies::dependency_known_vulnerability::KnownVulnerability),
        // hygiene
        Box::new(rules::hygiene::committed_dependency_tree::CommittedDependencyTree),
        Box::new(rules::hygiene::committed_terraform_state::CommittedTerraformState),
        Box::new(rules::hygiene::committed_binary_or_archive::CommittedBinaryOrArchive),
        // pulumi
        Box::new(rules::pulumi::pulumi_missing_stack_config::MissingStackConfig),
        Box::new(rules::pulumi::pulumi_duplicate_stack_deploy::DuplicateStackDeploy),
        Box::new(rules::pulumi::pulumi_sdk_shadowed::SdkShadowed),
        // vercel
        Box::new(rules::vercel::vercel_hard_coded_rewrite_host::HardCodedRewriteHost),
        Box::new(rules::vercel::vercel_committed_project_link::CommittedProjectLink),
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
