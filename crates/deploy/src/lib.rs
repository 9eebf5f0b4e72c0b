//! Deploys: a changed service ships as a new revision behind the proxy —
//! blue-green or canary — is verified on live traffic, and rolls back by
//! itself. Decisions (the verdict of a window, the routing table of a split,
//! the canary steps) are pure functions in `verify` and `routes`; the
//! controller moves traffic and processes.

pub mod controller;
pub mod hooks;
pub mod routes;
pub mod verify;

pub use controller::{DeployError, Deployer, Started};
