//! Orchestra's durable state: runs, revisions, processes and the event log, in
//! SQLite (WAL) at `.orchestra/state.db`.
//!
//! Each write is one statement or one transaction, so a daemon killed at any
//! point leaves the database consistent. Schema changes are numbered
//! migrations tracked in `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Errors from the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database file could not be opened or migrated.
    #[error("cannot open state database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file's mode could not be set to owner-only.
    #[error("cannot make state database {path} private (mode 0600): {source}")]
    Permissions {
        /// The database file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A query failed.
    #[error("state database: {0}")]
    Query(#[from] rusqlite::Error),
    /// The database was written by a newer Orchestra.
    #[error("state database {path} has schema version {found}; this orchestra knows up to {known}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Version found.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
}

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the foundation schema.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        manifest TEXT NOT NULL,
        environment TEXT,
        profiles TEXT NOT NULL DEFAULT '',
        daemon_pid INTEGER NOT NULL,
        started_at_ms INTEGER NOT NULL,
        stopped_at_ms INTEGER
     );
     CREATE TABLE revisions (
        service TEXT NOT NULL,
        revision TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (service, revision)
     );
     CREATE TABLE processes (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        service TEXT NOT NULL,
        replica INTEGER NOT NULL,
        revision TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pgid INTEGER NOT NULL,
        proc_start_ticks INTEGER NOT NULL,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER,
        exit TEXT
     );
     CREATE INDEX processes_live ON processes(ended_at_ms);
     CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        run_id INTEGER,
        at_ms INTEGER NOT NULL,
        service TEXT,
        replica INTEGER,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
     );
     CREATE INDEX events_service ON events(service, id);",
    // 2: releases and the routing they leave, for deploys and crash recovery.
    "CREATE TABLE releases (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        strategy TEXT NOT NULL,
        from_revision TEXT,
        to_revision TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        figures TEXT NOT NULL DEFAULT '{}',
        manifest TEXT NOT NULL DEFAULT '',
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER
     );
     CREATE INDEX releases_service ON releases(service, id);
     CREATE TABLE routing (
        service TEXT PRIMARY KEY,
        stable_revision TEXT NOT NULL,
        canary_revision TEXT,
        canary_weight INTEGER NOT NULL DEFAULT 0,
        release_id INTEGER,
        updated_at_ms INTEGER NOT NULL
     );",
    // 3: one row per routed service holding its whole rollout state (the
    // deploy crate's model, as JSON); routing is derived from it, so the
    // separate routing table goes.
    "DROP TABLE routing;
     CREATE TABLE rollouts (
        service TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
     );",
    // 4: the secret versions each release shipped (names and numbers, never values).
    "ALTER TABLE releases ADD COLUMN secrets TEXT NOT NULL DEFAULT '{}';",
    // 5: the restore points (backup ids) taken before a release's migrations.
    "ALTER TABLE releases ADD COLUMN restore_points TEXT NOT NULL DEFAULT '[]';",
];

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    /// Started, traffic not yet (or not fully) on the new revision.
    InProgress,
    /// Switched; watched while the old revision is warm.
    Live,
    /// Done: the new revision is live.
    Succeeded,
    /// Did not become healthy or failed verification; traffic stayed or went back.
    Failed,
    /// Stopped by request.
    Aborted,
    /// Traffic went back to the revision it replaced.
    RolledBack,
    /// A later release replaced it while it was watched.
    Superseded,
}

impl ReleaseStatus {
    /// Every status, for parsing and listings.
    pub const ALL: [ReleaseStatus; 7] = [
        Self::InProgress,
        Self::Live,
        Self::Succeeded,
        Self::Failed,
        Self::Aborted,
        Self::RolledBack,
        Self::Superseded,
    ];

    /// The stored and displayed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in-progress",
            Self::Live => "live",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
            Self::RolledBack => "rolled-back",
            Self::Superseded => "superseded",
        }
    }

    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// No longer moving traffic (`live` still watches, but the switch is done).
    pub fn is_settled(self) -> bool {
        self != Self::InProgress
    }

    /// Ended for good: nothing watches it any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::InProgress | Self::Live)
    }
}

impl std::fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to a release row, written in the same transaction as a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseUpdate {
    /// Release id.
    pub id: i64,
    /// Its new status.
    pub status: ReleaseStatus,
    /// Why.
    pub reason: String,
}

