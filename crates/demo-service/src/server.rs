//! Request handling: routing, the app JSON answer and the special endpoints.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use crate::body::{Body, SseBody};
use crate::duration::parse_duration;
use crate::say;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Everything a request handler needs, shared by all connections.
pub struct State {
    /// Service name, for the human-readable log lines.
    pub name: String,
    /// Service name, already encoded as a JSON string.
    pub name_json: String,
    /// Version, already encoded as a JSON string (shared with SSE bodies).
    pub version_json: Arc<str>,
    /// The port actually bound (differs from `--port` when that is 0).
    pub port: u16,
    /// This process's id.
    pub pid: u32,
    /// App requests served so far.
    pub requests: AtomicU64,
    /// State of the failure-injection random generator.
    pub rng: AtomicU64,
    /// Fraction of app requests answered 500.
    pub fail_rate: f64,
    /// Delay added to each app request.
    pub latency: Option<Duration>,
    /// Path that serves health.
    pub health_path: String,
    /// From this instant on, health answers 503.
    pub unhealthy_at: Option<Instant>,
    /// Until this instant, /ready answers 503.
    pub ready_at: Instant,
    /// Print one stdout line per request.
    pub log_requests: bool,
}

impl State {
    /// Draws a uniform number in [0, 1). SplitMix64 over an atomic counter:
    /// lock-free and cheap, and statistical quality is ample for this.
    fn random_fraction(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Encodes a string as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail; the fallback only satisfies the types.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

enum Route {
    Health,
    MovedHealth,
    Ready,
    Stream,
    Echo,
    Headers,
    Sleep,
    App,
}

/// Answers one request. Never fails: every problem becomes an HTTP status.
pub async fn handle(req: Request<Incoming>, st: Arc<State>) -> Result<Response<Body>, Infallible> {
    if st.log_requests {
        say(&format!("{} {} {}", st.name, req.method(), req.uri()));
    }
    let path = req.uri().path();
    let route = if path == st.health_path {
        Route::Health
    } else {
        match path {
            // When health moved, the usual path must not look healthy, or a
            // probe configured with the wrong path would still pass.
            "/health" => Route::MovedHealth,
            "/ready" => Route::Ready,
            "/stream" => Route::Stream,
            "/echo" => Route::Echo,
            "/headers" => Route::Headers,
            "/sleep" => Route::Sleep,
            _ => Route::App,
        }
    };
    let response = match route {
        Route::Health => health(&st),
        Route::MovedHealth => json(
            StatusCode::NOT_FOUND,
            format!(
                "{{\"error\":\"not found\",\"health_path\":{}}}",
                json_string(&st.health_path)
            ),
        ),
        Route::Ready => ready(&st),
        Route::Stream => stream(&st, req.uri().query()),
        Route::Echo => echo(req),
        Route::Headers => headers(&req),
        Route::Sleep => sleep(&st, req.uri().query()).await,
        Route::App => app(&st, req.uri().path()).await,
    };
    Ok(response)
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    response
}

fn bad_request(message: &str) -> Response<Body> {
    json(
        StatusCode::BAD_REQUEST,
        format!("{{\"error\":{}}}", json_string(message)),
    )
}

fn health(st: &State) -> Response<Body> {
    match st.unhealthy_at {
        Some(at) if Instant::now() >= at => json(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(b"{\"status\":\"unhealthy\"}"),
        ),
        _ => json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}")),
    }
}

fn ready(st: &State) -> Response<Body> {
    if Instant::now() >= st.ready_at {
        json(
            StatusCode::OK,
            Bytes::from_static(b"{\"status\":\"ready\"}"),
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(b"{\"status\":\"not ready\"}"),
        )
    }
}

async fn app(st: &State, path: &str) -> Response<Body> {
    if let Some(latency) = st.latency {
        tokio::time::sleep(latency).await;
    }
    let n = st.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let failed = st.fail_rate > 0.0 && st.random_fraction() < st.fail_rate;
    let mut body = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = write!(
        body,
        "{{\"service\":{},\"version\":{},\"path\":{},\"pid\":{},\"port\":{},\"requests\":{}",
        st.name_json,
        st.version_json,
        json_string(path),
        st.pid,
        st.port,
        n
    );
    if failed {
        body.push_str(",\"error\":\"injected failure (--fail-rate)\"}");
        json(StatusCode::INTERNAL_SERVER_ERROR, body)
    } else {
        body.push('}');
        json(StatusCode::OK, body)
    }
}

/// Finds `key` in a query string; values are used as given (no
/// percent-decoding: the parameters here are numbers and durations).
fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

fn stream(st: &State, query: Option<&str>) -> Response<Body> {
    let total = match query_param(query, "n").map(str::parse::<u64>) {
        None => 5,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("n must be a whole number of events"),
    };
    let interval = match query_param(query, "interval").map(parse_duration) {
        None => Duration::from_millis(100),
        Some(Ok(d)) => d,
        Some(Err(e)) => return bad_request(&e),
    };
    let mut response = Response::new(Body::Sse(SseBody::new(
        total,
        interval,
        st.version_json.clone(),
    )));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The request's headers as a JSON object (repeated names joined with `, `): what a
/// proxy in front of the service sent it.
fn headers(req: &Request<Incoming>) -> Response<Body> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match seen.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(&value);
            }
            None => seen.push((name.as_str().to_owned(), value)),
        }
    }
    let fields: Vec<String> = seen
        .iter()
        .map(|(n, v)| format!("{}:{}", json_string(n), json_string(v)))
        .collect();
    json(StatusCode::OK, format!("{{{}}}", fields.join(",")))
}

fn echo(req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        let mut response = bad_request("use POST /echo with a body");
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let mut response = Response::new(Body::Echo(req.into_body()));
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

async fn sleep(st: &State, query: Option<&str>) -> Response<Body> {
    let duration = match query_param(query, "d").map(parse_duration) {
        None => Duration::from_secs(1),
        Some(Ok(d)) => d,
        Some(Err(e)) => return bad_request(&e),
    };
    tokio::time::sleep(duration).await;
    json(
        StatusCode::OK,
        format!(
            "{{\"service\":{},\"version\":{},\"slept_ms\":{}}}",
            st.name_json,
            st.version_json,
            duration.as_millis()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let q = Some("n=3&interval=50ms&flag");
        assert_eq!(query_param(q, "n"), Some("3"));
        assert_eq!(query_param(q, "interval"), Some("50ms"));
        assert_eq!(query_param(q, "flag"), Some(""));
        assert_eq!(query_param(q, "d"), None);
        assert_eq!(query_param(None, "n"), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c"), r#""a\"b\\c""#);
    }
}
