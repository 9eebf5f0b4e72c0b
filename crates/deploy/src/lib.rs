//! Deploys: a changed service ships as a new revision behind the proxy —
//! blue-green, canary or recreate — is verified on live traffic, and rolls
//! back by itself.
//!
//! Each service's traffic has one owner, its [`rollout::Rollout`]: a pure
//! state machine whose transitions are unit-tested without sockets or time.
//! The [`controller`] persists each transition with its release changes in
//! one transaction, then carries out the effects and derives the proxy's
//! routing table and the runtime's roles from the states. [`recovery`]
//! decides what a starting daemon runs; [`stored`] keeps private values out
//! of state.db.

pub mod controller;
pub mod hooks;
pub mod recovery;
pub mod restore_points;
pub mod rollout;
pub mod routes;
pub mod stored;
pub mod traffic;
pub mod verify;

pub use controller::{DeployError, Deployer, Started};
pub use restore_points::{RestorePoint, RestorePoints};
pub use traffic::Traffic;