/// A release about to begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease<'a> {
    /// Service.
    pub service: &'a str,
    /// `canary`, `blue-green`, `recreate`, `rollback`.
    pub strategy: &'a str,
    /// Revision it replaces.
    pub from: Option<&'a str>,
    /// Revision it ships.
    pub to: &'a str,
    /// The definition it ships (JSON, secrets redacted by the caller).
    pub manifest: &'a str,
    /// The secret versions it ships: `{NAME: version}` (JSON).
    pub secrets: &'a str,
}

/// Milliseconds since the Unix epoch (one copy for every crate, in `orchestra-clock`).
pub use orchestra_clock::now_ms;

/// One recorded event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EventRecord {
    /// Monotonic id.
    pub id: i64,
    /// The run it belongs to.
    pub run_id: Option<i64>,
    /// When, in ms since the epoch.
    pub at_ms: i64,
    /// Service, if the event is about one.
    pub service: Option<String>,
    /// Replica index, if about one.
    pub replica: Option<i64>,
    /// `started`, `healthy`, `unhealthy`, `restarted`, `crash-looping`, `stopped`, ...
    pub kind: String,
    /// Human-readable reason.
    pub reason: String,
}

/// A process the state says may still be running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRecord {
    /// Row id.
    pub id: i64,
    /// Service.
    pub service: String,
    /// Replica index.
    pub replica: i64,
    /// Process id of the group leader.
    pub pid: i32,
    /// Its process group.
    pub pgid: i32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat), to tell PID reuse apart.
    pub proc_start_ticks: u64,
}

/// One release: a service moved from one revision to another.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleaseRecord {
    /// Release id.
    pub id: i64,
    /// Service.
    pub service: String,
    /// `canary`, `blue-green`, `recreate`, `rollback`.
    pub strategy: String,
    /// Revision it replaced.
    pub from_revision: Option<String>,
    /// Revision it shipped.
    pub to_revision: String,
    /// Where it stands.
    pub status: ReleaseStatus,
    /// Why it ended as it did.
    pub reason: String,
    /// The verifier's figures (JSON).
    pub figures: serde_json::Value,
    /// The secret versions it shipped: `{NAME: version}`.
    pub secrets: serde_json::Value,
    /// The backups taken before its `hooks.pre` ran: `[{service, backup, kind}]`.
    pub restore_points: serde_json::Value,
    /// When it started and ended (ms since the epoch).
    pub started_at_ms: i64,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
}

/// The state database. Cheap to share behind an `Arc`.
pub struct StateStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish()
    }
}

