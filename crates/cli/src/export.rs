//! `orchestra export k8s|compose|cloudrun`: the manifest rendered for another engine.
//! The rendering is `orchestra-export`'s (pure); this module reads the secret store,
//! writes the files and prints the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use orchestra_export::{Export, Options, Outcome, SecretVersion, Target};
use orchestra_manifest::Manifest;
use orchestra_secrets::{Identity, Store, Version};

use crate::project::{load_or_report, render_diagnostics};

const EXPORT_HELP: &str = "\
Every field written in the manifest is reported: mapped, approximated (with how it
differs) or impossible on the target (with what to do instead), with file:line:col.
The approximated and impossible ones print on stderr; --json prints them all.
The output is deterministic: the same manifest and store give byte-identical files.

Examples:
  orchestra export k8s -o deploy/k8s
  orchestra export k8s --env prod --rollouts argo --gateway public
  orchestra export k8s -o - | kubectl apply --dry-run=server -f -
  orchestra export compose -o compose.yaml
  orchestra export cloudrun -o deploy/cloudrun --stable api=3f2a9c1b0d4e";

/// `orchestra export`
#[derive(Debug, Args)]
#[command(after_long_help = EXPORT_HELP)]
pub struct ExportArgs {
    /// The engine to render for.
    #[command(subcommand)]
    pub target: ExportTarget,
}

/// The targets.
#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Kubernetes: a Deployment, Service, ConfigMap, NetworkPolicy (and PodDisruptionBudget,
    /// Ingress) per container service; one file per service.
    K8s(K8sArgs),
    /// A Compose file that `orchestra import` reads back.
    Compose(ComposeArgs),
    /// Cloud Run: a Knative Service per routed container service (`gcloud run services replace`).
    Cloudrun(CloudRunArgs),
}

/// What every target takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The manifest file (same as the top-level -f).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Apply the overlay `env.<ENV>` (and take secrets from that store environment).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
    /// Print the report (every field, with its outcome) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `orchestra export k8s`
#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Output directory (`-`: every file to stdout, one YAML stream).
    #[arg(short = 'o', long, value_name = "DIR", default_value = "k8s")]
    output: PathBuf,
    /// Canary services as Argo Rollouts `Rollout`s (else a rolling update, with a note).
    #[arg(long, value_name = "KIND", value_parser = ["argo"])]
    rollouts: Option<String>,
    /// Routes as Gateway API HTTPRoutes attached to this Gateway (else Ingresses).
    #[arg(long, value_name = "GATEWAY")]
    gateway: Option<String>,
    /// The namespace of the ingress controller (or Gateway), which the NetworkPolicies of
    /// routed services let in.
    #[arg(long, value_name = "NAMESPACE", default_value = "ingress-nginx")]
    ingress_namespace: String,
    /// Write the Secret objects with their values (secrets.yaml, mode 0600; needs your age key).
    #[arg(long)]
    include_secret_values: bool,
}

/// `orchestra export compose`
#[derive(Debug, Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Output file (`-` for stdout).
    #[arg(short = 'o', long, value_name = "FILE", default_value = "-")]
    output: PathBuf,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
}

/// `orchestra export cloudrun`
#[derive(Debug, Args)]
pub struct CloudRunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Output directory (`-`: every file to stdout).
    #[arg(short = 'o', long, value_name = "DIR", default_value = "cloudrun")]
    output: PathBuf,
    /// SERVICE=REVISION: the revision serving now (as `orchestra history` shows it), so
    /// that a canary's first step splits traffic between it and the new one (repeatable).
    #[arg(long, value_name = "SERVICE=REVISION")]
    stable: Vec<String>,
}

