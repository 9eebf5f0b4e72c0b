//! Rule implementations: one file per rule, named after its id (`-` → `_`), grouped by
//! family directory. The registry (`crate::registry`) lists them in order.

pub mod compose;
pub mod dependencies;
pub mod dockerfile;
pub mod drift;
pub mod hygiene;
pub mod identifiers;
pub mod parse_error;
pub mod pulumi;
pub mod scan;
pub mod secrets;
pub mod vercel;
pub mod workflows;
