//! The Orchestra daemon: owns the runtime, records what happens in the state
//! database, and serves the control API (HTTP+JSON on a unix socket) and the
//! admin endpoints (`/health`, `/ready` on TCP).

pub mod admin;
pub mod api;
pub mod client;
pub mod daemon;
pub mod metrics;
pub mod paths;

pub use daemon::{AdminListen, Daemon, DaemonError, DaemonOptions};
pub use paths::Paths;
