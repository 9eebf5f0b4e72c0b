//! One request through the proxy: route → (wait while paused) → revision → replica → upstream,
//! with bounded retries on connect failure, a timeout to response headers, and stats.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper::header::{CONNECTION, HOST, HeaderMap, HeaderValue, SET_COOKIE, TRANSFER_ENCODING};
use hyper::http::uri::{Authority, PathAndQuery, Uri};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;
use tracing::debug;

use crate::balancer;
use crate::body::{self, ClientBody, ClientBodyError, ProxyBody};
use crate::guard::{ConnState, RequestGuard};
use crate::h1::{ExchangeError, H1Error, RequestBody, ResponseHead, UpstreamBody, UpstreamConn};
use crate::headers::{self, Added, X_REQUEST_ID};
use crate::pool;
use crate::respond::Reject;
use crate::select;
use crate::server::Shared;
use crate::static_files;
use crate::stats::Outcome;
use crate::table::{CompiledRoute, CompiledSticky, CompiledTarget, RouteTable};
use crate::upgrade;
use crate::upstream::UpstreamState;

/// Serves one request; never fails (errors become JSON responses).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    mut req: Request<ClientBody>,
) -> Response<ProxyBody> {
    let mut guard = RequestGuard::new(conn);
    let (request_id, generated_id) = match req.headers().get(&X_REQUEST_ID) {
        Some(id) => (id.clone(), false),
        None => (headers::new_request_id(), true),
    };
    let (table, route_idx) = match resolve_route(&shared, &req).await {
        Ok(found) => found,
        Err(reject) => return reject.into_response(&request_id, Some(guard)),
    };
    let route = &table.routes[route_idx];
    let Some((target_idx, set_cookie)) = choose_target(route, req.headers()) else {
        return Reject::NoTarget.into_response(&request_id, Some(guard));
    };
    let target = &route.targets[target_idx];
    if let Some(site) = &target.site {
        // Boxed: the forwarding path's future carries none of its state.
        let serve = static_files::serve(route, target, site, req, guard, &request_id, set_cookie);
        return Box::pin(serve).await;
    }
    if let Some(text) = &target.not_ready {
        // Not the revision's failure (nothing of it ran), so not in its stats either.
        return Reject::NotReady(text.clone()).into_response(&request_id, Some(guard));
    }
    guard.set_revision(target.metrics.clone());
    let started = Instant::now();

    let client_upgrade =
        headers::is_upgrade_request(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // What the front buffered has passed these checks already.
    let body = match body {
        ClientBody::Hyper(body) => {
            let max = shared.cfg.max_body_bytes;
            match check_hyper_body(&parts.headers, &body, max) {
                Err(reject) => return reject.into_response(&request_id, Some(guard)),
                Ok(false) => ClientBody::Hyper(body),
                // Rare (chunked uploads): boxed so that the common path's future stays small.
                Ok(true) => match Box::pin(body::read_ahead(body, max)).await {
                    Ok(body) => body,
                    Err(e) => return body_reject(&e).into_response(&request_id, Some(guard)),
                },
            }
        }
        other => other,
    };
    let Some(path_and_query) = forwarded_path_and_query(route, &parts.uri) else {
        return Reject::BadPath.into_response(&request_id, Some(guard));
    };
    // Hop-by-hop headers stay behind as the head is written; only names a `Connection`
    // header lists as its own have to be found first.
    if parts.headers.contains_key(CONNECTION) {
        headers::remove_connection_listed(&mut parts.headers);
    }
    let mut added = Added::forwarded(&parts.headers, &guard.conn().origin, parts.uri.authority());
    added.upgrade = client_upgrade.is_some();
    if generated_id {
        added.request_id = Some(request_id.clone());
    }
    let (request_body, framing) = RequestBody::frame(body, &parts.headers);
    added.framing = framing;
    let mut request_body = Some(request_body);
    // Only a request we can send again may be retried, and only onto another replica.
    let replayable = matches!(request_body, Some(RequestBody::None));
    let retries = if client_upgrade.is_none()
        && is_idempotent(&parts.method)
        && replayable
        && target.upstreams.len() > 1
    {
        shared.cfg.retries as usize
    } else {
        0
    };
    let host_from_upstream = added.host.is_none() && !parts.headers.contains_key(HOST);
    let mut tried: Vec<usize> = Vec::new();
    loop {
        let Some(up_idx) = pick_upstream(&shared, route, target, &tried) else {
            target.metrics.record(started.elapsed(), Outcome::Failed);
            return Reject::NoHealthyUpstream.into_response(&request_id, Some(guard));
        };
        let upstream = &target.upstreams[up_idx];
        guard.set_upstream(upstream.clone());
        if host_from_upstream {
            added.host = Some(upstream.host.clone());
        }
        let attempt = Attempt {
            method: &parts.method,
            target: &path_and_query,
            headers: &parts.headers,
            added: &added,
            replayable,
        };
        let body = request_body.take().unwrap_or(RequestBody::None);

        match exchange(&shared, upstream, &attempt, body, started).await {
            Ok((conn, head)) => {
                let failed = head.status.is_server_error();
                if failed {
                    upstream.breaker.on_failure(shared.now_us());
                } else {
                    upstream.breaker.on_success();
                }
                target
                    .metrics
                    .record(started.elapsed(), Outcome::Status(head.status.as_u16()));
                if head.status == StatusCode::SWITCHING_PROTOCOLS
                    && let Some(client_upgrade) = client_upgrade
                {
                    return upgrade::tunnel(
                        &shared,
                        head,
                        *conn,
                        client_upgrade,
                        guard,
                        &request_id,
                    );
                }
                return finish_response(head, conn, guard, &request_id, set_cookie);
            }
            Err(Failure::Other(H1Error::RequestBody(e))) => {
                // The client's fault (a malformed or oversized body, or it went away), not the
                // upstream's: no breaker failure, nor a failed request of the revision.
                debug!(upstream = %upstream.addr, error = %e, "client request body failed");
                return body_reject(&e).into_response(&request_id, Some(guard));
            }
            Err(failure) => {
                upstream.breaker.on_failure(shared.now_us());
                debug!(upstream = %upstream.addr, %failure, "upstream request failed");
                match failure {
                    Failure::Connect(_) => target.metrics.connect_error(),
                    Failure::Timeout => target.metrics.timeout(),
                    Failure::Other(_) => {}
                }
                if matches!(failure, Failure::Connect(_)) && tried.len() < retries {
                    tried.push(up_idx);
                    continue;
                }
                target.metrics.record(started.elapsed(), Outcome::Failed);
                let reject = match failure {
                    Failure::Connect(_) => Reject::ConnectFailed,
                    Failure::Timeout => Reject::UpstreamTimeout,
                    Failure::Other(_) => Reject::UpstreamFailed,
                };
                return reject.into_response(&request_id, Some(guard));
            }
        }
    }
}

/// Checks a body hyper read before anything is sent: its transfer coding must be a single
/// `chunked` (hyper has already refused one whose last coding is not `chunked`; the others the
/// proxy would have to decode to re-frame: RFC 9112 §6.1), and its length at most `max_body`
/// (0: no limit). True when it is of unknown length, to be read ahead
/// ([`body::read_ahead`]).
fn check_hyper_body(headers: &HeaderMap, body: &Incoming, max_body: u64) -> Result<bool, Reject> {
    let mut codings = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii);
    if let Some(first) = codings.next()
        && (!first.eq_ignore_ascii_case(b"chunked") || codings.next().is_some())
    {
        return Err(Reject::UnsupportedCoding);
    }
    match hyper::body::Body::size_hint(body).exact() {
        Some(n) if max_body > 0 && n > max_body => Err(Reject::BodyTooLarge),
        Some(_) => Ok(false),
        None => Ok(true),
    }
}

