//! Vercel rules: `vercel.json` routing to hard-coded backend hosts, and the committed
//! `.vercel/` project link.

pub mod vercel_committed_project_link;
pub mod vercel_hard_coded_rewrite_host;
