#![allow(clippy::unwrap_used)]
//! Integration tests (one binary for the crate, modules per area).

mod cli;
mod common;
mod dependencies;
mod drift;
mod identifiers;
mod messy_platform;
mod registry;
mod report;
mod sarif;
mod secrets;
mod workflows;