/// The answer to a client body that failed: its own fault, so a 4xx.
fn body_reject(e: &ClientBodyError) -> Reject {
    match e {
        ClientBodyError::TooLarge(_) => Reject::BodyTooLarge,
        ClientBodyError::Read(_) => Reject::BadBody,
    }
}

/// Where a request goes, read from the table in force.
enum Lookup {
    Found(Arc<RouteTable>, usize),
    Paused,
}

fn lookup(shared: &Shared, host: Option<&str>, path: &str) -> Result<Lookup, Reject> {
    let table = shared.table.load_full();
    let Some(idx) = table.find(host, path) else {
        return Err(Reject::NoRoute);
    };
    let route = &table.routes[idx];
    if let Some(page) = &route.maintenance {
        return Err(Reject::Maintenance(page.clone()));
    }
    if route.paused {
        return Ok(Lookup::Paused);
    }
    Ok(Lookup::Found(table, idx))
}

/// The route for a request. A paused route holds the request until a later table unpauses it
/// (or takes the route away), up to `pause_timeout`. The waiting lives in its own boxed future
/// so the common path carries none of its state.
async fn resolve_route(
    shared: &Shared,
    req: &Request<ClientBody>,
) -> Result<(Arc<RouteTable>, usize), Reject> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(Authority::as_str));
    let path = req.uri().path();
    match lookup(shared, host, path)? {
        Lookup::Found(table, idx) => Ok((table, idx)),
        Lookup::Paused => Box::pin(wait_unpaused(shared, host, path)).await,
    }
}

