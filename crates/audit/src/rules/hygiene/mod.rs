//! Repository hygiene: what is committed that should be installed or generated instead.

pub mod committed_dependency_tree;
