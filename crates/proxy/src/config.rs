//! Proxy settings: listen address, timeouts, retry and breaker policy, TLS.

use std::path::PathBuf;
use std::time::Duration;

/// Settings for one [`crate::Proxy`]. A zero `request_timeout` or `idle_timeout` disables it.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Address to listen on: `"127.0.0.1:8080"`, `"[::1]:0"`, or `":8080"` for all IPv4 interfaces.
    pub listen: String,
    /// Limit on establishing a TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// Limit from sending a request upstream to receiving its response headers.
    pub request_timeout: Duration,
    /// A client connection with no request open for this long is closed.
    pub idle_timeout: Duration,
    /// Extra attempts for idempotent, bodiless requests whose connect failed, each to another
    /// replica of the same revision.
    pub retries: u32,
    /// Consecutive connect failures, timeouts or 5xx that open an upstream's breaker (0 = never).
    pub breaker_failures: u32,
    /// How long an open breaker keeps its upstream out before one probe request is let through.
    pub breaker_cooldown: Duration,
    /// How long a request to a paused route waits for it to be unpaused before a 503.
    pub pause_timeout: Duration,
    /// 0: serve on the tokio runtime that called [`crate::Proxy::start`]. N: run the data plane
    /// on N dedicated threads, each with its own single-threaded runtime, `SO_REUSEPORT`
    /// listener and upstream connections (nginx/Envoy style: no request ever changes thread).
    pub workers: usize,
    /// Serve plain HTTP/1.1 requests on the proxy's own fast path (`front`), handing a
    /// connection to hyper's server only for what needs it (h2c, HTTP/1.0, upgrades, `Expect`,
    /// streamed request bodies). Off: hyper serves every connection.
    pub fast_http1: bool,
    /// A TLS listener beside the plain one (`crate::tls`); `None`: plain HTTP only.
    pub tls: Option<TlsConfig>,
}

/// TLS termination: where to listen, which certificates to serve, and how plain HTTP is treated.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// Address of the TLS listener, in the same forms as [`ProxyConfig::listen`].
    pub listen: String,
    /// Certificates, chosen by the client's SNI; the first is served when no other matches.
    pub certs: Vec<CertPaths>,
    /// Plain-HTTP requests are answered with a 308 to the same URL over `https`.
    pub redirect: bool,
    /// A client that has not completed its handshake by then is dropped.
    pub handshake_timeout: Duration,
    /// How often the certificate files are checked for a change (size, mtime, inode) and
    /// reloaded; zero: only on [`crate::Proxy::reload_tls`].
    pub reload_interval: Duration,
}

impl TlsConfig {
    /// A listener on `listen` serving `certs`, with the default timeouts and no redirect.
    pub fn new(listen: impl Into<String>, certs: Vec<CertPaths>) -> Self {
        TlsConfig {
            listen: listen.into(),
            certs,
            redirect: false,
            handshake_timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(2),
        }
    }
}

/// A certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    /// The chain, leaf first (`CERTIFICATE` blocks).
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1:8080".to_string(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            retries: 2,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(10),
            pause_timeout: Duration::from_secs(10),
            workers: 0,
            fast_http1: true,
            tls: None,
        }
    }
}

/// `":8080"` means every IPv4 interface, as in Go's `net.Listen`; anything else is passed on.
pub(crate) fn bind_address(listen: &str) -> String {
    if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_only_listens_on_all_ipv4_interfaces() {
        assert_eq!(bind_address(":0"), "0.0.0.0:0");
        assert_eq!(bind_address("127.0.0.1:80"), "127.0.0.1:80");
        assert_eq!(bind_address("[::1]:0"), "[::1]:0");
    }
}
