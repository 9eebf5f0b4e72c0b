//! Facts rules share: end-of-life dates of common base images, version parsing, which
//! names hold secrets (placeholder values: [`crate::rules::scan::is_placeholder`]).
//!
//! Dates are upstream end-of-support dates (security fixes stop). Rules compare them to
//! `Settings::today`, so tests control time and the table ages correctly.

use std::fmt::Write;

use crate::config::Date;
use crate::parse::ImageRef;

/// Leading numeric version of a tag: `3.11.4-slim` → `[3, 11, 4]`, `16-alpine` → `[16]`.
#[must_use]
pub fn leading_version(tag: &str) -> Vec<u32> {
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    let end = tag
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(tag.len());
    tag[..end]
        .split('.')
        .map_while(|p| p.parse().ok())
        .collect()
}

/// (image, version prefix, end of life). A version matches when its leading components
/// equal the prefix (`3.7` matches `3.7.12`).
/// (year, month, day).
type Ymd = (i32, u8, u8);

const EOL: &[(&str, &[u32], Ymd)] = &[
    ("python", &[2], (2020, 1, 1)),
    ("python", &[3, 5], (2020, 9, 13)),
    ("python", &[3, 6], (2021, 12, 23)),
    ("python", &[3, 7], (2023, 6, 27)),
    ("python", &[3, 8], (2024, 10, 7)),
    ("python", &[3, 9], (2025, 10, 31)),
    ("python", &[3, 10], (2026, 10, 31)),
    ("node", &[10], (2021, 4, 30)),
    ("node", &[12], (2022, 4, 30)),
    ("node", &[14], (2023, 4, 30)),
    ("node", &[15], (2021, 6, 1)),
    ("node", &[16], (2023, 9, 11)),
    ("node", &[17], (2022, 6, 1)),
    ("node", &[18], (2025, 4, 30)),
    ("node", &[19], (2023, 6, 1)),
    ("node", &[20], (2026, 4, 30)),
    ("node", &[21], (2024, 6, 1)),
    ("node", &[23], (2025, 6, 1)),
    ("golang", &[1, 19], (2023, 8, 8)),
    ("golang", &[1, 20], (2024, 2, 6)),
    ("golang", &[1, 21], (2024, 8, 13)),
    ("golang", &[1, 22], (2025, 2, 11)),
    ("golang", &[1, 23], (2025, 8, 12)),
    ("ruby", &[2], (2023, 3, 31)),
    ("ruby", &[3, 0], (2024, 4, 23)),
    ("ruby", &[3, 1], (2025, 3, 26)),
    ("php", &[5], (2018, 12, 31)),
    ("php", &[7], (2022, 11, 28)),
    ("php", &[8, 0], (2023, 11, 26)),
    ("php", &[8, 1], (2025, 12, 31)),
    ("postgres", &[9], (2021, 11, 11)),
    ("postgres", &[10], (2022, 11, 10)),
    ("postgres", &[11], (2023, 11, 9)),
    ("postgres", &[12], (2024, 11, 21)),
    ("postgres", &[13], (2025, 11, 13)),
    ("mysql", &[5], (2023, 10, 31)),
    ("redis", &[5], (2022, 4, 30)),
    ("redis", &[6, 0], (2023, 8, 31)),
    ("debian", &[8], (2020, 6, 30)),
    ("debian", &[9], (2022, 6, 30)),
    ("debian", &[10], (2024, 6, 30)),
    ("ubuntu", &[14], (2019, 4, 30)),
    ("ubuntu", &[16], (2021, 4, 30)),
    ("ubuntu", &[18], (2023, 5, 31)),
    ("ubuntu", &[20], (2025, 5, 31)),
    ("ubuntu", &[23], (2024, 7, 11)),
    ("alpine", &[3, 14], (2023, 5, 1)),
    ("alpine", &[3, 15], (2023, 11, 1)),
    ("alpine", &[3, 16], (2024, 5, 23)),
    ("alpine", &[3, 17], (2024, 11, 22)),
    ("alpine", &[3, 18], (2025, 5, 9)),
    ("alpine", &[3, 19], (2025, 11, 1)),
    ("centos", &[], (2024, 6, 30)),
    ("openjdk", &[], (2022, 7, 1)),
];