/// `orchestra export ...`
pub fn run(top_file: Option<&Path>, a: &ExportArgs) -> anyhow::Result<ExitCode> {
    let (common, target) = match &a.target {
        ExportTarget::K8s(k) => (&k.common, Target::K8s),
        ExportTarget::Compose(c) => (&c.common, Target::Compose),
        ExportTarget::Cloudrun(c) => (&c.common, Target::Cloudrun),
    };
    let file = common.file.as_deref().or(top_file);
    let Some(m) = load_or_report(file, common.environment.as_deref())? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut opts = Options::default();
    let mut output = PathBuf::new();
    let mut force = true;
    match &a.target {
        ExportTarget::K8s(k) => {
            opts.argo_rollouts = k.rollouts.is_some();
            opts.gateway.clone_from(&k.gateway);
            opts.ingress_namespace = Some(k.ingress_namespace.clone());
            opts.include_secret_values = k.include_secret_values;
            output.clone_from(&k.output);
        }
        ExportTarget::Compose(c) => {
            output.clone_from(&c.output);
            force = c.force;
        }
        ExportTarget::Cloudrun(c) => {
            for s in &c.stable {
                let Some((svc, rev)) = s.split_once('=') else {
                    anyhow::bail!("--stable {s}: expected SERVICE=REVISION");
                };
                if m.service(svc).is_none() {
                    anyhow::bail!("--stable {s}: the manifest has no service `{svc}`");
                }
                opts.stable_revisions.insert(svc.to_owned(), rev.to_owned());
            }
            output.clone_from(&c.output);
        }
    }
    if common.json && output.as_os_str() == "-" {
        anyhow::bail!("--json prints the report on stdout: write the files elsewhere with -o");
    }
    if target != Target::Compose {
        match secret_versions(&m, opts.include_secret_values) {
            Ok(s) => opts.secrets = s,
            Err(diags) => {
                eprint!("{}", render_diagnostics(&diags));
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let export = orchestra_export::export(&m, target, &opts)?;
    write(&export, target, &output, force)?;
    report(&export, target, &output, common.json)?;
    Ok(ExitCode::SUCCESS)
}

/// The version (pinned, else latest) and a digest of every secret the manifest
/// references, with the values when they are to be written.
fn secret_versions(
    m: &Manifest,
    with_values: bool,
) -> Result<BTreeMap<String, SecretVersion>, Vec<orchestra_manifest::Diagnostic>> {
    let store = Store::open(orchestra_secrets::store_dir(&m.dir));
    let all: Vec<String> = m.services.iter().map(|s| s.name.clone()).collect();
    let missing = crate::inject::missing(m, &store, &all);
    if !missing.is_empty() {
        return Err(missing);
    }
    let env = crate::inject::environment(m);
    let mut identity: Option<Identity> = None;
    let mut out = BTreeMap::new();
    for svc in &m.services {
        for (i, name) in svc.secrets.iter().enumerate() {
            if out.contains_key(name) {
                continue;
            }
            let at = svc.secret_locations.get(i).copied().unwrap_or(svc.location);
            let diag = |message: String| {
                vec![orchestra_manifest::Diagnostic::new(
                    &m.file,
                    at,
                    format!("services.{}.secrets[{i}]", svc.name),
                    message,
                )]
            };
            let pinned = svc.secret_options.get(name).and_then(|o| o.version);
            let version = match pinned {
                Some(v) => v,
                None => match store.latest(&env, name) {
                    Ok(Some(v)) => v,
                    Ok(None) => return Err(diag(format!("secret `{name}` has no version"))),
                    Err(e) => return Err(diag(e.to_string())),
                },
            };
            let path = store.version_path(&env, name, version);
            let bytes = std::fs::read(&path)
                .map_err(|e| diag(format!("cannot read {}: {e}", path.display())))?;
            let value = if with_values {
                if identity.is_none() {
                    let id = orchestra_secrets::default_key_path()
                        .and_then(|p| Identity::load(&p))
                        .map_err(|e| diag(e.to_string()))?;
                    identity = Some(id);
                }
                let Some(id) = identity.as_ref() else {
                    return Err(diag("no identity".to_owned()));
                };
                let v = store
                    .get(&env, name, Version::Number(version), id)
                    .map_err(|e| diag(e.to_string()))?;
                Some(v.to_vec())
            } else {
                None
            };
            out.insert(
                name.clone(),
                SecretVersion {
                    version,
                    digest: orchestra_export::digest(&bytes),
                    value,
                },
            );
        }
    }
    Ok(out)
}

/// Writes the files; returns the paths written and the stale ones removed.
fn write(
    export: &Export,
    target: Target,
    output: &Path,
    force: bool,
) -> anyhow::Result<Vec<String>> {
    use std::io::Write as _;
    if output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        for f in &export.files {
            out.write_all(f.contents.as_bytes())?;
        }
        out.flush()?;
        return Ok(Vec::new());
    }
    if target == Target::Compose {
        let Some(f) = export.files.first() else {
            return Ok(Vec::new());
        };
        if output.exists() && !force {
            anyhow::bail!(
                "{} exists; pass --force to overwrite it, or -o to write elsewhere",
                output.display()
            );
        }
        replace(output, f.contents.as_bytes(), 0o644)?;
        return Ok(vec![output.display().to_string()]);
    }
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let mut written = Vec::new();
    for f in &export.files {
        let path = output.join(&f.path);
        replace(
            &path,
            f.contents.as_bytes(),
            if f.sensitive { 0o600 } else { 0o644 },
        )?;
        written.push(path.display().to_string());
    }
    // Files an earlier export wrote that this one does not (a service removed since)
    // would still be applied with the directory: remove them.
    let keep: Vec<&str> = export.files.iter().map(|f| f.path.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(output) {
        let mut stale: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "yaml")
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !keep.contains(&n))
                    && std::fs::read_to_string(p).is_ok_and(|t| {
                        t.starts_with(&format!(
                            "{}{}`",
                            orchestra_export::HEADER_PREFIX,
                            target.as_str()
                        ))
                    })
            })
            .collect();
        stale.sort();
        for p in stale {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            eprintln!(
                "removed {} (written by an earlier export, no longer rendered)",
                p.display()
            );
        }
    }
    Ok(written)
}

