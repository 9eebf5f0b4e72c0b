//! Orchestra's reverse proxy data plane.
//!
//! The deploy controller owns a [`Proxy`] and drives it with [`Proxy::apply_routes`] (or the
//! all-or-nothing [`Proxy::set_routes`]): every call validates the new table, compiles it and
//! swaps it in atomically (`arc-swap`), so reading the table on the request path takes no lock.
//! A route whose revisions have no ready replica yet is valid and answers 503. Requests already in flight keep the table they
//! started with; a stream opened before a swap finishes on the upstream it was opened on.
//!
//! Plain HTTP/1.1 keep-alive requests are read and answered by the proxy's own front (`front`);
//! HTTP/2 (h2c), HTTP/1.0, upgrades and streamed uploads go through hyper's server.
//!
//! Per request: route by host and longest path prefix (`table`), pick a revision by weight or
//! sticky key (`select`), pick a replica (`balancer`) whose circuit breaker is closed
//! (`breaker`), forward with streaming bodies both ways over a pooled keep-alive connection
//! (`forward`, `pool`, and `h1`, the proxy's own HTTP/1.1 client side), pass upgrades through (`upgrade`) and record per-revision stats
//! (`stats`, `histogram`) that the verifier reads as windows ([`RevisionStats::since`]).
//! A revision that is a [`StaticSite`] is answered from its directory (`static_files`).
//!
//! The data plane runs on the caller's tokio runtime, or on dedicated thread-per-core workers
//! ([`ProxyConfig::workers`], `worker`). `examples/proxy.rs` is a standalone binary around it;
//! `bench/proxy/run.sh` compares it with nginx and haproxy.

mod balancer;
mod body;
mod breaker;
mod config;
mod error;
mod forward;
mod front;
mod guard;
mod h1;
mod headers;
mod histogram;
mod pool;
mod respond;
mod route;
mod select;
mod server;
mod static_files;
mod stats;
mod table;
mod upgrade;
mod upstream;
mod worker;

pub use config::ProxyConfig;
pub use error::{ProxyError, RejectedRoute, RouteIssue};
pub use histogram::Histogram;
pub use route::{Balance, Route, StaticSite, Sticky, Target};
pub use server::Proxy;
pub use stats::RevisionStats;
