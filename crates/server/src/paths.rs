//! Where a project's runtime files live: `.orchestra/` beside the manifest.

use std::path::{Path, PathBuf};

/// The files of one project's daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `.orchestra/`
    pub root: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// The state database.
    pub db: PathBuf,
    /// Per-service log files.
    pub logs: PathBuf,
    /// The detached daemon's own output.
    pub daemon_log: PathBuf,
    /// Snapshots of static sites, one per revision (`static/<service>/<revision>/`).
    pub statics: PathBuf,
    /// The control API's bearer token (TCP listener), 0600.
    pub token: PathBuf,
}

impl Paths {
    /// Paths for the project whose manifest is in `dir`.
    pub fn for_project(dir: &Path) -> Self {
        let root = dir.join(".orchestra");
        Self {
            socket: root.join("orchestra.sock"),
            db: root.join("state.db"),
            logs: root.join("logs"),
            daemon_log: root.join("daemon.log"),
            statics: root.join("static"),
            token: root.join("control.token"),
            root,
        }
    }

    /// Create `.orchestra/` (owner only: it holds the state and the logs) and its log folder.
    pub fn prepare(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)?;
        // An older one may have been created 0755.
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.logs)
    }
}
