//! Definitions as they are written to state.db: without the values of
//! secret-looking variables or of anything read from an `env_file`. A stored
//! definition names what it left out; restoring one takes those values from
//! the manifest as it is now, and the revision id tells whether they changed.

use orchestra_manifest::Service;
use serde::{Deserialize, Serialize};

/// What a stored definition holds.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The definition, redacted values emptied.
    definition: Service,
    /// The variables whose values were left out.
    redacted: Vec<String>,
}

pub use orchestra_manifest::credential::secret_name;
use orchestra_manifest::credential::url_with_password;

/// The variables of `def` whose values must not reach the disk.
pub fn private_vars(def: &Service) -> Vec<String> {
    def.env
        .iter()
        // Whatever an env_file held is private: that is what env files are for.
        .filter(|(k, v)| {
            !def.env_files.is_empty()
                || def.secrets.contains(k)
                || secret_name(k)
                || url_with_password(v)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// Where a stored definition's secret values come back from: the secret
/// store, by the version the definition recorded.
pub trait SecretValues: Send + Sync + std::fmt::Debug {
    /// The value of version `version` of secret `name`, if it can be read.
    fn value(&self, name: &str, version: u32) -> Option<String>;
}

/// No secret store: secret values come from nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSecrets;

impl SecretValues for NoSecrets {
    fn value(&self, _name: &str, _version: u32) -> Option<String> {
        None
    }
}

/// The JSON written to state.db for `def`.
pub fn encode(def: &Service) -> String {
    let redacted = private_vars(def);
    let mut definition = def.clone();
    for k in &redacted {
        if let Some(v) = definition.env.get_mut(k) {
            v.clear();
        }
    }
    // File secrets come back by their recorded version, like env ones.
    for v in definition.secret_files.values_mut() {
        v.clear();
    }
    serde_json::to_string(&Stored {
        definition,
        redacted,
    })
    .unwrap_or_default()
}

/// A stored definition with the values it left out filled back in: a secret
/// at the version it recorded, from `secrets`; anything else from `current`
/// (the manifest's definition of the same service now). Returns the
/// definition and the variables it could not fill. Also reads definitions
/// stored before redaction existed.
pub fn decode(
    json: &str,
    current: Option<&Service>,
    secrets: &dyn SecretValues,
) -> Option<(Service, Vec<String>)> {
    let stored = match serde_json::from_str::<Stored>(json) {
        Ok(s) => s,
        Err(_) => {
            return serde_json::from_str::<Service>(json)
                .ok()
                .map(|d| (d, Vec::new()));
        }
    };
    let mut def = stored.definition;
    let mut missing = Vec::new();
    let files: Vec<String> = def.secret_files.keys().cloned().collect();
    for k in files {
        let value = def
            .secret_versions
            .get(&k)
            .and_then(|v| secrets.value(&k, *v));
        match value {
            Some(v) => {
                def.secret_files.insert(k, v);
            }
            None => missing.push(k),
        }
    }
    for k in stored.redacted {
        if let Some(version) = def.secret_versions.get(&k).copied() {
            match secrets.value(&k, version) {
                Some(v) => {
                    def.env.insert(k, v);
                }
                None => missing.push(k),
            }
            continue;
        }
        match current.and_then(|c| c.env.get(&k)) {
            Some(v) => {
                def.env.insert(k, v.clone());
            }
            None => missing.push(k),
        }
    }
    Some((def, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(env: &[(&str, &str)], env_file: bool) -> Service {
        let yaml = "services:\n  api:\n    command: [demo-service]\n";
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("orchestra.yaml");
        std::fs::write(&f, yaml).unwrap();
        let m = orchestra_manifest::load(&f, &orchestra_manifest::LoadOptions::default()).unwrap();
        let mut s = m.services[0].clone();
        s.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if env_file {
            s.env_files = vec![dir.path().join(".env.api")];
        }
        s
    }

    #[test]
    fn secret_values_never_reach_the_stored_text() {
        let s = service(
            &[
                ("OPENAI_API_KEY", "sk-live-123456"),
                ("db_password", "hunter2"),
                // orchestra: ignore[secret-url-credentials] test value
                ("DATABASE_URL", "postgres://app:pw-in-url@db/app"),
                ("LOG_LEVEL", "debug"),
            ],
            false,
        );
        let text = encode(&s);
        for secret in ["sk-live-123456", "hunter2", "pw-in-url"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("debug"), "plain values stay: {text}");
        let (back, missing) = decode(&text, Some(&s), &NoSecrets).unwrap();
        assert!(missing.is_empty());
        assert_eq!(back.revision(), s.revision());
    }

    #[test]
    fn everything_from_an_env_file_is_private_and_a_changed_value_shows_in_the_revision() {
        let s = service(&[("MODEL", "gpt-5")], true);
        let text = encode(&s);
        assert!(!text.contains("gpt-5"), "{text}");
        let mut now = s.clone();
        now.env.insert("MODEL".into(), "gpt-6".into());
        let (back, _) = decode(&text, Some(&now), &NoSecrets).unwrap();
        assert_ne!(back.revision(), s.revision());
        let (_, missing) = decode(&text, None, &NoSecrets).unwrap();
        assert_eq!(missing, ["MODEL"]);
    }

    #[test]
    fn a_secret_comes_back_at_the_version_the_definition_recorded() {
        #[derive(Debug)]
        struct Store;
        impl SecretValues for Store {
            fn value(&self, name: &str, version: u32) -> Option<String> {
                (name == "MODEL_TOKEN").then(|| format!("value-{version}"))
            }
        }
        let mut s = service(&[("MODEL_TOKEN", "value-2")], false);
        s.secrets = vec!["MODEL_TOKEN".into()];
        s.secret_versions.insert("MODEL_TOKEN".into(), 2);
        let text = encode(&s);
        assert!(!text.contains("value-2"), "{text}");
        // The manifest has moved on to version 3; the stored revision still says 2.
        let mut now = s.clone();
        now.env.insert("MODEL_TOKEN".into(), "value-3".into());
        let (back, missing) = decode(&text, Some(&now), &Store).unwrap();
        assert!(missing.is_empty());
        assert_eq!(back.env["MODEL_TOKEN"], "value-2");
        assert_eq!(back.revision(), s.revision());
        let (_, missing) = decode(&text, Some(&now), &NoSecrets).unwrap();
        assert_eq!(missing, ["MODEL_TOKEN"]);
    }

    #[test]
    fn names_that_look_secret() {
        for n in [
            "OPENAI_API_KEY",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "PGPASSWORD",
            "SENTRY_DSN",
            "auth_header",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in ["PORT", "LOG_LEVEL", "MODEL_NAME", "WORKERS", "PATH"] {
            assert!(!secret_name(n), "{n}");
        }
    }
}
