//! `backup:` of a data service: what takes a backup, where it goes, how many are kept.
//!
//! A backup block is not part of the service's revision (see `Service::revision`): changing
//! retention or the schedule must not restart the database.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Location;

/// `backup: { kind, schedule, keep, keep_for, dir, verify, ... }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupSpec {
    /// How a backup is taken and restored.
    pub kind: BackupKind,
    /// `schedule:` (with `timezone:`): when the daemon's scheduler takes a backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::Schedule>,
    /// Keep the newest N backups (`keep: N`, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    /// Keep backups younger than this (`keep_for: 30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_for: Option<Duration>,
    /// Where backups are written, resolved against the manifest directory; `None` is
    /// `.orchestra/backups/<service>/` beside the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The check `backup verify` runs against a scratch instance (`${PORT}` is its port);
    /// `None`: DBSIZE (redis), a query listing tables (postgres), nothing else (command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Vec<String>>,
    /// Where `backup:` is written.
    pub location: Location,
}

/// `backup.kind` and the fields that belong to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackupKind {
    /// A consistent RDB snapshot (`redis-cli --rdb`); restored by replacing the RDB file in
    /// the server's `dir` while it is stopped.
    Redis,
    /// `pg_dump -Fc` of one database (restored with `pg_restore --clean --if-exists`), or
    /// `pg_dumpall` of the whole cluster with `all: true` (restored with `psql`).
    Postgres {
        /// The database dumped (`database:`, default `postgres`).
        database: String,
        /// The role connected as (`user:`, default `postgres`).
        user: String,
        /// The whole cluster (`all: true`): roles, every database.
        all: bool,
    },
    /// Any program that writes the backup to stdout (`command:`), and one that reads it
    /// back on stdin (`restore:`). `${PORT}` is the service's port.
    Command {
        /// Writes the backup to stdout.
        command: Vec<String>,
        /// Reads a backup on stdin and restores it.
        restore: Vec<String>,
    },
}

impl BackupKind {
    /// `redis`, `postgres` or `command`.
    pub fn name(&self) -> &'static str {
        match self {
            BackupKind::Redis => "redis",
            BackupKind::Postgres { .. } => "postgres",
            BackupKind::Command { .. } => "command",
        }
    }
}
