//! Traces: W3C trace context (`traceparent`) and span records encoded as OTLP protobuf.
//!
//! The request path only parses or creates a [`TraceContext`] and fills a [`SpanRecord`] (fixed
//! fields, a few small strings); an exporter batches records and encodes them with
//! [`encode_export_request`]. The encoder is hand-written over the handful of OTLP messages we
//! emit, so the proxy pulls in no protobuf or OpenTelemetry SDK crates and no tracing layer sits
//! on the hot path.

use rand::Rng;

/// A W3C trace context: 16-byte trace id, 8-byte parent span id, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

/// Flag bit 0: the caller sampled this trace.
pub const FLAG_SAMPLED: u8 = 0x01;

impl TraceContext {
    /// Parses a `traceparent` header value; `None` when it is invalid (the caller starts a new
    /// trace). Follows W3C Trace Context level 1: lowercase hex, version `ff` forbidden, all-zero
    /// ids forbidden, a future version may carry more fields after a `-`.
    pub fn parse(value: &[u8]) -> Option<TraceContext> {
        if value.len() < 55 {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        if version == 0xff || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        if version == 0 && value.len() != 55 {
            return None;
        }
        if value.len() > 55 && value[55] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, b) in span_id.iter_mut().enumerate() {
            *b = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&value[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new trace (no incoming context), sampled.
    pub fn new_root() -> TraceContext {
        let mut rng = rand::rng();
        TraceContext {
            trace_id: nonzero(|| rng.random()),
            span_id: nonzero(|| rng.random()),
            flags: FLAG_SAMPLED,
        }
    }

    /// The same trace with a new span id: our span, whose parent is `self.span_id`.
    pub fn child(&self) -> TraceContext {
        let mut rng = rand::rng();
        TraceContext {
            trace_id: self.trace_id,
            span_id: nonzero(|| rng.random()),
            flags: self.flags,
        }
    }

    /// The `traceparent` value (version 00) naming this context's span as the parent.
    pub fn to_header(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[0] = b'0';
        out[1] = b'0';
        write_hex(&mut out[3..35], &self.trace_id);
        write_hex(&mut out[36..52], &self.span_id);
        write_hex(&mut out[53..55], &[self.flags]);
        out
    }
}

fn nonzero<const N: usize>(mut f: impl FnMut() -> [u8; N]) -> [u8; N] {
    loop {
        let v = f();
        if v != [0; N] {
            return v;
        }
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    Some(hex_digit(two[0])? << 4 | hex_digit(two[1])?)
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
}

/// OTLP span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
}

/// One finished span, as handed to the exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// `None` for a root span.
    pub parent_span_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// Status ERROR (with this message) when set; UNSET otherwise, as the HTTP conventions ask
    /// for a server span below 500.
    pub error: Option<String>,
}

/// What the proxy knows about one finished request, for its server span.
#[derive(Debug, Clone)]
pub struct HttpExchange<'a> {
    /// Our span (`child()` of the incoming context, or a root).
    pub context: TraceContext,
    /// The caller's span id, when a valid `traceparent` came in.
    pub parent: Option<[u8; 8]>,
    pub method: &'a str,
    /// The matched route's path prefix (`/api`).
    pub route: &'a str,
    pub path: &'a str,
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: u16,
    /// `1.1`, `2`.
    pub protocol_version: &'a str,
    pub client: &'a str,
    /// `None` when no response was produced (the upstream failed before a head).
    pub status: Option<u16>,
    /// The failure's kind (`timeout`, `connect`) when there is one.
    pub failure: Option<&'a str>,
    pub service: &'a str,
    pub revision: &'a str,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
}

/// The server span of one proxied request, named `{METHOD} {route}`, with the stable HTTP
/// semantic-convention attributes; 5xx and failures set `error.type` and status ERROR.
pub fn server_span(x: &HttpExchange<'_>) -> SpanRecord {
    let s = |v: &str| AttrValue::Str(v.to_owned());
    let mut attributes = vec![
        ("http.request.method", s(x.method)),
        ("url.path", s(x.path)),
        ("url.scheme", s(x.scheme)),
        ("server.address", s(x.host)),
        ("server.port", AttrValue::Int(i64::from(x.port))),
        ("network.protocol.version", s(x.protocol_version)),
        ("client.address", s(x.client)),
        ("http.route", s(x.route)),
        ("orchestra.service", s(x.service)),
        ("orchestra.revision", s(x.revision)),
    ];
    if let Some(code) = x.status {
        attributes.push(("http.response.status_code", AttrValue::Int(i64::from(code))));
    }
    let error = match (x.failure, x.status) {
        (Some(kind), _) => Some(kind.to_owned()),
        (None, Some(code)) if code >= 500 => Some(code.to_string()),
        (None, None) => Some("_OTHER".to_owned()),
        _ => None,
    };
    if let Some(kind) = &error {
        attributes.push(("error.type", s(kind)));
    }
    SpanRecord {
        trace_id: x.context.trace_id,
        span_id: x.context.span_id,
        parent_span_id: x.parent,
        name: format!("{} {}", x.method, x.route),
        kind: SpanKind::Server,
        start_unix_nanos: x.start_unix_nanos,
        end_unix_nanos: x.end_unix_nanos,
        attributes,
        error,
    }
}

// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A nested message: encoded into a scratch buffer, then written length-prefixed.
fn put_message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    put_bytes(out, field, &inner);
}

