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
//! Both servers follow one set of HTTP/1.1 rules (RFC 9112) and limits, documented on
//! [`ProxyConfig`]: the same head size, header count, body size and head timeout, the same
//! answer to a malformed or ambiguous request (400, 431, 413, 501, or a close), and
//! `max_connections` (`limit`) in front of both. Forwarded headers (`X-Forwarded-*`,
//! `Forwarded`) are written by the proxy from what it saw, and only a client in
//! [`ProxyConfig::trusted_proxies`] can add to them (`headers`). An upstream response that is
//! framed both ways loses its `Content-Length` (`h1`). `tests/proxy/conformance.rs` runs every
//! rule against both servers, and against nginx where it is installed.
//!
//! Per request: route by host and longest path prefix (`table`), pick a revision by weight or
//! sticky key (`select`), pick a replica (`balancer`) whose circuit breaker is closed
//! (`breaker`), forward with streaming bodies both ways over a pooled keep-alive connection
//! (`forward`, `pool`, and `h1`, the proxy's own HTTP/1.1 client side), pass upgrades through (`upgrade`) and record per-revision stats
//! (`stats`, `histogram`) that the verifier reads as windows ([`RevisionStats::since`]).
//! A revision that is a [`StaticSite`] is answered from its directory (`static_files`).
//!
//! The data plane runs on the caller's tokio runtime, or on dedicated thread-per-core workers
//! ([`ProxyConfig::workers`], `worker`). With [`ProxyConfig::tls`] a TLS listener serves the same
//! routes over HTTP/1.1 and h2 (by ALPN), with certificates chosen by SNI and reloaded when their
//! files change (`tls`). `examples/proxy.rs` is a standalone binary around it;
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
mod limit;
mod pool;
mod respond;
mod route;
mod select;
mod server;
mod static_files;
mod stats;
mod table;
mod tls;
pub mod trace;
mod upgrade;
mod upstream;
mod worker;

pub use config::{CertPaths, ProxyConfig, TlsConfig};
pub use error::{ProxyError, RejectedRoute, RouteIssue};
pub use histogram::Histogram;
/// CIDR blocks, for [`ProxyConfig::trusted_proxies`] (`"10.0.0.0/8".parse::<IpNet>()`).
pub use ipnet::IpNet;
pub use route::{Balance, Route, StaticSite, Sticky, Target};
pub use server::Proxy;
pub use stats::{BreakerCounts, RevisionStats, RevisionTraffic};
pub use tls::TlsError;
