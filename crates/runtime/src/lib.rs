//! The process runtime: starts a platform's services along its start plan,
//! gates each on its dependencies' conditions, probes them, restarts them
//! with backoff, captures their logs, stops them in reverse order, and says
//! why when something does not come up.
//!
//! Decisions (restart or not, the aggregate phase, the likely cause of a
//! failure) are pure functions in `backoff`, `status` and `diagnose`;
//! processes, sockets and files live in `supervisor`, `driver`, `probe`,
//! `procfs`, `logs` and `shim`. A driver starts, stops and watches one
//! replica; the process driver and the static-site driver (a snapshot of a
//! directory, nothing runs) are here, the container driver plugs in.

pub mod backoff;
pub mod diagnose;
pub mod driver;
pub mod logs;
pub mod probe;
pub mod procfs;
pub mod secret_files;
pub mod shim;
pub mod status;
pub mod supervisor;

pub use driver::{BoxFuture, Driver, Replica, ReplicaSpec, StartError};
pub use supervisor::{
    ControlError, Event, EventKind, ProcessInfo, Runtime, RuntimeConfig, instance_key, reap_group,
};