impl StateStore {
    /// Open (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let open_err = |source| StateError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // Releases and definitions are the team's private business: owner only.
        // SQLite gives the -wal and -shm files the database file's mode.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| StateError::Permissions {
                    path: path.to_owned(),
                    source: e,
                },
            )?;
        }
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // Switching a new file to WAL takes a lock SQLite does not wait for
        // (no busy handler): another opener may hold it for a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match conn.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            ) {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(open_err(e)),
            }
        }
        let store = Self {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Open an in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, StateError> {
        let conn = Connection::open_in_memory()?;
        let store = Self {
            conn: Mutex::new(conn),
            path: PathBuf::from(":memory:"),
        };
        store.migrate()?;
        Ok(store)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        // A poisoned lock only means another thread panicked mid-call; SQLite
        // itself stays consistent, so keep going.
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        Ok(f(&mut conn)?)
    }

    fn migrate(&self) -> Result<(), StateError> {
        let known = MIGRATIONS.len() as i64;
        let path = self.path.clone();
        // Each step reads the version inside an immediate (write-locked)
        // transaction: two processes opening a new database at once (the
        // daemon and `ps`) must not both apply the same migration.
        loop {
            let step = self.with(|c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                if found >= known {
                    tx.commit()?;
                    return Ok(Err(found));
                }
                tx.execute_batch(MIGRATIONS[found as usize])?;
                tx.pragma_update(None, "user_version", found + 1)?;
                tx.commit()?;
                Ok(Ok(()))
            })?;
            match step {
                Ok(()) => {}
                Err(found) if found > known => {
                    return Err(StateError::TooNew { path, found, known });
                }
                Err(_) => return Ok(()),
            }
        }
    }

    /// The schema version this build migrates to.
    pub fn known_schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    /// The schema version of the database at `path`, opened read-only: no
    /// migration, no mode change, no file created (for `orchestra doctor`).
    /// A daemon may be writing it meanwhile.
    pub fn read_schema_version(path: &Path) -> Result<i64, StateError> {
        use rusqlite::OpenFlags;
        let open_err = |source| StateError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        // Without a -wal file nobody has the database open: read it as immutable,
        // or SQLite would leave an empty -wal and -shm beside it.
        let conn = match path.to_str() {
            Some(p) if !Path::new(&wal).exists() => {
                let escaped = p
                    .replace('%', "%25")
                    .replace('?', "%3f")
                    .replace('#', "%23");
                Connection::open_with_flags(
                    format!("file:{escaped}?immutable=1"),
                    flags | OpenFlags::SQLITE_OPEN_URI,
                )
            }
            _ => Connection::open_with_flags(path, flags),
        }
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(1))
            .map_err(open_err)?;
        // Reading the schema proves the file is a database, not only that it opens.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(open_err)?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)
    }

    /// The schema version now in force.
    pub fn schema_version(&self) -> Result<i64, StateError> {
        self.with(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
    }

    /// Record the start of a daemon run; returns its id.
    pub fn begin_run(
        &self,
        manifest: &Path,
        environment: Option<&str>,
        profiles: &[String],
        daemon_pid: u32,
    ) -> Result<i64, StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (manifest, environment, profiles, daemon_pid, started_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    manifest.to_string_lossy(),
                    environment,
                    profiles.join(","),
                    daemon_pid,
                    now_ms()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Mark a run as ended.
    pub fn end_run(&self, run_id: i64) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET stopped_at_ms = ?2 WHERE id = ?1",
                params![run_id, now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Remember a service revision's definition (idempotent).
    pub fn record_revision(
        &self,
        service: &str,
        revision: &str,
        definition: &str,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO revisions (service, revision, definition, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![service, revision, definition, now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Revisions known for a service, newest first: (revision, created_at_ms).
    pub fn revisions(&self, service: &str) -> Result<Vec<(String, i64)>, StateError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT revision, created_at_ms FROM revisions WHERE service = ?1
                 ORDER BY created_at_ms DESC, rowid DESC",
            )?;
            st.query_map([service], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    /// Record a started process; returns its row id.
    #[allow(clippy::too_many_arguments)]
    pub fn record_process(
        &self,
        run_id: i64,
        service: &str,
        replica: u32,
        revision: &str,
        pid: i32,
        pgid: i32,
        proc_start_ticks: u64,
    ) -> Result<i64, StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO processes
                 (run_id, service, replica, revision, pid, pgid, proc_start_ticks, started_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run_id,
                    service,
                    replica,
                    revision,
                    pid,
                    pgid,
                    proc_start_ticks as i64,
                    now_ms()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Record that a process ended (and how).
    pub fn end_process(&self, id: i64, exit: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE processes SET ended_at_ms = ?2, exit = ?3 WHERE id = ?1",
                params![id, now_ms(), exit],
            )
            .map(|_| ())
        })
    }

    /// Processes recorded as started and never recorded as ended: candidates
    /// for reaping after a daemon was killed.
    pub fn live_processes(&self) -> Result<Vec<ProcessRecord>, StateError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, service, replica, pid, pgid, proc_start_ticks FROM processes
                 WHERE ended_at_ms IS NULL ORDER BY id",
            )?;
            st.query_map([], |r| {
                Ok(ProcessRecord {
                    id: r.get(0)?,
                    service: r.get(1)?,
                    replica: r.get(2)?,
                    pid: r.get(3)?,
                    pgid: r.get(4)?,
                    proc_start_ticks: r.get::<_, i64>(5)? as u64,
                })
            })?
            .collect()
        })
    }

    /// Append an event; returns it as stored.
    pub fn record_event(
        &self,
        run_id: Option<i64>,
        service: Option<&str>,
        replica: Option<u32>,
        kind: &str,
        reason: &str,
    ) -> Result<EventRecord, StateError> {
        self.record_event_at(now_ms(), run_id, service, replica, kind, reason)
    }

    /// Append an event that happened at `at_ms` (the writer may lag behind).
    pub fn record_event_at(
        &self,
        at_ms: i64,
        run_id: Option<i64>,
        service: Option<&str>,
        replica: Option<u32>,
        kind: &str,
        reason: &str,
    ) -> Result<EventRecord, StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO events (run_id, at_ms, service, replica, kind, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run_id, at_ms, service, replica, kind, reason],
            )?;
            Ok(EventRecord {
                id: c.last_insert_rowid(),
                run_id,
                at_ms,
                service: service.map(str::to_owned),
                replica: replica.map(i64::from),
                kind: kind.to_owned(),
                reason: reason.to_owned(),
            })
        })
    }

    /// Events with id greater than `after`, oldest first, at most `limit`;
    /// optionally only one service's.
    pub fn events(
        &self,
        after: i64,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StateError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, run_id, at_ms, service, replica, kind, reason FROM events
                 WHERE id > ?1 AND (?2 IS NULL OR service = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let mut rows: Vec<EventRecord> = st
                .query_map(params![after, service, limit as i64], |r| {
                    Ok(EventRecord {
                        id: r.get(0)?,
                        run_id: r.get(1)?,
                        at_ms: r.get(2)?,
                        service: r.get(3)?,
                        replica: r.get(4)?,
                        kind: r.get(5)?,
                        reason: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            rows.reverse();
            Ok(rows)
        })
    }

    /// Start a release; returns its id. Only for releases that move no
    /// traffic by themselves; a rollout starts one with [`Self::begin_rollout`].
    pub fn begin_release(&self, r: &NewRelease<'_>) -> Result<i64, StateError> {
        self.with(|c| insert_release(c, r))
    }

    /// Start a release and persist the rollout state that carries it, in one
    /// transaction: `rollout` gets the new release id and returns the state
    /// (JSON) and the release rows it changes (the new one included), or
    /// `None` to write nothing at all.
    pub fn begin_rollout(
        &self,
        r: &NewRelease<'_>,
        rollout: impl FnOnce(i64) -> Option<(String, Vec<ReleaseUpdate>)>,
    ) -> Result<Option<i64>, StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let id = insert_release(&tx, r)?;
            // Dropping the transaction rolls the insert back.
            let Some((state, updates)) = rollout(id) else {
                return Ok(None);
            };
            for u in &updates {
                update_release(&tx, u)?;
            }
            upsert_rollout(&tx, r.service, &state)?;
            tx.commit()?;
            Ok(Some(id))
        })
    }

    /// Persist a service's rollout state and the release changes it implies, in one transaction.
    pub fn save_rollout(
        &self,
        service: &str,
        state: &str,
        updates: &[ReleaseUpdate],
    ) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for u in updates {
                update_release(&tx, u)?;
            }
            upsert_rollout(&tx, service, state)?;
            tx.commit()
        })
    }

    /// Persist several services' rollout states in one transaction (a daemon's start).
    pub fn save_rollouts(&self, states: &[(String, String)]) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for (service, state) in states {
                upsert_rollout(&tx, service, state)?;
            }
            tx.commit()
        })
    }

    /// Releases still in progress or watched, oldest first.
    pub fn open_releases(&self) -> Result<Vec<ReleaseRecord>, StateError> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RELEASE_COLUMNS} FROM releases WHERE status IN ('in-progress', 'live') ORDER BY id"
            ))?;
            st.query_map([], release_row)?.collect()
        })
    }

    /// Every persisted rollout: (service, state JSON).
    pub fn rollouts(&self) -> Result<Vec<(String, String)>, StateError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT service, state FROM rollouts ORDER BY service")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// Record a release's figures while it runs.
    pub fn release_figures(&self, id: i64, figures: &serde_json::Value) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE releases SET figures = ?2 WHERE id = ?1",
                params![id, figures.to_string()],
            )
            .map(|_| ())
        })
    }

    /// Record the restore points taken before a release's migrations (a JSON list).
    pub fn release_restore_points(
        &self,
        id: i64,
        points: &serde_json::Value,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE releases SET restore_points = ?2 WHERE id = ?1",
                params![id, points.to_string()],
            )
            .map(|_| ())
        })
    }

    /// Set a release's status and reason (and its end time when the status is final).
    pub fn end_release(&self, u: &ReleaseUpdate) -> Result<(), StateError> {
        self.with(|c| update_release(c, u))
    }

    /// One release.
    pub fn release(&self, id: i64) -> Result<Option<ReleaseRecord>, StateError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = ?1"),
                [id],
                release_row,
            )
            .optional()
        })
    }

    /// Releases, newest first, optionally one service's.
    pub fn releases(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReleaseRecord>, StateError> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RELEASE_COLUMNS}
                 FROM releases WHERE (?1 IS NULL OR service = ?1) ORDER BY id DESC LIMIT ?2"
            ))?;
            st.query_map(params![service, limit as i64], release_row)?
                .collect()
        })
    }

    /// A revision's recorded definition (JSON), if known.
    pub fn revision_definition(
        &self,
        service: &str,
        revision: &str,
    ) -> Result<Option<String>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT definition FROM revisions WHERE service = ?1 AND revision = ?2",
                params![service, revision],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// The latest run, if any: (id, daemon_pid, stopped).
    pub fn last_run(&self) -> Result<Option<(i64, i64, bool)>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT id, daemon_pid, stopped_at_ms IS NOT NULL FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
    }
}

