//! Secrets into services: each name a service lists under `secrets:` becomes
//! an environment variable of that service, with the latest version in the
//! store for the manifest's environment (`--env`, else `default`). The
//! version goes with the definition, so its release records it and a
//! rollback restores it; state.db keeps the name and version, never the value.

use orchestra_deploy::stored::SecretValues;
use orchestra_manifest::{Diagnostic, Location, Manifest};
use orchestra_secrets::{Identity, Store, Version};

/// The store environment a manifest's secrets come from.
pub fn environment(m: &Manifest) -> String {
    m.environment
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

fn set_command(name: &str, env: &str) -> String {
    if env == "default" {
        format!("`orchestra secrets set {name}`")
    } else {
        format!("`orchestra secrets set {name} --env {env}`")
    }
}

/// Every secret reference of `services` whose latest version the store lacks.
pub fn missing(m: &Manifest, store: &Store, services: &[String]) -> Vec<Diagnostic> {
    let env = environment(m);
    let mut out = Vec::new();
    for svc in m.services.iter().filter(|s| services.contains(&s.name)) {
        for (i, name) in svc.secrets.iter().enumerate() {
            let pinned = svc.secret_options.get(name).and_then(|o| o.version);
            let version = pinned.map_or(Version::Latest, Version::Number);
            if !store.exists(&env, name, version).unwrap_or(false) {
                let at = svc.secret_locations.get(i).copied().unwrap_or(svc.location);
                out.push(
                    Diagnostic::new(
                        &m.file,
                        at,
                        format!("services.{}.secrets[{i}]", svc.name),
                        format!(
                            "secret `{name}`{} is not in the store for environment `{env}` ({})",
                            pinned.map(|v| format!(" version {v}")).unwrap_or_default(),
                            store.dir().display()
                        ),
                    )
                    .hint(format!("set it with {}", set_command(name, &env))),
                );
            }
        }
    }
    out
}

/// Put the latest version of every secret of `services` into their `env`.
/// All or nothing: on any problem nothing is injected and every problem is returned.
pub fn inject(
    m: &mut Manifest,
    store: &Store,
    services: &[String],
    identity: impl FnOnce() -> Result<Identity, String>,
) -> Result<usize, Vec<Diagnostic>> {
    let wanted = m
        .services
        .iter()
        .any(|s| services.contains(&s.name) && !s.secrets.is_empty());
    if !wanted {
        return Ok(0);
    }
    check(m, store, services)?;
    let identity = identity().map_err(|e| vec![at_first_reference(m, services, e)])?;
    let env = environment(m);
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for (si, svc) in m.services.iter().enumerate() {
        if !services.contains(&svc.name) {
            continue;
        }
        for (i, name) in svc.secrets.iter().enumerate() {
            let at = svc.secret_locations.get(i).copied().unwrap_or(svc.location);
            let path = format!("services.{}.secrets[{i}]", svc.name);
            let pinned = svc.secret_options.get(name).and_then(|o| o.version);
            let read = match pinned {
                Some(v) => Ok(Some(v)),
                None => store.latest(&env, name).map_err(|e| e.to_string()),
            }
            .and_then(|v| v.ok_or_else(|| format!("secret `{name}` has no version")))
                .and_then(|v| {
                    let bytes = store
                        .get(&env, name, Version::Number(v), &identity)
                        .map_err(|e| e.to_string())?;
                    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                        format!(
                            "secret `{name}` version {v} is not UTF-8 text, so it cannot be an environment variable"
                        )
                    })?;
                    Ok((v, text))
                });
            match read {
                Ok((v, text)) => values.push((si, name.clone(), v, text)),
                Err(message) => problems.push(Diagnostic::new(&m.file, at, path, message)),
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let n = values.len();
    for (si, name, version, text) in values {
        let svc = &mut m.services[si];
        if svc.secret_as_file(&name) {
            svc.secret_files.insert(name.clone(), text);
        } else {
            svc.env.insert(name.clone(), text);
        }
        svc.secret_versions.insert(name, version);
    }
    Ok(n)
}

/// A problem with the key, said at the first reference that needs it.
fn at_first_reference(m: &Manifest, services: &[String], message: String) -> Diagnostic {
    let (at, path) = m
        .services
        .iter()
        .find(|s| services.contains(&s.name) && !s.secrets.is_empty())
        .map(|s| {
            (
                s.secret_locations.first().copied().unwrap_or(s.location),
                format!("services.{}.secrets", s.name),
            )
        })
        .unwrap_or((Location::default(), "secrets".to_owned()));
    Diagnostic::new(&m.file, at, path, message)
}

/// That the key loads and is one the store is encrypted to, without reading
/// a value (so `up -d` says it here, not from the daemon's log).
pub fn check_key(
    m: &Manifest,
    store: &Store,
    services: &[String],
    identity: impl FnOnce() -> Result<Identity, String>,
) -> Result<(), Vec<Diagnostic>> {
    let wanted = m
        .services
        .iter()
        .any(|s| services.contains(&s.name) && !s.secrets.is_empty());
    if !wanted {
        return Ok(());
    }
    let id = identity().map_err(|e| vec![at_first_reference(m, services, e)])?;
    store.check_access(&id).map_err(|e| {
        let message = match e {
            orchestra_secrets::Error::NotARecipient { recipient, path } => format!(
                "the key {} cannot read the secrets: its recipient {recipient} is not in {}; ask someone with access to run `orchestra secrets recipients add {recipient}`",
                id.path().display(),
                path.display()
            ),
            other => other.to_string(),
        };
        vec![at_first_reference(m, services, message)]
    })
}

/// What `inject` refuses, without reading a value: missing secrets.
pub fn check(m: &Manifest, store: &Store, services: &[String]) -> Result<(), Vec<Diagnostic>> {
    let problems = missing(m, store, services);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The store, read with the user's identity, as the daemon's source of
/// secret values by version (recovery and cold rollbacks).
#[derive(Debug)]
pub struct StoreValues {
    store: Store,
    env: String,
    key_file: Option<std::path::PathBuf>,
}

impl StoreValues {
    /// The store beside the manifest, for its environment.
    pub fn new(m: &Manifest) -> Self {
        StoreValues {
            store: Store::open(orchestra_secrets::store_dir(&m.dir)),
            env: environment(m),
            key_file: orchestra_secrets::default_key_path().ok(),
        }
    }
}

impl SecretValues for StoreValues {
    fn value(&self, name: &str, version: u32) -> Option<String> {
        let identity = Identity::load(self.key_file.as_deref()?).ok()?;
        let bytes = self
            .store
            .get(&self.env, name, Version::Number(version), &identity)
            .ok()?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}
