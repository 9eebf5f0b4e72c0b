//! The age identity and the secrets the selected services reference: what
//! `up` checks and decrypts, done the same way (values are decrypted, never
//! printed, and dropped).

use std::os::unix::fs::PermissionsExt;

use orchestra_manifest::Diagnostic;
use orchestra_secrets::{Error as SecretsError, Identity, Store};

use super::{Check, Ctx, mode_str};
use crate::inject;

const ID: &str = "secrets";

/// The `secrets` check.
pub fn check(ctx: &Ctx<'_>) -> Check {
    let m = ctx.manifest;
    let names = ctx.names();
    let referenced: usize = ctx.selected.iter().map(|s| s.secrets.len()).sum();
    if referenced == 0 {
        return Check::skip(ID, "no selected service lists `secrets:`");
    }
    let env = inject::environment(m);
    let store = Store::open(orchestra_secrets::store_dir(&m.dir));
    if let Err(missing) = inject::check(m, &store, &names) {
        let names: Vec<String> = missing.iter().filter_map(|d| secret_name(ctx, d)).collect();
        let set = names
            .iter()
            .map(|n| {
                if env == "default" {
                    format!("`orchestra secrets set {n}`")
                } else {
                    format!("`orchestra secrets set {n} --env {env}`")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Check::fail(
            ID,
            format!(
                "{} referenced secret{} not in the store for environment `{env}` ({}/): {}",
                missing.len(),
                if missing.len() == 1 { " is" } else { "s are" },
                ctx.show(store.dir()),
                names.join(", ")
            ),
            format!(
                "store {} (the value on stdin): {set}",
                if names.len() == 1 { "it" } else { "each" }
            ),
        )
        .detail(lines(&missing));
    }
    let key = match orchestra_secrets::default_key_path() {
        Ok(k) => k,
        Err(e) => {
            return Check::fail(
                ID,
                e.to_string(),
                "set ORCHESTRA_AGE_KEY_FILE to your key file, or HOME for ~/.config/orchestra/age.key",
            );
        }
    };
    let identity = match Identity::load(&key) {
        Ok(id) => id,
        Err(SecretsError::IdentityMissing { path }) => {
            return Check::fail(
                ID,
                format!(
                    "no age identity at {}, so the {referenced} referenced secret{} cannot be decrypted",
                    path.display(),
                    if referenced == 1 { "" } else { "s" }
                ),
                "set ORCHESTRA_AGE_KEY_FILE to your key file; without one, `orchestra secrets init` creates a key and prints its recipient for someone with access to add (`orchestra secrets recipients add age1...`)",
            );
        }
        Err(e) => {
            return Check::fail(
                ID,
                e.to_string(),
                "point ORCHESTRA_AGE_KEY_FILE at an age identity file (AGE-SECRET-KEY-1..., as `age-keygen` writes)",
            );
        }
    };
    match store.check_access(&identity) {
        Ok(()) => {}
        Err(SecretsError::NotARecipient { recipient, path }) => {
            return Check::fail(
                ID,
                format!(
                    "the key {} cannot read the secrets: its recipient {recipient} is not in {}",
                    key.display(),
                    ctx.show(&path)
                ),
                format!(
                    "ask someone with access to run `orchestra secrets recipients add {recipient}`, or set ORCHESTRA_AGE_KEY_FILE to the key you were given access with"
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                ID,
                e.to_string(),
                "run `orchestra secrets init` to create the recipients file, or restore secrets/recipients.txt from version control",
            );
        }
    }
    // Decrypt as `up` does, into a copy that is dropped.
    let mut copy = m.clone();
    let mut id = Some(identity);
    let decrypted = inject::inject(&mut copy, &store, &names, || {
        id.take()
            .ok_or_else(|| "the identity was already used".to_owned())
    });
    drop(copy);
    let mut check = match decrypted {
        Ok(n) => Check::pass(
            ID,
            format!(
                "{} decrypts {} (environment `{env}`)",
                key.display(),
                if n == 1 {
                    "the referenced secret".to_owned()
                } else {
                    format!("all {n} referenced secrets")
                }
            ),
        ),
        Err(problems) => {
            return Check::fail(
                ID,
                format!(
                    "{} of the referenced secrets cannot be read with {}",
                    problems.len(),
                    key.display()
                ),
                "re-store them with `orchestra secrets set NAME` (or ask whoever wrote them to re-encrypt with `orchestra secrets recipients add` your recipient)",
            )
            .detail(lines(&problems));
        }
    };
    // The key should be its owner's alone.
    if let Ok(meta) = std::fs::metadata(&key) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            if ctx.fix {
                match std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => check.fixed.push(format!(
                        "chmod 600 {} (was {})",
                        key.display(),
                        mode_str(mode)
                    )),
                    Err(e) => {
                        return Check::warn(
                            ID,
                            format!(
                                "{}; its mode {} cannot be changed: {e}",
                                check.summary,
                                mode_str(mode)
                            ),
                            format!("chmod 600 {}", key.display()),
                        );
                    }
                }
            } else {
                return Check::warn(
                    ID,
                    format!(
                        "{}, but the key's mode {} lets others read it",
                        check.summary,
                        mode_str(mode)
                    ),
                    format!(
                        "chmod 600 {} (or run `orchestra doctor --fix`)",
                        key.display()
                    ),
                );
            }
        }
    }
    check.detail = None;
    check
}

/// The secret a diagnostic from [`inject::missing`] is about: its path is
/// `services.NAME.secrets[I]`.
fn secret_name(ctx: &Ctx<'_>, d: &Diagnostic) -> Option<String> {
    let rest = d.path.strip_prefix("services.")?.strip_suffix(']')?;
    let (service, index) = rest.rsplit_once(".secrets[")?;
    let svc = ctx.manifest.service(service)?;
    svc.secrets.get(index.parse::<usize>().ok()?).cloned()
}

fn lines(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}: {}: {}",
                d.file.display(),
                d.line,
                d.col,
                d.path,
                d.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