const RELEASE_COLUMNS: &str = "id, service, strategy, from_revision, to_revision, status, reason, figures, started_at_ms, ended_at_ms, secrets, restore_points";

fn release_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReleaseRecord> {
    let figures: String = r.get(7)?;
    let status: String = r.get(5)?;
    Ok(ReleaseRecord {
        id: r.get(0)?,
        service: r.get(1)?,
        strategy: r.get(2)?,
        from_revision: r.get(3)?,
        to_revision: r.get(4)?,
        // Written only by this crate; an unknown spelling is a newer build's.
        status: ReleaseStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                format!("unknown release status `{status}`").into(),
            )
        })?,
        reason: r.get(6)?,
        figures: serde_json::from_str(&figures).unwrap_or(serde_json::Value::Null),
        started_at_ms: r.get(8)?,
        ended_at_ms: r.get(9)?,
        secrets: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or(serde_json::Value::Null),
        restore_points: serde_json::from_str(&r.get::<_, String>(11)?)
            .unwrap_or(serde_json::Value::Null),
    })
}

fn insert_release(c: &Connection, r: &NewRelease<'_>) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO releases (service, strategy, from_revision, to_revision, status, manifest, started_at_ms, secrets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            r.service,
            r.strategy,
            r.from,
            r.to,
            ReleaseStatus::InProgress.as_str(),
            r.manifest,
            now_ms(),
            if r.secrets.is_empty() { "{}" } else { r.secrets }
        ],
    )?;
    Ok(c.last_insert_rowid())
}

