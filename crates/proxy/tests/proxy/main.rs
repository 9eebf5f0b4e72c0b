#![allow(clippy::unwrap_used)]
//! Integration tests: the real proxy on 127.0.0.1:0 in front of real upstream servers.

mod conformance;
mod deploy;
mod front;
mod lifecycle;
mod resilience;
mod routing;
mod static_site;
mod streaming;
mod support;
mod tls;