/// Debian code names in tags (`python:3.11-buster`) and their end of life.
const DEBIAN_CODENAMES: &[(&str, Ymd)] = &[
    ("jessie", (2020, 6, 30)),
    ("stretch", (2022, 6, 30)),
    ("buster", (2024, 6, 30)),
];

/// Ubuntu code names.
const UBUNTU_CODENAMES: &[(&str, Ymd)] = &[
    ("trusty", (2019, 4, 30)),
    ("xenial", (2021, 4, 30)),
    ("bionic", (2023, 5, 31)),
    ("focal", (2025, 5, 31)),
];

fn date((year, month, day): Ymd) -> Date {
    Date { year, month, day }
}

/// What reached end of life in an image reference, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndOfLife {
    /// What is dead (`python 3.7`, `Debian buster`).
    pub what: String,
    /// When support ended.
    pub since: Date,
}

/// Is `image` past its end of life on `today`?
#[must_use]
pub fn end_of_life(image: &ImageRef, today: Date) -> Option<EndOfLife> {
    let name = image.hub_name();
    // `library/python`, `python`, or a mirror path ending in the official name.
    let short = name.rsplit('/').next().unwrap_or(name);
    let tag = image.tag.as_deref()?;
    let version = leading_version(tag);
    let first = short.as_bytes().first();
    for (img, prefix, eol) in EOL {
        // The first byte rules out most rows before a full comparison.
        if img.as_bytes().first() != first || *img != short {
            continue;
        }
        let matches = version.len() >= prefix.len() && version[..prefix.len()] == prefix[..];
        if matches && today > date(*eol) {
            // `format!("{short} {}", parts.join(".")).trim()`, built in one string.
            let mut what = String::with_capacity(short.len() + 8);
            what.push_str(short);
            what.push(' ');
            for (i, v) in version.iter().take(prefix.len()).enumerate() {
                if i > 0 {
                    what.push('.');
                }
                let _ = write!(what, "{v}");
            }
            let trimmed = what.trim();
            if trimmed.len() != what.len() {
                what = trimmed.to_string();
            }
            return Some(EndOfLife {
                what,
                since: date(*eol),
            });
        }
    }
    // A code name is a part of the tag, compared ASCII case-insensitively (no lowercased
    // copy); the first in table order that is past its end of life wins.
    let has = |code: &str| {
        tag.split(['-', '.', '_'])
            .any(|p| p.eq_ignore_ascii_case(code))
    };
    if !tag.bytes().any(|b| b.is_ascii_alphabetic()) {
        return None; // no code name in `3.11` or `20.04`
    }
    for (code, eol) in DEBIAN_CODENAMES {
        if has(code) && today > date(*eol) {
            return Some(EndOfLife {
                what: format!("Debian {code}"),
                since: date(*eol),
            });
        }
    }
    for (code, eol) in UBUNTU_CODENAMES {
        if has(code) && today > date(*eol) {
            return Some(EndOfLife {
                what: format!("Ubuntu {code}"),
                since: date(*eol),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eol(image: &str) -> Option<String> {
        let today = Date::parse("2026-01-15").unwrap_or_default();
        end_of_life(&ImageRef::parse(image), today).map(|e| e.what)
    }

    #[test]
    fn versions() {
        assert_eq!(leading_version("3.11.4-slim"), [3, 11, 4]);
        assert_eq!(leading_version("16-alpine"), [16]);
        assert!(leading_version("bookworm").is_empty());
    }

    #[test]
    fn end_of_life_images() {
        assert_eq!(eol("python:3.7-slim").as_deref(), Some("python 3.7"));
        assert_eq!(eol("docker.io/library/node:16").as_deref(), Some("node 16"));
        assert_eq!(
            eol("python:3.12-slim-buster").as_deref(),
            Some("Debian buster")
        );
        assert_eq!(eol("python:3.12-slim"), None);
        assert_eq!(eol("python:3"), None);
        assert_eq!(eol("node:22-alpine"), None);
        assert_eq!(eol("ubuntu:20.04").as_deref(), Some("ubuntu 20"));
        assert_eq!(eol("python:3.10"), None);
        assert_eq!(eol("myorg/python:3.7"), Some("python 3.7".into()));
    }
}

/// Does a variable/key name look like it holds a secret (`DB_PASSWORD`, `OPENAI_API_KEY`)?
/// Names of files, paths, URLs, ids and settings about secrets do not count.
#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    secret_name_matches(name, &[], &[])
}

/// [`is_secret_name`] with more words that make a secret and more suffixes that do not.
pub(crate) fn secret_name_matches(name: &str, more_secret: &[&str], more_not: &[&str]) -> bool {
    // `to_ascii_lowercase` then `-` and `.` → `_`, in one pass (one allocation).
    let lower: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            '-' | '.' => '_',
            c => c,
        })
        .collect();
    const SECRET: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "private_key",
        "credential",
        "auth_key",
        "client_secret",
        "passphrase",
    ];
    const NOT: &[&str] = &[
        "_file",
        "_path",
        "_dir",
        "_url",
        "_uri",
        "_name",
        "_id",
        "_length",
        "_enabled",
        "_header",
        "_type",
        "_endpoint",
        "_ttl",
        "_expiry",
        "_expires",
        "_timeout",
        "_host",
        "_port",
        "_user",
        "_username",
        "_policy",
        "_min",
        "_max",
        "_ref",
        "_arn",
        "_mode",
    ];
    let secret = SECRET.iter().chain(more_secret).any(|s| lower.contains(s));
    secret && !NOT.iter().chain(more_not).any(|s| lower.ends_with(s))
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "DB_PASSWORD",
            "OPENAI_API_KEY",
            "github-token",
            "CLIENT_SECRET",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "PASSWORD_FILE",
            "TOKEN_URL",
            "SECRET_NAME",
            "AWS_ACCESS_KEY_ID",
            "PATH",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }
}