async fn wait_unpaused(
    shared: &Shared,
    host: Option<&str>,
    path: &str,
) -> Result<(Arc<RouteTable>, usize), Reject> {
    // Subscribe, then look again: a swap between the first look and the subscription is seen.
    let mut changed = shared.routes_changed.subscribe();
    let deadline = Instant::now() + shared.cfg.pause_timeout;
    shared.held.fetch_add(1, Ordering::Relaxed);
    let _held = HeldGuard(shared);
    loop {
        if let Lookup::Found(table, idx) = lookup(shared, host, path)? {
            return Ok((table, idx));
        }
        match tokio::time::timeout_at(deadline, changed.changed()).await {
            Ok(Ok(())) => {}
            _ => return Err(Reject::PausedTooLong),
        }
    }
}

/// Counts a request as held for as long as it waits (including when its client goes away).
struct HeldGuard<'a>(&'a Shared);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The revision for a request and, when a sticky cookie had to be minted, its `Set-Cookie`.
fn choose_target(
    route: &CompiledRoute,
    headers: &HeaderMap,
) -> Option<(usize, Option<HeaderValue>)> {
    let sticky_key = match &route.sticky {
        None => None,
        Some(CompiledSticky::Header(name)) => headers.get(name).map(|v| v.as_bytes()),
        Some(CompiledSticky::Cookie(name)) => match select::cookie_value(headers, name) {
            Some(key) => Some(key.as_bytes()),
            None => {
                let key = select::new_sticky_key();
                let idx = select::pick_sticky(&route.cum, select::sticky_slot(key.as_bytes()))?;
                let cookie =
                    HeaderValue::try_from(format!("{name}={key}; Path=/; HttpOnly; SameSite=Lax"))
                        .ok();
                return Some((idx, cookie));
            }
        },
    };
    let idx = match sticky_key {
        Some(key) => select::pick_sticky(&route.cum, select::sticky_slot(key)),
        None => route.pick_weighted(),
    }?;
    Some((idx, None))
}

