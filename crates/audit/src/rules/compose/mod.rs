//! Compose file rules.