/// What an insecure setting does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insecurity {
    /// Authentication is switched off (`ARANGO_NO_AUTH=1`, `POSTGRES_HOST_AUTH_METHOD=trust`).
    AuthDisabled,
    /// A password or key is the product's documented default (`RABBITMQ_DEFAULT_PASS=guest`).
    KnownDefault,
    /// A password that is set, to nothing (`REDIS_PASSWORD=`).
    EmptyPassword,
}

/// An environment variable of a well-known image and the values that make it insecure
/// (compared case-insensitively; an empty list matches only the empty value).
#[derive(Debug)]
pub struct InsecureSetting {
    /// The variable.
    pub key: &'static str,
    /// The insecure values.
    pub values: &'static [&'static str],
    /// What it does.
    pub kind: Insecurity,
    /// The product, for messages.
    pub product: &'static str,
}

const YES: &[&str] = &["1", "true", "yes", "on"];
const EMPTY: &[&str] = &[];

/// Environment settings of common images that disable authentication or keep a
/// documented default credential.
pub const INSECURE_SETTINGS: &[InsecureSetting] = &[
    InsecureSetting {
        key: "ARANGO_NO_AUTH",
        values: YES,
        kind: Insecurity::AuthDisabled,
        product: "ArangoDB",
    },
    InsecureSetting {
        key: "POSTGRES_HOST_AUTH_METHOD",
        values: &["trust"],
        kind: Insecurity::AuthDisabled,
        product: "PostgreSQL",
    },
    InsecureSetting {
        key: "ALLOW_EMPTY_PASSWORD",
        values: YES,
        kind: Insecurity::AuthDisabled,
        product: "the Bitnami image",
    },
    InsecureSetting {
        key: "MYSQL_ALLOW_EMPTY_PASSWORD",
        values: YES,
        kind: Insecurity::AuthDisabled,
        product: "MySQL",
    },
    InsecureSetting {
        key: "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
        values: YES,
        kind: Insecurity::AuthDisabled,
        product: "MariaDB",
    },
    InsecureSetting {
        key: "TRAEFIK_API_INSECURE",
        values: YES,
        kind: Insecurity::AuthDisabled,
        product: "Traefik",
    },
    InsecureSetting {
        key: "REDIS_PASSWORD",
        values: EMPTY,
        kind: Insecurity::EmptyPassword,
        product: "Redis",
    },
    InsecureSetting {
        key: "MEILI_MASTER_KEY",
        values: &["masterKey"],
        kind: Insecurity::KnownDefault,
        product: "Meilisearch",
    },
    InsecureSetting {
        key: "POSTGRES_PASSWORD",
        values: &["postgres", "password", "example"],
        kind: Insecurity::KnownDefault,
        product: "PostgreSQL",
    },
    InsecureSetting {
        key: "MYSQL_ROOT_PASSWORD",
        values: &["root", "password", "example", "mysql"],
        kind: Insecurity::KnownDefault,
        product: "MySQL",
    },
    InsecureSetting {
        key: "MONGO_INITDB_ROOT_PASSWORD",
        values: &["example", "password", "mongo"],
        kind: Insecurity::KnownDefault,
        product: "MongoDB",
    },
    InsecureSetting {
        key: "MINIO_ROOT_PASSWORD",
        values: &["minioadmin"],
        kind: Insecurity::KnownDefault,
        product: "MinIO",
    },
    InsecureSetting {
        key: "MINIO_SECRET_KEY",
        values: &["minioadmin"],
        kind: Insecurity::KnownDefault,
        product: "MinIO",
    },
    InsecureSetting {
        key: "RABBITMQ_DEFAULT_PASS",
        values: &["guest"],
        kind: Insecurity::KnownDefault,
        product: "RabbitMQ",
    },
    InsecureSetting {
        key: "GF_SECURITY_ADMIN_PASSWORD",
        values: &["admin"],
        kind: Insecurity::KnownDefault,
        product: "Grafana",
    },
    InsecureSetting {
        key: "PGADMIN_DEFAULT_PASSWORD",
        values: &["admin"],
        kind: Insecurity::KnownDefault,
        product: "pgAdmin",
    },
    InsecureSetting {
        key: "ELASTIC_PASSWORD",
        values: &["changeme"],
        kind: Insecurity::KnownDefault,
        product: "Elasticsearch",
    },
];

