//! Rule implementations: one file per rule, named after its id (`-` → `_`), grouped by
//! family directory. The registry (`crate::registry`) lists them in order.

pub mod compose;
pub mod dockerfile;
pub mod parse_error;