/// `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string = 1; bool = 2; int = 3; double = 4 }`.
fn put_attr(out: &mut Vec<u8>, field: u32, key: &str, value: &AttrValue) {
    put_message(out, field, |kv| {
        put_bytes(kv, 1, key.as_bytes());
        put_message(kv, 2, |any| match value {
            AttrValue::Str(s) => put_bytes(any, 1, s.as_bytes()),
            AttrValue::Bool(b) => {
                put_tag(any, 2, VARINT);
                put_varint(any, u64::from(*b));
            }
            AttrValue::Int(i) => {
                put_tag(any, 3, VARINT);
                put_varint(any, *i as u64);
            }
            AttrValue::Double(d) => {
                put_tag(any, 4, FIXED64);
                any.extend_from_slice(&d.to_le_bytes());
            }
        });
    });
}

fn put_span(out: &mut Vec<u8>, span: &SpanRecord) {
    // Span: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start 7, end 8,
    // attributes 9, status 15.
    put_message(out, 2, |s| {
        put_bytes(s, 1, &span.trace_id);
        put_bytes(s, 2, &span.span_id);
        if let Some(parent) = &span.parent_span_id {
            put_bytes(s, 4, parent);
        }
        put_bytes(s, 5, span.name.as_bytes());
        put_tag(s, 6, VARINT);
        put_varint(s, span.kind as u64);
        put_tag(s, 7, FIXED64);
        s.extend_from_slice(&span.start_unix_nanos.to_le_bytes());
        put_tag(s, 8, FIXED64);
        s.extend_from_slice(&span.end_unix_nanos.to_le_bytes());
        for (k, v) in &span.attributes {
            put_attr(s, 9, k, v);
        }
        if let Some(message) = &span.error {
            // Status { message = 2; code = 3 (ERROR = 2) }
            put_message(s, 15, |st| {
                put_bytes(st, 2, message.as_bytes());
                put_tag(st, 3, VARINT);
                put_varint(st, 2);
            });
        }
    });
}