/// The insecure setting `key=value` matches, if any.
#[must_use]
pub fn insecure_setting(key: &str, value: &str) -> Option<&'static InsecureSetting> {
    let value = value.trim();
    INSECURE_SETTINGS.iter().find(|s| {
        s.key.eq_ignore_ascii_case(key.trim())
            && if s.values.is_empty() {
                value.is_empty()
            } else {
                s.values.iter().any(|v| v.eq_ignore_ascii_case(value))
            }
    })
}

/// Command-line flags that switch authentication off: (flag, product).
pub const INSECURE_FLAGS: &[(&str, &str)] = &[("--api.insecure", "Traefik")];

#[cfg(test)]
mod insecure_tests {
    use super::*;

    #[test]
    fn matches_keys_and_values() {
        let pw = ["post", "gres"].concat();
        assert_eq!(
            insecure_setting("POSTGRES_PASSWORD", &pw).map(|s| s.kind),
            Some(Insecurity::KnownDefault)
        );
        assert!(insecure_setting("POSTGRES_PASSWORD", "s3cure-and-long").is_none());
        assert_eq!(
            insecure_setting("REDIS_PASSWORD", "").map(|s| s.kind),
            Some(Insecurity::EmptyPassword)
        );
        assert!(insecure_setting("REDIS_PASSWORD", "x").is_none());
        assert!(insecure_setting("ARANGO_NO_AUTH", "0").is_none());
    }
}

/// `runs-on` labels of GitHub-hosted runners (standard and macOS larger runners).
pub const HOSTED_RUNNER_LABELS: &[&str] = &[
    "ubuntu-latest",
    "ubuntu-24.04",
    "ubuntu-22.04",
    "ubuntu-24.04-arm",
    "ubuntu-22.04-arm",
    "ubuntu-slim",
    "windows-latest",
    "windows-2025",
    "windows-2022",
    "windows-11-arm",
    "macos-latest",
    "macos-26",
    "macos-15",
    "macos-14",
    "macos-13",
    "macos-15-intel",
    "macos-latest-large",
    "macos-26-large",
    "macos-15-large",
    "macos-14-large",
    "macos-13-large",
    "macos-latest-xlarge",
    "macos-26-xlarge",
    "macos-15-xlarge",
    "macos-14-xlarge",
    "macos-13-xlarge",
];

/// Hosted runner images GitHub has retired: jobs on them never start.
pub const RETIRED_RUNNER_LABELS: &[&str] = &[
    "ubuntu-16.04",
    "ubuntu-18.04",
    "ubuntu-20.04",
    "windows-2016",
    "windows-2019",
    "macos-10.15",
    "macos-11",
    "macos-12",
    "macos-12-large",
    "macos-12-xl",
];
