//! Whether an environment variable holds a credential, judged from its name and value.
//!
//! Broader on purpose than the audit's `knowledge::is_secret_name`, which must be precise
//! about what it reports: here a wrong guess only keeps a harmless value out of state.db,
//! or puts it in a Kubernetes Secret instead of a ConfigMap.

/// Name fragments of variables that hold credentials.
const SECRET_WORDS: &[&str] = &[
    "KEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "DSN",
    "COOKIE",
    "SALT",
    "SIGNING",
];

/// Whether a variable's name says it holds a credential (`OPENAI_API_KEY`,
/// `db_password`, `GITHUB_TOKEN`...).
#[must_use]
pub fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            SECRET_WORDS
                .iter()
                .any(|w| word.ends_with(w) || word.starts_with(w))
        })
}

/// Whether a value carries a password in a URL (`scheme://user:password@host/path`).
#[must_use]
pub fn url_with_password(value: &str) -> bool {
    value.split_once("://").is_some_and(|(_, rest)| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        authority
            .rsplit_once('@')
            .is_some_and(|(user, _)| user.contains(':'))
    })
}

/// Whether a variable looks like a credential: by its name, or a URL with a password.
#[must_use]
pub fn credential(name: &str, value: &str) -> bool {
    secret_name(name) || url_with_password(value)
}