/// An `ExportTraceServiceRequest` (the body of `POST /v1/traces`, content type
/// `application/x-protobuf`) carrying `spans` under one resource named `service_name`.
pub fn encode_export_request(service_name: &str, spans: &[SpanRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * spans.len() + 64);
    // ExportTraceServiceRequest { resource_spans = 1 }
    put_message(&mut out, 1, |rs| {
        // ResourceSpans { resource = 1; scope_spans = 2 }
        put_message(rs, 1, |res| {
            put_attr(
                res,
                1,
                "service.name",
                &AttrValue::Str(service_name.to_owned()),
            );
        });
        put_message(rs, 2, |ss| {
            // ScopeSpans { scope = 1 { name = 1; version = 2 }; spans = 2 }
            put_message(ss, 1, |scope| {
                put_bytes(scope, 1, b"orchestra");
                put_bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            for span in spans {
                put_span(ss, span);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_valid_traceparent() {
        let ctx = TraceContext::parse(VALID).expect("valid");
        assert_eq!(ctx.trace_id[0], 0x4b);
        assert_eq!(ctx.trace_id[15], 0x36);
        assert_eq!(
            ctx.span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(ctx.flags, FLAG_SAMPLED);
        assert_eq!(&ctx.to_header()[..], VALID);
    }

    #[test]
    fn rejects_invalid_traceparents() {
        let bad: &[&[u8]] = &[
            b"",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for v in bad {
            assert_eq!(
                TraceContext::parse(v),
                None,
                "{}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn a_future_version_may_carry_more_fields() {
        let v = b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(TraceContext::parse(v).is_some());
    }

    #[test]
    fn child_keeps_the_trace_and_changes_the_span() {
        let parent = TraceContext::parse(VALID).expect("valid");
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_eq!(TraceContext::parse(&child.to_header()), Some(child));
        let root = TraceContext::new_root();
        assert_ne!(root.trace_id, [0; 16]);
        assert_eq!(TraceContext::parse(&root.to_header()), Some(root));
    }

    #[test]
    fn varints_encode_as_protobuf() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut out = Vec::new();
        put_varint(&mut out, (-1i64) as u64);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn a_span_encodes_its_fields() {
        let span = SpanRecord {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            name: "GET /api".into(),
            kind: SpanKind::Server,
            start_unix_nanos: 10,
            end_unix_nanos: 20,
            attributes: vec![("http.response.status_code", AttrValue::Int(502))],
            error: Some("502".into()),
        };
        let mut out = Vec::new();
        put_span(&mut out, &span);
        // Field 2, length-delimited, then trace_id (field 1, 16 bytes of 1).
        assert_eq!(out[0], 0x12);
        let body = &out[2..];
        assert_eq!(&body[..2], &[0x0a, 16]);
        assert_eq!(&body[2..18], &[1; 16]);
        assert_eq!(&body[18..20], &[0x12, 8]);
        assert_eq!(&body[28..30], &[0x22, 8]); // parent_span_id
        assert_eq!(&body[38..40], &[0x2a, 8]);
        assert_eq!(&body[40..48], b"GET /api");
        assert_eq!(&body[48..50], &[0x30, 2]); // kind SERVER
        assert_eq!(body[50], 0x39); // start, fixed64
        assert_eq!(&body[51..59], &10u64.to_le_bytes());
        // Status: field 15 (tag 0x7a) { message "502", code (tag 0x18) ERROR }.
        let tail = &body[body.len() - 9..];
        assert_eq!(tail, &[0x7a, 7, 0x12, 3, b'5', b'0', b'2', 0x18, 2]);
        let whole = encode_export_request("orchestra", &[span]);
        assert_eq!(whole[0], 0x0a);
    }
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// `host:port` of the OTLP/HTTP receiver (`http://` only); spans go to `/v1/traces`.
    pub authority: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Records waiting beyond this are dropped (counted), never blocking a request.
    pub queue: usize,
    /// Most spans per POST.
    pub batch: usize,
    /// A partial batch is sent after this long.
    pub flush: std::time::Duration,
}

/// An endpoint that is not `http://host:port[/]`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("traces endpoint {0:?} must be http://host:port")]
pub struct EndpointError(pub String);

/// `OTEL_EXPORTER_OTLP_ENDPOINT`-style base URL → `host:port` (port 4318 by default).
pub fn parse_endpoint(url: &str) -> Result<String, EndpointError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| EndpointError(url.to_owned()))?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(EndpointError(url.to_owned()));
    }
    if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        Ok(host.to_owned())
    } else if host.contains(':') && !host.ends_with(']') {
        Err(EndpointError(url.to_owned()))
    } else {
        Ok(format!("{host}:4318"))
    }
}

/// The request path's handle: `record` is a `try_send` on a bounded channel.
#[derive(Clone)]
pub struct Exporter {
    tx: std::sync::mpsc::SyncSender<SpanRecord>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Exporter {
    /// Starts the batch thread. It ends when every `Exporter` clone is dropped, after sending
    /// what it holds.
    pub fn start(config: ExportConfig) -> std::io::Result<Exporter> {
        let (tx, rx) = std::sync::mpsc::sync_channel(config.queue.max(1));
        std::thread::Builder::new()
            .name("orchestra-traces".into())
            .spawn(move || run_batches(&config, &rx))?;
        Ok(Exporter {
            tx,
            dropped: Default::default(),
        })
    }

    /// Hands a finished span to the exporter; drops it when the queue is full.
    pub fn record(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn run_batches(config: &ExportConfig, rx: &std::sync::mpsc::Receiver<SpanRecord>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut batch = Vec::with_capacity(config.batch);
    loop {
        let closed = match rx.recv_timeout(config.flush) {
            Ok(span) => {
                batch.push(span);
                while batch.len() < config.batch {
                    match rx.try_recv() {
                        Ok(span) => batch.push(span),
                        Err(_) => break,
                    }
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        // Sent once the channel is drained: a quiet proxy still exports promptly.
        if !batch.is_empty() {
            let body = encode_export_request(&config.service_name, &batch);
            if let Err(e) = post(&config.authority, &body) {
                tracing::warn!(endpoint = %config.authority, error = %e, spans = batch.len(), "traces export failed");
            }
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

/// One `POST /v1/traces` over a fresh connection (the exporter sends a batch at most every
/// `flush`, so a pooled client buys little and a plain socket keeps the proxy crate free of an
/// HTTP client stack).
fn post(authority: &str, body: &[u8]) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let timeout = Some(std::time::Duration::from_secs(5));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut status = [0u8; 12];
    stream.read_exact(&mut status)?;
    if &status[9..10] == b"2" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "receiver answered {}",
            String::from_utf8_lossy(&status[9..12])
        )))
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;

    fn exchange(status: Option<u16>, failure: Option<&'static str>) -> SpanRecord {
        let context = TraceContext::new_root();
        server_span(&HttpExchange {
            context,
            parent: Some([9; 8]),
            method: "GET",
            route: "/api",
            path: "/api/users",
            scheme: "http",
            host: "app.local",
            port: 8080,
            protocol_version: "1.1",
            client: "127.0.0.1",
            status,
            failure,
            service: "api",
            revision: "r2",
            start_unix_nanos: 5,
            end_unix_nanos: 9,
        })
    }

    fn attr<'a>(span: &'a SpanRecord, key: &str) -> Option<&'a AttrValue> {
        span.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn a_server_span_carries_the_http_conventions() {
        let span = exchange(Some(200), None);
        assert_eq!(span.name, "GET /api");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.parent_span_id, Some([9; 8]));
        assert_eq!(
            attr(&span, "http.response.status_code"),
            Some(&AttrValue::Int(200))
        );
        assert_eq!(
            attr(&span, "http.route"),
            Some(&AttrValue::Str("/api".into()))
        );
        assert_eq!(
            attr(&span, "url.path"),
            Some(&AttrValue::Str("/api/users".into()))
        );
        assert_eq!(attr(&span, "server.port"), Some(&AttrValue::Int(8080)));
        assert_eq!(
            attr(&span, "orchestra.revision"),
            Some(&AttrValue::Str("r2".into()))
        );
        assert_eq!(attr(&span, "error.type"), None);
        assert_eq!(span.error, None);
        // A 4xx is the client's error: no error on a server span.
        assert_eq!(exchange(Some(404), None).error, None);
    }

    #[test]
    fn server_errors_and_failures_set_error_type() {
        let span = exchange(Some(503), None);
        assert_eq!(
            attr(&span, "error.type"),
            Some(&AttrValue::Str("503".into()))
        );
        assert_eq!(span.error.as_deref(), Some("503"));
        let span = exchange(None, Some("timeout"));
        assert_eq!(
            attr(&span, "error.type"),
            Some(&AttrValue::Str("timeout".into()))
        );
        assert_eq!(attr(&span, "http.response.status_code"), None);
    }
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:4318").as_deref(),
            Ok("127.0.0.1:4318")
        );
        assert_eq!(
            parse_endpoint("http://collector/").as_deref(),
            Ok("collector:4318")
        );
        assert!(parse_endpoint("https://collector").is_err());
        assert!(parse_endpoint("http://collector/v1/traces").is_err());
        assert!(parse_endpoint("http://").is_err());
    }

    /// A real HTTP receiver on an ephemeral port gets the encoded batch.
    #[test]
    fn exporter_posts_batches_to_the_receiver() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let authority = listener.local_addr().expect("addr").to_string();
        let exporter = Exporter::start(ExportConfig {
            authority,
            service_name: "orchestra".into(),
            queue: 16,
            batch: 8,
            flush: std::time::Duration::from_millis(50),
        })
        .expect("start");
        let span = SpanRecord {
            trace_id: [7; 16],
            span_id: [8; 8],
            parent_span_id: None,
            name: "GET /api".into(),
            kind: SpanKind::Server,
            start_unix_nanos: 1,
            end_unix_nanos: 2,
            attributes: vec![("http.route", AttrValue::Str("/api".into()))],
            error: None,
        };
        exporter.record(span.clone());
        let (conn, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        reader.read_line(&mut line).expect("request line");
        assert_eq!(line, "POST /v1/traces HTTP/1.1\r\n");
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).expect("header");
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .expect("answer");
        assert_eq!(body, encode_export_request("orchestra", &[span]));
        assert_eq!(exporter.dropped(), 0);
    }
}
