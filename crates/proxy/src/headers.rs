//! Header rewriting at the proxy boundary: hop-by-hop removal, `X-Forwarded-*`, request ids.

use hyper::HeaderMap;
use hyper::header::{
    CONNECTION, HOST, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use hyper::http::uri::Authority;
use rand::Rng;

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_REQUEST_ID_NAME: HeaderName = X_REQUEST_ID;
static HOST_NAME: HeaderName = HOST;
static CONNECTION_NAME: HeaderName = CONNECTION;
static UPGRADE_VALUE: HeaderValue = HeaderValue::from_static("upgrade");
static HTTP: HeaderValue = HeaderValue::from_static("http");
static HTTPS: HeaderValue = HeaderValue::from_static("https");
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

/// Headers the proxy adds to a request on its way upstream. They are written after the
/// client's own, which keep their order; hop-by-hop ones and `X-Forwarded-For` (rewritten
/// here) stay behind. Nothing is inserted into the client's header map.
#[derive(Default)]
pub(crate) struct Added {
    pub(crate) forwarded_for: Option<HeaderValue>,
    pub(crate) forwarded_proto: bool,
    /// The client's connection was TLS: `X-Forwarded-Proto: https`.
    pub(crate) https: bool,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) forwarded_host: Option<HeaderValue>,
    pub(crate) request_id: Option<HeaderValue>,
    /// `Connection: upgrade`, carrying a protocol switch across.
    pub(crate) upgrade: bool,
    /// `Content-Length` or `Transfer-Encoding` when the body is re-framed (HTTP/2 clients).
    pub(crate) framing: Option<(HeaderName, HeaderValue)>,
}

impl Added {
    /// `X-Forwarded-For` (appending the client to any chain), `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` (kept when a proxy in front set them), and a `Host` from the URI for
    /// HTTP/2 requests, which carry it as `:authority`.
    pub(crate) fn forwarded(
        headers: &HeaderMap,
        client_ip: &HeaderValue,
        authority: Option<&Authority>,
    ) -> Added {
        let mut existing = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
        let forwarded_for = if existing.peek().is_none() {
            client_ip.clone()
        } else {
            let mut chain = Vec::with_capacity(64);
            for v in existing {
                chain.extend_from_slice(v.as_bytes());
                chain.extend_from_slice(b", ");
            }
            chain.extend_from_slice(client_ip.as_bytes());
            HeaderValue::from_bytes(&chain).unwrap_or_else(|_| client_ip.clone())
        };
        let client_host = headers.get(HOST);
        let host = match client_host {
            Some(_) => None,
            None => authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
        };
        let forwarded_host = if headers.contains_key(&X_FORWARDED_HOST) {
            None
        } else {
            client_host.or(host.as_ref()).cloned()
        };
        Added {
            forwarded_for: Some(forwarded_for),
            forwarded_proto: !headers.contains_key(&X_FORWARDED_PROTO),
            host,
            forwarded_host,
            ..Added::default()
        }
    }

    /// Every added header, in the order written.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        [
            (&HOST_NAME, self.host.as_ref()),
            (&X_FORWARDED_FOR, self.forwarded_for.as_ref()),
            (
                &X_FORWARDED_PROTO,
                self.forwarded_proto
                    .then_some(if self.https { &HTTPS } else { &HTTP }),
            ),
            (&X_FORWARDED_HOST, self.forwarded_host.as_ref()),
            (&X_REQUEST_ID_NAME, self.request_id.as_ref()),
            (&CONNECTION_NAME, self.upgrade.then_some(&UPGRADE_VALUE)),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .chain(self.framing.as_ref().map(|(n, v)| (n, v)))
    }
}

/// Whether a client's header is written upstream as it came.
pub(crate) fn forwarded_as_is(name: &HeaderName, upgrade: bool) -> bool {
    if is_hop_by_hop(name) {
        return upgrade && name == UPGRADE;
    }
    name != X_FORWARDED_FOR
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

    fn added(a: &Added) -> Vec<(String, String)> {
        a.iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn forwarded_for_appends_and_proto_host_are_kept() {
        let ip = HeaderValue::from_static("10.0.0.9");
        let h = map(&[("x-forwarded-for", "1.1.1.1"), ("host", "shop.example")]);
        let a = Added::forwarded(&h, &ip, None);
        assert_eq!(
            added(&a),
            [
                ("x-forwarded-for".into(), "1.1.1.1, 10.0.0.9".into()),
                ("x-forwarded-proto".into(), "http".into()),
                ("x-forwarded-host".into(), "shop.example".into()),
            ]
        );
        assert!(
            !forwarded_as_is(&X_FORWARDED_FOR, false),
            "the old chain is replaced"
        );

        let h = map(&[("x-forwarded-proto", "https")]);
        let authority = Authority::from_static("h2.example:80");
        let mut a = Added::forwarded(&h, &ip, Some(&authority));
        a.upgrade = true;
        a.request_id = Some(HeaderValue::from_static("rid"));
        assert_eq!(
            added(&a),
            [
                ("host".into(), "h2.example:80".into()),
                ("x-forwarded-for".into(), "10.0.0.9".into()),
                ("x-forwarded-host".into(), "h2.example:80".into()),
                ("x-request-id".into(), "rid".into()),
                ("connection".into(), "upgrade".into()),
            ]
        );
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded_as_is() {
        for name in &HOP_BY_HOP {
            assert!(is_hop_by_hop(name), "{name}");
            assert_eq!(forwarded_as_is(name, true), name == UPGRADE, "{name}");
            assert!(!forwarded_as_is(name, false), "{name}");
        }
        assert!(!is_hop_by_hop(&HOST));
        assert!(forwarded_as_is(&HOST, false));
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
