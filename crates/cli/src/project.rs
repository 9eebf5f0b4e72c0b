//! Finding and loading the project's manifest, and `orchestra validate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use orchestra_manifest::{Diagnostic, LoadError, LoadOptions, Manifest};
use orchestra_server::Paths;

use crate::args::{ImportArgs, ValidateArgs};

/// The manifest file: `-f` as given, else the nearest `orchestra.yaml`.
pub fn manifest_path(file: Option<&Path>) -> anyhow::Result<PathBuf> {
    match file {
        Some(f) => {
            if f.is_file() {
                Ok(std::path::absolute(f).unwrap_or_else(|_| f.to_owned()))
            } else {
                anyhow::bail!("manifest {} does not exist", f.display())
            }
        }
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            Ok(orchestra_manifest::find_manifest(&cwd)?)
        }
    }
}

/// The runtime paths of the project whose manifest this is.
pub fn project_paths(file: Option<&Path>) -> anyhow::Result<Paths> {
    let m = manifest_path(file)?;
    let dir = m.parent().map(Path::to_owned).unwrap_or_default();
    Ok(Paths::for_project(&dir))
}

/// Load options from the process environment.
pub fn load_options(environment: Option<&str>) -> LoadOptions {
    LoadOptions {
        environment: environment.map(str::to_owned),
        vars: std::env::vars().collect::<BTreeMap<_, _>>(),
    }
}

/// When the project is a bare Compose file (no orchestra.yaml beside it), say so and
/// what its import changed, on stderr: the same notes `orchestra import` prints.
pub fn report_import(file: Option<&Path>) {
    let Ok(path) = manifest_path(file) else {
        return;
    };
    if !orchestra_manifest::is_compose_file(&path) {
        return;
    }
    // A file that does not import is reported by the load itself.
    let Ok(imported) = orchestra_manifest::compose::import_file(&path) else {
        return;
    };
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    for n in &imported.notes {
        match &n.file {
            Some(f) => eprintln!("{}:{n}", f.display()),
            None => eprintln!("{name}:{n}"),
        }
    }
    eprintln!(
        "no orchestra.yaml: running {name} as imported ({}); `orchestra import` writes it down",
        imported.summary()
    );
}

/// Load and validate; on errors, print them all and return `None`.
pub fn load_or_report(
    file: Option<&Path>,
    environment: Option<&str>,
) -> anyhow::Result<Option<Manifest>> {
    let path = manifest_path(file)?;
    match orchestra_manifest::load(&path, &load_options(environment)) {
        Ok(m) => Ok(Some(m)),
        Err(LoadError::Invalid(diags)) => {
            eprint!("{}", render_diagnostics(&diags));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Diagnostics as a person reads them: the message, then the source line
/// with a caret under the column.
pub fn render_diagnostics(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    let mut sources: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for d in diags {
        out.push_str(&format!("error: {d}\n"));
        let lines = sources.entry(d.file.clone()).or_insert_with(|| {
            std::fs::read_to_string(&d.file)
                .map(|s| s.lines().map(str::to_owned).collect())
                .unwrap_or_default()
        });
        if let Some(src) = d.line.checked_sub(1).and_then(|i| lines.get(i)) {
            let gutter = d.line.to_string().len();
            out.push_str(&format!("{:gutter$} |\n", ""));
            out.push_str(&format!("{} | {}\n", d.line, src));
            out.push_str(&format!(
                "{:gutter$} | {:>col$}\n",
                "",
                "^",
                col = d.col.max(1)
            ));
        }
    }
    out.push_str(&format!(
        "{} error{} found\n",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    ));
    out
}

/// `orchestra validate`
pub fn validate(file: Option<&Path>, a: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let path = manifest_path(file)?;
    if !a.json {
        report_import(file);
    }
    let res =
        orchestra_manifest::load(&path, &load_options(a.environment.as_deref())).and_then(|m| {
            // A secret the store lacks is a manifest error: it names where it is referenced.
            let store = orchestra_secrets::Store::open(orchestra_secrets::store_dir(&m.dir));
            let all: Vec<String> = m.services.iter().map(|s| s.name.clone()).collect();
            let missing = crate::inject::missing(&m, &store, &all);
            if missing.is_empty() {
                Ok(m)
            } else {
                Err(LoadError::Invalid(missing))
            }
        });
    match res {
        Ok(m) => {
            if a.json {
                let doc = serde_json::json!({
                    "valid": true,
                    "file": path,
                    "errors": [],
                    "manifest": m,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                let env = m
                    .environment
                    .as_deref()
                    .map(|e| format!(" (env {e})"))
                    .unwrap_or_default();
                println!(
                    "{}: valid{env}: project `{}`, {} service{}: {}",
                    path.display(),
                    m.name,
                    m.services.len(),
                    if m.services.len() == 1 { "" } else { "s" },
                    m.services
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid(diags)) => {
            if a.json {
                let doc = serde_json::json!({ "valid": false, "file": path, "errors": diags });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                eprint!("{}", render_diagnostics(&diags));
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// `orchestra import`: the manifest goes to the output, the report to stderr.
pub fn import(a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let imported = orchestra_manifest::compose::import_file(&a.compose)?;
    let report = |to: &str| {
        for n in &imported.notes {
            eprintln!("{}:{n}", n.file_or(&a.compose).display());
        }
        eprintln!(
            "imported {} into {to}: {}",
            a.compose.display(),
            imported.summary()
        );
    };
    if a.strict {
        let refused: Vec<String> = imported
            .strict_notes()
            .map(|n| format!("  {}:{n}", n.file_or(&a.compose).display()))
            .collect();
        if !refused.is_empty() {
            eprintln!(
                "orchestra import --strict: nothing written: {} unknown key(s) or dropped dependencies:\n{}",
                refused.len(),
                refused.join("\n")
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let out = a.output.clone().unwrap_or_else(|| {
        a.compose
            .parent()
            .map(|d| d.join("orchestra.yaml"))
            .unwrap_or_else(|| PathBuf::from("orchestra.yaml"))
    });
    if out.as_os_str() == "-" {
        print!("{}", imported.yaml);
        report("stdout");
        // Checked as if written beside the Compose file, so relative paths resolve.
        let beside = a.compose.parent().map_or_else(
            || PathBuf::from("orchestra.yaml"),
            |d| d.join("orchestra.yaml"),
        );
        return match orchestra_manifest::load_str(&imported.yaml, &beside, &load_options(None)) {
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(LoadError::Invalid(mut diags)) => {
                for d in &mut diags {
                    if d.file == beside {
                        d.file = PathBuf::from("orchestra.yaml (stdout)");
                    }
                }
                eprint!("{}", render_diagnostics(&diags));
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e.into()),
        };
    }
    if out.exists() && !a.force {
        anyhow::bail!(
            "{} exists; pass --force to overwrite it, or -o to write elsewhere",
            out.display()
        );
    }
    // Write beside, then rename: a failed write never leaves half a manifest.
    let tmp = out.with_extension("yaml.tmp");
    std::fs::write(&tmp, &imported.yaml)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("cannot write {}", out.display()))?;
    report(&out.display().to_string());
    // The output must validate; say so now rather than at `up`.
    match orchestra_manifest::load(&out, &load_options(None)) {
        Ok(m) => {
            eprintln!("{}: valid, {} services", out.display(), m.services.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid(diags)) => {
            eprint!("{}", render_diagnostics(&diags));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
