//! `orchestra export`: a validated manifest rendered for another engine.
//!
//! Pure: a [`Manifest`] (and what the secret store says about its secrets) in, files
//! (path and text) and a [`Report`] out; the CLI writes them. Every field written in the
//! manifest gets a [`Note`] in the report saying whether it was mapped, approximated
//! (and how) or is impossible on the target, with the manifest's file:line:col. Output is
//! deterministic: the same input gives byte-identical files.
//!
//! Targets:
//! - [`kubernetes`]: Deployments (or Argo Rollouts), Services, ConfigMaps, Secrets
//!   references, Ingresses or Gateway API HTTPRoutes, PodDisruptionBudgets, NetworkPolicies;
//! - [`compose`]: one `compose.yaml` that `orchestra import` reads back;
//! - [`cloudrun`]: a Knative `serving.knative.dev/v1` Service per routed service.
//!
//! [`checks`] holds structural checks over the parsed output that no schema expresses.

pub mod checks;
pub mod cloudrun;
mod common;
pub mod compose;
pub mod kubernetes;
mod report;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::PathBuf;

use orchestra_manifest::{Location, Manifest};
use serde::Serialize;

pub use report::{Note, Outcome, Report};

/// Which engine to render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Kubernetes manifests.
    K8s,
    /// A Docker Compose file.
    Compose,
    /// Cloud Run (Knative Serving) services.
    Cloudrun,
}

impl Target {
    /// `k8s`, `compose` or `cloudrun`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::K8s => "k8s",
            Self::Compose => "compose",
            Self::Cloudrun => "cloudrun",
        }
    }
}

/// What the secret store holds for one secret a service references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    /// The version given (the pinned one, else the latest).
    pub version: u32,
    /// A digest of that version's encrypted file: part of the Kubernetes Secret's name, so
    /// that a new version is a new object.
    pub digest: String,
    /// The value, only when it is to be written (`--include-secret-values`).
    pub value: Option<Vec<u8>>,
}

/// How to render.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Kubernetes: canary steps as an Argo Rollouts `Rollout`.
    pub argo_rollouts: bool,
    /// Kubernetes: routes as Gateway API HTTPRoutes attached to this Gateway (instead of
    /// Ingresses).
    pub gateway: Option<String>,
    /// Kubernetes: the namespace of the ingress controller (or gateway), allowed in by the
    /// NetworkPolicies of routed services. Default `ingress-nginx`.
    pub ingress_namespace: Option<String>,
    /// Kubernetes: write the Secret objects with their values.
    pub include_secret_values: bool,
    /// Cloud Run: the revision id now serving each service (as `orchestra history` shows
    /// it), so that a canary's first step splits traffic with it.
    pub stable_revisions: BTreeMap<String, String>,
    /// Every secret the manifest references, by name.
    pub secrets: BTreeMap<String, SecretVersion>,
}

/// What a schema validator can say about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schema {
    /// Built-in Kubernetes kinds (`kubernetes-validate` knows them).
    Kubernetes,
    /// `argoproj.io/v1alpha1` Rollout (a CRD without a published schema).
    ArgoRollout,
    /// `gateway.networking.k8s.io/v1` HTTPRoute (a CRD).
    GatewayApi,
    /// `serving.knative.dev/v1` Service.
    Knative,
    /// A Compose file.
    Compose,
}

/// One file of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path relative to the output directory (or the file name when there is one).
    pub path: String,
    /// The YAML text.
    pub contents: String,
    /// What describes its content.
    pub schema: Schema,
    /// It holds secret values (`--include-secret-values`): keep it out of version control.
    pub sensitive: bool,
}

/// The result of an export.
#[derive(Debug, Clone)]
pub struct Export {
    /// The files, sorted by path.
    pub files: Vec<OutputFile>,
    /// What happened to each field of the manifest.
    pub report: Report,
}

/// Why nothing could be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A secret a service references is not described in [`Options::secrets`].
    #[error(
        "{}:{}:{}: {path}: secret `{name}` is not in the secret store; set it with `orchestra secrets set {name}`",
        file.display(), at.line, at.col
    )]
    MissingSecret {
        /// The manifest.
        file: PathBuf,
        /// Where the reference is.
        at: Location,
        /// The field path of the reference.
        path: String,
        /// The secret.
        name: String,
    },
    /// `--include-secret-values` was asked but a value was not given.
    #[error(
        "{}:{}:{}: {path}: the value of secret `{name}` was not read, so it cannot be included",
        file.display(), at.line, at.col
    )]
    MissingSecretValue {
        /// The manifest.
        file: PathBuf,
        /// Where the reference is.
        at: Location,
        /// The field path of the reference.
        path: String,
        /// The secret.
        name: String,
    },
    /// No service of the manifest can run on the target; the report says why for each.
    #[error("no service of {} can be exported to {target}:\n{report}", file.display())]
    Nothing {
        /// The manifest.
        file: PathBuf,
        /// The target.
        target: &'static str,
        /// The report's text.
        report: String,
    },
}

/// The digest [`SecretVersion::digest`] expects, of a secret version's encrypted file.
#[must_use]
pub fn digest(bytes: &[u8]) -> String {
    common::short_hash(bytes)
}

/// The first line every exported file starts with (the CLI recognises its own files by it).
pub const HEADER_PREFIX: &str = "# Generated by `orchestra export ";

/// Renders `manifest` for `target`.
///
/// # Errors
/// [`ExportError`] when a referenced secret is unknown, or nothing can be rendered.
pub fn export(manifest: &Manifest, target: Target, opts: &Options) -> Result<Export, ExportError> {
    let export = match target {
        Target::K8s => kubernetes::render(manifest, opts)?,
        Target::Compose => compose::render(manifest, opts)?,
        Target::Cloudrun => cloudrun::render(manifest, opts)?,
    };
    if export.files.is_empty() {
        return Err(ExportError::Nothing {
            file: manifest.file.clone(),
            target: target.as_str(),
            report: export.report.to_string(),
        });
    }
    Ok(export)
}
