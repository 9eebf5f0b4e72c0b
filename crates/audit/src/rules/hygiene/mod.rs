//! Repository hygiene: what is committed that should be installed, generated or kept
//! out of the repository instead.

pub mod committed_binary_or_archive;
pub mod committed_dependency_tree;
pub mod committed_terraform_state;
