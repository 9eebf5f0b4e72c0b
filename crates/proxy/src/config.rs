//! Proxy settings: listen address, timeouts, retry and breaker policy, TLS, the limits every
//! client request is held to, and whose forwarded headers are believed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// Settings for one [`crate::Proxy`]. A zero `request_timeout`, `idle_timeout` or
/// `head_timeout` disables it.
///
/// # Limits
///
/// The limits hold for every HTTP/1.x request whichever server reads it (the proxy's own
/// HTTP/1.1 front or hyper's, see [`ProxyConfig::fast_http1`]), with the same answers:
///
/// | limit | default | past it |
/// | --- | --- | --- |
/// | [`max_head_bytes`](ProxyConfig::max_head_bytes) | 64 KiB | `431 Request Header Fields Too Large` (RFC 6585), connection closed |
/// | [`max_headers`](ProxyConfig::max_headers) | 100 | `431`, connection closed |
/// | [`max_body_bytes`](ProxyConfig::max_body_bytes) | 0 (unlimited) | `413 Content Too Large`; a chunked body that grows past it after the upstream answered is cut off |
/// | [`head_timeout`](ProxyConfig::head_timeout) | 30 s | the connection is closed without an answer (as nginx's `client_header_timeout`) |
/// | [`max_connections`](ProxyConfig::max_connections) | 0 (unlimited) | the new connection is answered `503` with `Connection: close` and closed |
///
/// Other answers both servers give: a malformed head (bad header name, a space before the
/// colon, obsolete line folding, conflicting `Content-Length` values, `Transfer-Encoding`
/// whose last coding is not `chunked`) is a `400`, and its connection is closed; a request
/// target over 65,534 bytes is a `414`; a transfer coding besides `chunked` is a `501`. A
/// malformed chunked body is a `400` (the proxy reads ahead what has arrived of it, up to
/// 64 KiB, before forwarding; a fault that only arrives once the upstream has answered cuts
/// the exchange off instead). A
/// request with both `Transfer-Encoding: chunked` and `Content-Length` is read by its chunked
/// framing alone and its connection closed after the answer (RFC 9112 §6.1); the upstream
/// only ever sees the proxy's own framing. An upstream's response with both loses its
/// `Content-Length` (RFC 9112 §6.3).
///
/// # Forwarded headers
///
/// A client whose address is in [`trusted_proxies`](ProxyConfig::trusted_proxies) is another
/// proxy whose `X-Forwarded-*` and `Forwarded` headers are believed: the proxy appends the
/// client's address to `X-Forwarded-For` and an element to `Forwarded`, and keeps any
/// `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Port` it sent (setting those it
/// did not). From any other client those five headers are dropped and written afresh from what
/// the proxy itself saw: `X-Forwarded-For` is the client's address, `X-Forwarded-Proto` the
/// listener's scheme (`http`), `X-Forwarded-Host` the request's `Host`, `X-Forwarded-Port` the
/// listener's port, and `Forwarded` (RFC 7239) says the same as `for`, `host` and `proto`.
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
    /// Clients (other proxies, load balancers) whose forwarded headers are extended rather
    /// than replaced, as CIDR blocks (`10.0.0.0/8`, `::1/128`). Empty (the default): no one's.
    /// An IPv4 client seen on an IPv6 socket (`::ffff:10.1.2.3`) is matched as IPv4.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request head (request line, headers and the blank line after them) in bytes.
    /// Values under 8 KiB (the smallest read buffer hyper's server takes) are taken as 8 KiB.
    pub max_head_bytes: usize,
    /// Most header lines in one request head (at least 1).
    pub max_headers: usize,
    /// Largest request body in bytes; 0: no limit. A `Content-Length` over it is answered
    /// `413` before any of the body is read; a chunked body is counted as it streams.
    pub max_body_bytes: u64,
    /// Time a client has to send a request head in full: a new connection's first head from
    /// when the connection was accepted, every later head from its first byte (the wait before
    /// that byte is `idle_timeout`'s). A connection past it is closed without an answer.
    pub head_timeout: Duration,
    /// Most client connections open at once (over all workers); 0: no limit. A connection
    /// beyond it is answered `503 Service Unavailable` with `Connection: close` and closed.
    /// Every open connection counts, idle keep-alive ones and upgraded tunnels included.
    pub max_connections: usize,
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
            trusted_proxies: Vec::new(),
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_body_bytes: 0,
            head_timeout: Duration::from_secs(30),
            max_connections: 0,
        }
    }
}

impl ProxyConfig {
    /// Whether `peer`'s forwarded headers are believed (see [`ProxyConfig::trusted_proxies`]).
    pub(crate) fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// [`ProxyConfig::max_head_bytes`] with its floor applied.
    pub(crate) fn head_limit(&self) -> usize {
        self.max_head_bytes.max(8 * 1024)
    }

    /// [`ProxyConfig::max_headers`] with its floor applied.
    pub(crate) fn header_limit(&self) -> usize {
        self.max_headers.max(1)
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

    #[test]
    fn trusted_proxies_are_matched_by_cidr_and_mapped_v4_as_v4() {
        let cfg = ProxyConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            ..ProxyConfig::default()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cfg.trusts(ip("10.1.2.3")));
        assert!(cfg.trusts(ip("::ffff:10.1.2.3")));
        assert!(cfg.trusts(ip("::1")));
        assert!(!cfg.trusts(ip("11.0.0.1")));
        assert!(!cfg.trusts(ip("::2")));
        assert!(
            !ProxyConfig::default().trusts(ip("127.0.0.1")),
            "no one by default"
        );
    }
}
