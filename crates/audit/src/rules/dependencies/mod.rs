//! Dependency rules: locked or pinned versions with known vulnerabilities, matched
//! offline against an OSV database ([`crate::osv`]).

pub mod dependency_known_vulnerability;
