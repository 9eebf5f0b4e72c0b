//! The Orchestra daemon: owns the runtime, records what happens in the state
//! database, and serves the control API (HTTP+JSON on a unix socket, and
//! optionally on TCP with a bearer token) and the admin endpoints (`/health`,
//! `/ready` on TCP).

pub mod admin;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod backups;
pub mod client;
pub mod control;
pub mod daemon;
pub mod follow;
pub mod metrics;
pub mod paths;
pub mod scheduler;

pub use daemon::{AdminListen, Daemon, DaemonError, DaemonOptions};
pub use paths::Paths;
