//! Header rewriting at the proxy boundary: hop-by-hop removal, `X-Forwarded-*` and `Forwarded`
//! (replaced, or extended for trusted proxies), request ids.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::HeaderMap;
use hyper::header::{
    CONNECTION, FORWARDED, HOST, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use hyper::http::uri::Authority;
use rand::Rng;

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop header names, for removal from a header map.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1 and common practice).
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether this HTTP/1.1 request asks to switch protocols (WebSocket and friends).
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers, including those named in `Connection`. With `upgrade`,
/// `Connection` and `Upgrade` stay: they carry the protocol switch across the proxy.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most requests carry none of these: one pass over a handful of names decides.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    remove_connection_listed(headers);
    for name in &HOP_BY_HOP {
        if upgrade && (name == CONNECTION || name == UPGRADE) {
            continue;
        }
        headers.remove(name);
    }
}

/// Removes the headers a `Connection` header names as its own (`Connection: x-trace`).
pub(crate) fn remove_connection_listed(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| {
            !["close", "keep-alive", "upgrade"]
                .iter()
                .any(|known| t.eq_ignore_ascii_case(known))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
}

/// The scheme a listener serves, as `X-Forwarded-Proto` and `Forwarded: proto=` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    /// For a TLS listener.
    Https,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// What a listener tells about itself in forwarded headers; made once per listener.
#[derive(Clone, Debug)]
pub(crate) struct Listening {
    pub(crate) scheme: Scheme,
    /// The port clients connect to, as `X-Forwarded-Port` writes it.
    pub(crate) port: HeaderValue,
}

impl Listening {
    pub(crate) fn new(scheme: Scheme, port: u16) -> Listening {
        Listening {
            scheme,
            port: HeaderValue::from(port),
        }
    }
}

/// Who a client connection comes from and what it reached, as the forwarded headers say it.
/// Made once per connection, so requests only write it out.
#[derive(Debug)]
pub(crate) struct Origin {
    /// The client's address as `X-Forwarded-For` writes it (`192.0.2.7`, `2001:db8::1`).
    client_ip: HeaderValue,
    /// The same as an RFC 7239 node: IPv6 addresses bracketed and quoted.
    node: HeaderValue,
    scheme: Scheme,
    port: HeaderValue,
    /// The client is a proxy in `trusted_proxies`: its forwarded headers are extended.
    trusted: bool,
}

impl Origin {
    /// An IPv4 client on an IPv6 socket (`::ffff:a.b.c.d`) is written as IPv4.
    pub(crate) fn new(peer: IpAddr, listening: &Listening, trusted: bool) -> Origin {
        let peer = peer.to_canonical();
        let unknown = || HeaderValue::from_static("unknown");
        let client_ip = HeaderValue::try_from(peer.to_string()).unwrap_or_else(|_| unknown());
        let node = match peer {
            IpAddr::V4(_) => client_ip.clone(),
            IpAddr::V6(v6) => {
                HeaderValue::try_from(format!("\"[{v6}]\"")).unwrap_or_else(|_| unknown())
            }
        };
        Origin {
            client_ip,
            node,
            scheme: listening.scheme,
            port: listening.port.clone(),
            trusted,
        }
    }
}

/// Headers the proxy adds to a request on its way upstream. They are written after the
/// client's own, which keep their order; hop-by-hop ones and the forwarded headers the proxy
/// rewrites (see [`forwarded_as_is`]) stay behind. Nothing is inserted into the client's
/// header map, and the forwarded headers are written straight into the request head, so a
/// request costs no allocation for them.
pub(crate) struct Added {
    origin: Arc<Origin>,
    /// The host the client asked for (its `Host`, or an HTTP/2 request's authority).
    seen_host: Option<HeaderValue>,
    /// A trusted client's own `X-Forwarded-Proto`, `-Host`, `-Port`: forwarded as they came.
    kept_proto: bool,
    kept_host: bool,
    kept_port: bool,
    /// A trusted client's `X-Forwarded-For` and `Forwarded`: extended with this hop.
    extend_for: bool,
    extend_forwarded: bool,
    /// `Host` for HTTP/2 requests (from `:authority`), or the upstream's when the client sent
    /// none.
    pub(crate) host: Option<HeaderValue>,
    pub(crate) request_id: Option<HeaderValue>,
    /// `Connection: upgrade`, carrying a protocol switch across.
    pub(crate) upgrade: bool,
    /// `Content-Length` or `Transfer-Encoding` when the body is re-framed (HTTP/2 clients,
    /// chunked uploads).
    pub(crate) framing: Option<(HeaderName, HeaderValue)>,
}

impl Added {
    /// The forwarded headers for a request from `origin` (see `ProxyConfig`'s docs), and a
    /// `Host` from the URI for HTTP/2 requests, which carry it as `:authority`.
    pub(crate) fn forwarded(
        headers: &HeaderMap,
        origin: &Arc<Origin>,
        authority: Option<&Authority>,
    ) -> Added {
        let client_host = headers.get(HOST);
        let host = match client_host {
            Some(_) => None,
            None => authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
        };
        let seen_host = client_host.or(host.as_ref()).cloned();
        let trusted = origin.trusted;
        let sent = |name: &HeaderName| trusted && headers.contains_key(name);
        Added {
            origin: origin.clone(),
            seen_host,
            kept_proto: sent(&X_FORWARDED_PROTO),
            kept_host: sent(&X_FORWARDED_HOST),
            kept_port: sent(&X_FORWARDED_PORT),
            extend_for: sent(&X_FORWARDED_FOR),
            extend_forwarded: sent(&FORWARDED),
            host,
            request_id: None,
            upgrade: false,
            framing: None,
        }
    }

    /// Whether a client's header is written upstream as it came.
    pub(crate) fn passes(&self, name: &HeaderName) -> bool {
        forwarded_as_is(name, self.upgrade, self.origin.trusted)
    }

    /// Appends every added header to a request head; `headers` are the client's, whose
    /// forwarded chains a trusted client's request extends.
    pub(crate) fn write(&self, buf: &mut Vec<u8>, headers: &HeaderMap) {
        let origin = &*self.origin;
        let scheme = origin.scheme.as_str().as_bytes();
        if let Some(host) = &self.host {
            push(buf, HOST.as_str(), host.as_bytes());
        }

        buf.extend_from_slice(b"x-forwarded-for: ");
        if self.extend_for {
            push_chain(buf, headers.get_all(&X_FORWARDED_FOR));
        }
        buf.extend_from_slice(origin.client_ip.as_bytes());
        buf.extend_from_slice(b"\r\n");
        if !self.kept_proto {
            push(buf, X_FORWARDED_PROTO.as_str(), scheme);
        }
        if !self.kept_host
            && let Some(host) = &self.seen_host
        {
            push(buf, X_FORWARDED_HOST.as_str(), host.as_bytes());
        }
        if !self.kept_port {
            push(buf, X_FORWARDED_PORT.as_str(), origin.port.as_bytes());
        }

        buf.extend_from_slice(b"forwarded: ");
        if self.extend_forwarded {
            push_chain(buf, headers.get_all(&FORWARDED));
        }
        buf.extend_from_slice(b"for=");
        buf.extend_from_slice(origin.node.as_bytes());
        if let Some(host) = &self.seen_host {
            buf.extend_from_slice(b";host=");
            push_quoted(buf, host.as_bytes());
        }
        buf.extend_from_slice(b";proto=");
        buf.extend_from_slice(scheme);
        buf.extend_from_slice(b"\r\n");

        if let Some(id) = &self.request_id {
            push(buf, X_REQUEST_ID.as_str(), id.as_bytes());
        }
        if self.upgrade {
            push(buf, CONNECTION.as_str(), b"upgrade");
        }
        if let Some((name, value)) = &self.framing {
            push(buf, name.as_str(), value.as_bytes());
        }
    }
}

fn push(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// The values of a list header, each followed by `, ` (empty ones left out).
fn push_chain(buf: &mut Vec<u8>, values: hyper::header::GetAll<'_, HeaderValue>) {
    for v in values {
        let v = v.as_bytes().trim_ascii();
        if !v.is_empty() {
            buf.extend_from_slice(v);
            buf.extend_from_slice(b", ");
        }
    }
}

/// An RFC 7239 value as a quoted-string (a host with a port is no token).
fn push_quoted(buf: &mut Vec<u8>, value: &[u8]) {
    buf.push(b'"');
    if value.iter().any(|&b| b == b'"' || b == b'\\') {
        for &b in value {
            if b == b'"' || b == b'\\' {
                buf.push(b'\\');
            }
            buf.push(b);
        }
    } else {
        buf.extend_from_slice(value);
    }
    buf.push(b'"');
}

/// Whether a client's header is written upstream as it came. Hop-by-hop headers stay behind
/// (but `Upgrade` on an upgrade); so do `X-Forwarded-For` and `Forwarded`, which the proxy
/// writes itself, and `X-Forwarded-Proto`, `-Host` and `-Port` unless the client is trusted.
pub(crate) fn forwarded_as_is(name: &HeaderName, upgrade: bool, trusted: bool) -> bool {
    match name.as_str() {
        "x-forwarded-for" | "forwarded" => false,
        "x-forwarded-proto" | "x-forwarded-host" | "x-forwarded-port" => trusted,
        _ if is_hop_by_hop(name) => upgrade && name == UPGRADE,
        _ => true,
    }
}

/// 128 random bits as 32 lowercase hex digits.
pub(crate) fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut v: u128 = rand::rng().random();
    let mut buf = [0u8; 32];
    for b in buf.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header map from name/value pairs, in order.
    pub(crate) fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_connection_listed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "gzip"),
            ("transfer-encoding", "chunked"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn upgrade_keeps_connection_and_upgrade() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("keep-alive", "1"),
        ]);
        assert!(is_upgrade_request(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.len(), 2);
        assert!(!is_upgrade_request(&map(&[("upgrade", "websocket")])));
        assert!(!is_upgrade_request(&map(&[("connection", "upgrade")])));
    }

    fn origin(peer: &str, trusted: bool) -> Arc<Origin> {
        let listening = Listening::new(Scheme::Http, 8080);
        Arc::new(Origin::new(peer.parse().unwrap(), &listening, trusted))
    }

    /// The head lines a request from `origin` carries upstream: the client's own that pass,
    /// then the added ones.
    fn written(h: &HeaderMap, a: &Added) -> Vec<String> {
        let mut buf = Vec::new();
        for (name, value) in h.iter().filter(|(n, _)| a.passes(n)) {
            push(&mut buf, name.as_str(), value.as_bytes());
        }
        a.write(&mut buf, h);
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn spoofing_client() -> HeaderMap {
        map(&[
            ("host", "shop.example:8443"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-port", "443"),
            ("forwarded", "for=1.1.1.1;proto=https"),
            ("accept", "*/*"),
        ])
    }

    #[test]
    fn an_untrusted_clients_forwarded_headers_are_replaced() {
        let h = spoofing_client();
        let a = Added::forwarded(&h, &origin("10.0.0.9", false), None);
        assert_eq!(
            written(&h, &a),
            [
                "host: shop.example:8443",
                "accept: */*",
                "x-forwarded-for: 10.0.0.9",
                "x-forwarded-proto: http",
                "x-forwarded-host: shop.example:8443",
                "x-forwarded-port: 8080",
                "forwarded: for=10.0.0.9;host=\"shop.example:8443\";proto=http",
            ]
        );
    }

    #[test]
    fn a_trusted_proxys_forwarded_headers_are_extended() {
        let mut h = spoofing_client();
        h.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2"));
        let a = Added::forwarded(&h, &origin("::ffff:10.0.0.9", true), None);
        assert_eq!(
            written(&h, &a),
            [
                "host: shop.example:8443",
                "x-forwarded-proto: https",
                "x-forwarded-host: evil.example",
                "x-forwarded-port: 443",
                "accept: */*",
                "x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.9",
                "forwarded: for=1.1.1.1;proto=https, \
                 for=10.0.0.9;host=\"shop.example:8443\";proto=http",
            ]
        );

        // A trusted proxy that sent none of them: set, as for anyone.
        let h = map(&[("host", "a")]);
        let a = Added::forwarded(&h, &origin("10.0.0.9", true), None);
        assert_eq!(written(&h, &a)[1], "x-forwarded-for: 10.0.0.9");
        assert_eq!(written(&h, &a)[2], "x-forwarded-proto: http");
    }

    #[test]
    fn http2_hosts_ipv6_clients_and_the_rest_of_the_added_headers() {
        let h = map(&[]);
        let authority = Authority::from_static("h2.example:80");
        let listening = Listening::new(Scheme::Https, 443);
        let origin = Arc::new(Origin::new(
            "2001:db8::1".parse().unwrap(),
            &listening,
            false,
        ));
        let mut a = Added::forwarded(&h, &origin, Some(&authority));
        a.upgrade = true;
        a.request_id = Some(HeaderValue::from_static("rid"));
        assert_eq!(
            written(&h, &a),
            [
                "host: h2.example:80",
                "x-forwarded-for: 2001:db8::1",
                "x-forwarded-proto: https",
                "x-forwarded-host: h2.example:80",
                "x-forwarded-port: 443",
                "forwarded: for=\"[2001:db8::1]\";host=\"h2.example:80\";proto=https",
                "x-request-id: rid",
                "connection: upgrade",
            ]
        );
        // No host at all: none claimed; quotes in a host are escaped.
        let a = Added::forwarded(&h, &origin, None);
        assert!(
            !written(&h, &a)
                .iter()
                .any(|l| l.starts_with("x-forwarded-host"))
        );
        let mut buf = Vec::new();
        push_quoted(&mut buf, br#"a"b\c"#);
        assert_eq!(buf, br#""a\"b\\c""#);
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded_as_is() {
        for name in &HOP_BY_HOP {
            assert!(is_hop_by_hop(name), "{name}");
            assert_eq!(forwarded_as_is(name, true, true), name == UPGRADE, "{name}");
            assert!(!forwarded_as_is(name, false, true), "{name}");
        }
        assert!(!is_hop_by_hop(&HOST));
        assert!(forwarded_as_is(&HOST, false, false));
        for name in [&X_FORWARDED_FOR, &FORWARDED] {
            assert!(!forwarded_as_is(name, false, true), "rewritten: {name}");
        }
        for name in [&X_FORWARDED_PROTO, &X_FORWARDED_HOST, &X_FORWARDED_PORT] {
            assert!(!forwarded_as_is(name, false, false), "replaced: {name}");
            assert!(forwarded_as_is(name, false, true), "kept: {name}");
        }
        let mut h = map(&[
            ("connection", "keep-alive, X-Trace"),
            ("x-trace", "1"),
            ("accept", "*/*"),
        ]);
        remove_connection_listed(&mut h);
        assert!(!h.contains_key("x-trace"));
        assert!(h.contains_key("accept") && h.contains_key("connection"));
    }

    #[test]
    fn request_ids_are_random_hex() {
        let id = new_request_id();
        assert_eq!(id.len(), 32);
        assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(new_request_id(), id);
    }
}
