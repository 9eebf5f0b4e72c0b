//! Restore points: a backup of each service a release names in `deploy.backup_before`,
//! taken before its `hooks.pre` (migrations) run, and recorded with the release. Who
//! takes the backup is the daemon's business (this crate knows no backup tools): it
//! sets a [`RestorePoints`] on the [`crate::Deployer`].

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// One restore point of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    /// The data service backed up.
    pub service: String,
    /// The backup's id in that service's catalog.
    pub backup: String,
    /// Its kind (`redis`, `postgres`, `command`).
    pub kind: String,
}

/// A boxed future that can cross threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Takes a backup of `service` as the restore point of `release`, or says why not.
pub trait RestorePoints: Send + Sync + 'static {
    /// Back up `service` now.
    fn take(&self, service: String, release: i64) -> BoxFuture<Result<RestorePoint, String>>;
}