/// Write beside, then rename: a failed write never leaves half a file.
fn replace(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("yaml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn report(export: &Export, target: Target, output: &Path, json: bool) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let shown = |p: &Path| p.strip_prefix(&cwd).unwrap_or(p).display().to_string();
    if json {
        let doc = serde_json::json!({
            "schema": 1,
            "target": target,
            "output": output,
            "files": export.files.iter().map(|f| serde_json::json!({
                "path": f.path, "schema": f.schema, "sensitive": f.sensitive, "bytes": f.contents.len(),
            })).collect::<Vec<_>>(),
            "notes": export.report.notes,
            "counts": {
                "mapped": export.report.count(Outcome::Mapped),
                "approximated": export.report.count(Outcome::Approximated),
                "impossible": export.report.count(Outcome::Impossible),
            },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for n in export
            .report
            .notes
            .iter()
            .filter(|n| n.outcome != Outcome::Mapped)
        {
            eprintln!(
                "{}:{}:{}: {}: {}: {}",
                shown(&n.file),
                n.line,
                n.col,
                n.path,
                n.outcome,
                n.message
            );
        }
    }
    let to = if output.as_os_str() == "-" {
        "stdout".to_owned()
    } else {
        output.display().to_string()
    };
    eprintln!(
        "exported {} file{} for {} to {to}: {}",
        export.files.len(),
        if export.files.len() == 1 { "" } else { "s" },
        target.as_str(),
        export.report.summary()
    );
    if export.files.iter().any(|f| f.sensitive) {
        eprintln!(
            "warning: {} hold{} secret values: keep {} out of version control",
            export
                .files
                .iter()
                .filter(|f| f.sensitive)
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if export.files.iter().filter(|f| f.sensitive).count() == 1 {
                "s"
            } else {
                ""
            },
            if export.files.iter().filter(|f| f.sensitive).count() == 1 {
                "it"
            } else {
                "them"
            },
        );
    }
    Ok(())
}
