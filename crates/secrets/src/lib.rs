//! Orchestra's secret store: versioned values encrypted with [age] to a team's
//! recipients, kept in a directory beside the manifest that the team commits.
//!
//! # Layout
//!
//! ```text
//! orchestra.yaml
//! secrets/
//!   recipients.txt            one age recipient (age1...) per line, `# comments` allowed;
//!                             the same format `age -R secrets/recipients.txt` reads
//!   .gitignore                ignores the lock file and temporary files
//!   <env>/                    `default` unless another environment is named
//!     <NAME>/                 the secret's name, an environment variable name
//!       1.age 2.age ...       each version, a binary age file encrypted to every
//!                             recipient (`age -d -i KEY secrets/default/NAME/2.age`)
//!       versions.json         plaintext metadata, never a value: who wrote each version
//!                             and when, and whether the secret was removed
//! ```
//!
//! A version exists when its `<N>.age` file does: a file encrypted by the `age` CLI
//! and placed as the next number is a version like any other (its metadata is then
//! unknown). Writes are atomic (temporary file, fsync, rename or link) and a new
//! version never replaces an existing file. Mutations take an exclusive lock on
//! `secrets/.lock`.
//!
//! Removing a secret ([`Store::rm`]) marks it removed in `versions.json`: its latest
//! value can no longer be read, but every version is kept, so an explicit
//! [`Version::Number`] still reads (for rolling back a release); setting it again
//! brings it back.
//!
//! Recipients: [`Store::add_recipient`] and [`Store::rm_recipient`] re-encrypt every
//! version of every secret to the new set. Removing a recipient does not take back what
//! that key could already read (old checkouts): rotate the values too.
//!
//! The identity (the private key) is an X25519 age identity in the text format
//! `age-keygen` writes, at `$ORCHESTRA_AGE_KEY_FILE` or `~/.config/orchestra/age.key`
//! (see [`default_key_path`]). Passphrase-encrypted files are not offered.
//!
//! [age]: https://age-encryption.org

mod dotenv;
mod error;
mod fsutil;
mod identity;
mod store;

pub use dotenv::{DotenvEntry, DotenvFile, DotenvProblem, parse_dotenv, template};
pub use error::Error;
pub use identity::{Identity, KEY_FILE_ENV, default_key_path, parse_recipient};
pub use orchestra_clock::{format_secs as format_timestamp_ms, now_ms};
pub use store::{SecretInfo, Store, Version, VersionInfo, Who, validate_env, validate_name};

/// The recipient type secrets are encrypted to (an `age1...` X25519 public key).
pub use age::x25519::Recipient;
/// A secret value: wiped from memory when dropped.
pub use zeroize::Zeroizing;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The store's directory for a project whose manifest lives in `project_dir`.
pub fn store_dir(project_dir: &std::path::Path) -> std::path::PathBuf {
    project_dir.join("secrets")
}

/// Encrypt `bytes` to `recipients` (binary age format, readable by `age -d`); `path` is the
/// file they are for, named in errors. Used for data beside the store, such as backups.
pub fn encrypt_to(
    recipients: &[Recipient],
    bytes: &[u8],
    path: &std::path::Path,
) -> Result<Vec<u8>> {
    store::encrypt(recipients, bytes, path)
}

/// Decrypt the age file at `path` with `identity`, telling a wrong key from a damaged file.
pub fn decrypt_file(path: &std::path::Path, identity: &Identity) -> Result<Zeroizing<Vec<u8>>> {
    store::decrypt_file(path, identity)
}

/// Replace `path` with `bytes` atomically (temporary file beside it, fsync, rename),
/// with file mode `mode`.
pub fn replace_file(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<()> {
    fsutil::write_replace(path, bytes, mode)
}
