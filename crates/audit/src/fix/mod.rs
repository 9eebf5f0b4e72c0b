//! Automatic fixes to the repository (`orchestra fix …`).

pub mod rename_id;
