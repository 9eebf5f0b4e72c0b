//! Backups of data services, and their restore.
//!
//! The decisions are pure functions over data: the catalog's entries and which one a
//! restore takes ([`catalog`]), which backups retention removes ([`retention`]). The
//! processes (`redis-cli`, `pg_dump`, `pg_restore`, a scratch `redis-server` or
//! `postgres`) live at the edge, in [`engine`] and [`scratch`].
//!
//! Each backup is one file in the service's backup directory with a JSON catalog entry
//! beside it (`ID.json`) holding its sha256, size, kind and whether it is encrypted to the
//! project's age recipients. A restore checks the sum before anything is stopped.

#![deny(missing_docs)]

pub mod catalog;
pub mod engine;
mod error;
pub mod retention;
pub mod scratch;

pub use catalog::Entry;
pub use error::BackupError;

/// The result type of this crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;
