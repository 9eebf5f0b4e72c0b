//! Dockerfile rules.

pub mod dockerfile_latest_tag;