/// A replica whose breaker lets this request through, not one already tried.
fn pick_upstream(
    shared: &Shared,
    route: &CompiledRoute,
    target: &CompiledTarget,
    tried: &[usize],
) -> Option<usize> {
    let ups = &target.upstreams;
    let n = ups.len();
    // The clock is read only if some breaker is not closed.
    let now = std::cell::OnceCell::new();
    let now = || *now.get_or_init(|| shared.now_us());
    // Losing a half-open probe race makes that breaker look open, so each round excludes one
    // more replica; n + 1 rounds are enough.
    for _ in 0..=n {
        let start = if n > 1 {
            target.next.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let idx = balancer::pick(
            route.balance,
            n,
            start,
            tried,
            |i| ups[i].breaker.is_closed() || ups[i].breaker.is_available(now()),
            |i| ups[i].outstanding(),
        )?;
        if ups[idx].breaker.is_closed() || ups[idx].breaker.try_acquire(now()) {
            return Some(idx);
        }
    }
    None
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// Path and query to send upstream, with the route's prefix stripped when asked.
fn forwarded_path_and_query(route: &CompiledRoute, uri: &Uri) -> Option<PathAndQuery> {
    let original = uri.path_and_query()?;
    if !route.strip_prefix {
        return Some(original.clone());
    }
    let path = route.forwarded_path(original.path());
    let rewritten = match original.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    PathAndQuery::try_from(rewritten).ok()
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    /// No connection was made: nothing reached the upstream, so a retry is safe.
    #[error("{0}")]
    Connect(pool::ConnectError),
    #[error("no response headers within the request timeout")]
    Timeout,
    #[error("{0}")]
    Other(H1Error),
}

/// What one attempt sends, borrowed from the client's request.
struct Attempt<'a> {
    method: &'a Method,
    target: &'a PathAndQuery,
    headers: &'a HeaderMap,
    added: &'a Added,
    /// No body: the request can be written again as it was.
    replayable: bool,
}

/// Sends the request on a pooled (or new) connection and waits up to `request_timeout` for the
/// response head. A pooled connection the upstream closed while it sat idle is replaced by a
/// fresh one, once, when that cannot run the request twice: it never left, or it has no body
/// and an idempotent method (the rule browsers and Go's transport follow).
async fn exchange(
    shared: &Shared,
    upstream: &UpstreamState,
    attempt: &Attempt<'_>,
    body: RequestBody,
    started: Instant,
) -> Result<(Box<UpstreamConn>, ResponseHead), Failure> {
    let connect_timeout = shared.cfg.connect_timeout;
    let (mut conn, reused) = pool::checkout(upstream, connect_timeout, started)
        .await
        .map_err(Failure::Connect)?;
    let sent = send(shared, &mut conn, attempt, body).await?;
    match sent {
        Ok(head) => Ok((conn, head)),
        Err(e)
            if reused
                && attempt.replayable
                && (e.unsent || (e.no_response && is_idempotent(attempt.method))) =>
        {
            debug!(upstream = %upstream.addr, error = %e.error, "pooled connection was stale; sending on a new one");
            // Rare: boxed so that the common path's future stays small.
            Box::pin(resend_fresh(shared, upstream, attempt)).await
        }
        Err(e) => Err(Failure::Other(e.error)),
    }
}

async fn resend_fresh(
    shared: &Shared,
    upstream: &UpstreamState,
    attempt: &Attempt<'_>,
) -> Result<(Box<UpstreamConn>, ResponseHead), Failure> {
    let mut fresh = pool::connect(upstream, shared.cfg.connect_timeout)
        .await
        .map_err(Failure::Connect)?;
    let head = send(shared, &mut fresh, attempt, RequestBody::None)
        .await?
        .map_err(|e| Failure::Other(e.error))?;
    Ok((fresh, head))
}

/// Sends the request and waits for the response head, up to `request_timeout`. The timer
/// lives with the connection: moving a registered timer's deadline later is one atomic update,
/// where a timer per request would take the timer wheel's lock to insert it and again to
/// remove it.
async fn send(
    shared: &Shared,
    conn: &mut UpstreamConn,
    attempt: &Attempt<'_>,
    body: RequestBody,
) -> Result<Result<ResponseHead, ExchangeError>, Failure> {
    let limit = shared.cfg.request_timeout;
    let timer = (!limit.is_zero()).then(|| {
        let deadline = Instant::now() + limit;
        match conn.timer.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        }
    });
    let exchange = conn.exchange(
        attempt.method,
        attempt.target,
        attempt.headers,
        attempt.added,
        body,
    );
    let Some(mut timer) = timer else {
        return Ok(exchange.await);
    };
    let sent = tokio::select! {
        biased;
        sent = exchange => Ok(sent),
        () = timer.as_mut() => Err(Failure::Timeout),
    };
    conn.timer = Some(timer);
    sent
}

/// The upstream's response for the client: hop-by-hop headers out, request id and any new
/// sticky cookie in, body streamed off the upstream connection with the guard riding along.
fn finish_response(
    head: ResponseHead,
    conn: Box<UpstreamConn>,
    guard: RequestGuard,
    request_id: &HeaderValue,
    set_cookie: Option<HeaderValue>,
) -> Response<ProxyBody> {
    let body = UpstreamBody::new(conn, &head);
    let ResponseHead {
        status,
        mut headers,
        strip_listed,
        ..
    } = head;
    // Standard hop-by-hop headers were left out while the head was read.
    if strip_listed {
        headers::strip_hop_by_hop(&mut headers, false);
    }
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID, request_id.clone());
    }
    if let Some(cookie) = set_cookie {
        headers.append(SET_COOKIE, cookie);
    }
    let mut resp = Response::new(ProxyBody::upstream(body, guard));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}