fn update_release(c: &Connection, u: &ReleaseUpdate) -> rusqlite::Result<()> {
    let ended = u.status.is_final().then(now_ms);
    c.execute(
        "UPDATE releases SET status = ?2, reason = ?3, ended_at_ms = COALESCE(?4, ended_at_ms) WHERE id = ?1",
        params![u.id, u.status.as_str(), u.reason, ended],
    )
    .map(|_| ())
}

fn upsert_rollout(c: &Connection, service: &str, state: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO rollouts (service, state, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(service) DO UPDATE SET state = ?2, updated_at_ms = ?3",
        params![service, state, now_ms()],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_opening_a_new_file_at_once_migrate_it_once() {
        // The daemon creates state.db while a CLI command opens it: every
        // opener must succeed and the schema must be applied exactly once.
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("state.db");
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let db = db.clone();
                    std::thread::spawn(move || StateStore::open(&db).map(|s| s.schema_version()))
                })
                .collect();
            for o in openers {
                let version = o.join().unwrap().unwrap().unwrap();
                assert_eq!(version, MIGRATIONS.len() as i64);
            }
        }
    }

    #[test]
    fn migrates_a_new_file_and_reopens_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let s = StateStore::open(&db).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&db).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let run = s
            .begin_run(Path::new("/x/orchestra.yaml"), Some("prod"), &[], 42)
            .unwrap();
        drop(s);
        let s = StateStore::open(&db).unwrap();
        assert_eq!(s.last_run().unwrap(), Some((run, 42, false)));
        s.end_run(run).unwrap();
        assert_eq!(s.last_run().unwrap(), Some((run, 42, true)));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        {
            let c = Connection::open(&db).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = StateStore::open(&db).unwrap_err();
        assert!(matches!(err, StateError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn reads_the_schema_version_read_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        drop(StateStore::open(&db).unwrap());
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            StateStore::read_schema_version(&db).unwrap(),
            StateStore::known_schema_version()
        );
        // Read-only: the mode is left as it was, and nothing is created beside it.
        let mode = std::fs::metadata(&db).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert!(!dir.path().join("state.db-wal").exists());
        assert!(!dir.path().join("state.db-shm").exists());
        Connection::open(&db)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert_eq!(StateStore::read_schema_version(&db).unwrap(), 99);
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database, not at all, no.").unwrap();
        assert!(StateStore::read_schema_version(&junk).is_err());
        assert!(StateStore::read_schema_version(&dir.path().join("none.db")).is_err());
    }

    #[test]
    fn live_processes_are_those_not_ended() {
        let s = StateStore::open_in_memory().unwrap();
        let run = s.begin_run(Path::new("m"), None, &[], 1).unwrap();
        let a = s.record_process(run, "api", 0, "r1", 100, 100, 5).unwrap();
        let _b = s.record_process(run, "web", 0, "r1", 200, 200, 6).unwrap();
        s.end_process(a, "exited 0").unwrap();
        let live = s.live_processes().unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].service, "web");
        assert_eq!(live[0].proc_start_ticks, 6);
    }

    #[test]
    fn events_page_forward_and_filter_by_service() {
        let s = StateStore::open_in_memory().unwrap();
        for i in 0..5 {
            let svc = if i % 2 == 0 { "api" } else { "web" };
            s.record_event(None, Some(svc), Some(0), "started", &format!("n{i}"))
                .unwrap();
        }
        let all = s.events(0, None, 100).unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let api = s.events(0, Some("api"), 100).unwrap();
        assert_eq!(
            api.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            ["n0", "n2", "n4"]
        );
        let tail = s.events(0, None, 2).unwrap();
        assert_eq!(
            tail.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            ["n3", "n4"]
        );
        let after = s.events(all[2].id, None, 100).unwrap();
        assert_eq!(after.len(), 2);
    }

    #[test]
    fn a_rollout_and_its_release_are_written_together() {
        let s = StateStore::open_in_memory().unwrap();
        let new = NewRelease {
            service: "api",
            strategy: "canary",
            from: Some("r1"),
            to: "r2",
            manifest: "{}",
            secrets: r#"{"MODEL_TOKEN":2}"#,
        };
        let id = s
            .begin_rollout(&new, |id| {
                Some((format!("{{\"release\":{id}}}"), Vec::new()))
            })
            .unwrap()
            .unwrap();
        // Refused by the caller: the release row goes with the transaction.
        assert_eq!(s.begin_rollout(&new, |_| None).unwrap(), None);
        assert_eq!(s.releases(None, 10).unwrap().len(), 1);
        assert_eq!(
            s.rollouts().unwrap(),
            [("api".into(), format!("{{\"release\":{id}}}"))]
        );
        s.release_figures(id, &serde_json::json!({"canary": {"requests": 10}}))
            .unwrap();
        let r = s.release(id).unwrap().unwrap();
        assert_eq!(r.status, ReleaseStatus::InProgress);
        assert_eq!(s.open_releases().unwrap()[0].id, id);
        assert_eq!(r.secrets["MODEL_TOKEN"], 2);
        assert!(r.ended_at_ms.is_none());
        assert_eq!(r.restore_points, serde_json::json!([]), "none taken yet");
        s.release_restore_points(id, &serde_json::json!([{"service": "db", "backup": "b1"}]))
            .unwrap();
        // Figures written later do not touch them.
        s.release_figures(id, &serde_json::json!({"canary": {"requests": 10}}))
            .unwrap();
        let r = s.release(id).unwrap().unwrap();
        assert_eq!(r.restore_points[0]["backup"], "b1");
        s.save_rollout(
            "api",
            "{}",
            &[ReleaseUpdate {
                id,
                status: ReleaseStatus::Failed,
                reason: "error rate 30%".into(),
            }],
        )
        .unwrap();
        let r = &s.releases(Some("api"), 10).unwrap()[0];
        assert_eq!(
            (r.status, r.reason.as_str()),
            (ReleaseStatus::Failed, "error rate 30%")
        );
        assert_eq!(r.figures["canary"]["requests"], 10);
        assert!(r.ended_at_ms.is_some());
        assert_eq!(s.rollouts().unwrap()[0].1, "{}");
        assert!(
            s.open_releases().unwrap().is_empty(),
            "the failed one is closed"
        );
        s.save_rollouts(&[
            ("api".into(), "{\"a\":1}".into()),
            ("web".into(), "{}".into()),
        ])
        .unwrap();
        assert_eq!(s.rollouts().unwrap().len(), 2);
    }

    #[test]
    fn release_statuses_round_trip_their_spelling() {
        for st in ReleaseStatus::ALL {
            assert_eq!(ReleaseStatus::parse(st.as_str()), Some(st));
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert_eq!(ReleaseStatus::parse("bogus"), None);
    }

    #[test]
    fn revisions_are_recorded_once() {
        let s = StateStore::open_in_memory().unwrap();
        s.record_revision("api", "abc", "{}").unwrap();
        s.record_revision("api", "abc", "{}").unwrap();
        s.record_revision("api", "def", "{}").unwrap();
        assert_eq!(s.revisions("api").unwrap().len(), 2);
    }
}
