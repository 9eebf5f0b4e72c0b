//! The proxy's handle and its connection lifecycle: bind, accept, serve HTTP/1.1 and h2c on each
//! connection (TLS ones: `tls`), close idle ones, and drain on shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::body::ClientBody;
use crate::breaker::BreakerState;
use crate::config::{ProxyConfig, bind_address};
use crate::error::{ProxyError, RejectedRoute};
use crate::forward;
use crate::front::{self, Prefixed};
use crate::guard::ConnState;
use crate::headers::{Listening, Origin, Scheme};
use crate::limit::{Admission, ConnSlot, Connections};
use crate::route::{Route, validate};
use crate::stats::{MetricsRegistry, RevisionStats, RevisionTraffic};
use crate::table::RouteTable;
use crate::tls::{self, TlsListeners, TlsState};
use crate::upstream::UpstreamRegistry;
use crate::worker;

/// Lifecycle of the proxy, broadcast to every task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Not accepting; connections finish what they have and close.
    Draining,
    /// Grace is over: everything still open is dropped.
    Stopped,
}

/// Counts tasks that shutdown must wait for (the accept loop, connections, tunnels).
pub(crate) struct LiveTasks {
    count: AtomicUsize,
    zero: Notify,
}

pub(crate) struct LiveToken(Arc<LiveTasks>);

impl Drop for LiveToken {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

impl LiveTasks {
    pub(crate) fn enter(self: &Arc<Self>) -> LiveToken {
        self.count.fetch_add(1, Ordering::AcqRel);
        LiveToken(self.clone())
    }

    /// Waits until no task is live.
    pub(crate) async fn wait_all_done(&self) {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        self.wait_idle(far).await;
    }

    /// Waits until no task is live; false if `deadline` came first.
    async fn wait_idle(&self, deadline: Instant) -> bool {
        loop {
            let zero = self.zero.notified();
            tokio::pin!(zero);
            zero.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, zero).await.is_err() {
                return self.count.load(Ordering::Acquire) == 0;
            }
        }
    }
}

/// State shared by the handle and every task.
pub(crate) struct Shared {
    pub(crate) cfg: ProxyConfig,
    pub(crate) table: ArcSwap<RouteTable>,
    /// Bumped after every swap; requests held on a paused route wait on it.
    pub(crate) routes_changed: watch::Sender<u64>,
    pub(crate) metrics: MetricsRegistry,
    pub(crate) upstreams: UpstreamRegistry,
    pub(crate) epoch: Instant,
    pub(crate) phase: watch::Sender<Phase>,
    pub(crate) live: Arc<LiveTasks>,
    /// Requests waiting on a paused route right now.
    pub(crate) held: AtomicU64,
    /// Open client connections, against `max_connections`.
    pub(crate) connections: Arc<Connections>,
    local_addr: SocketAddr,
    /// The TLS listener's certificates and settings, when it has one.
    pub(crate) tls: Option<TlsState>,
}

impl Shared {
    /// Microseconds since the proxy started, on tokio's (pausable) clock: the breakers' time.
    pub(crate) fn now_us(&self) -> u64 {
        u64::try_from(Instant::now().duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }
}

/// A running proxy. Clones share it; it runs until [`Proxy::shutdown`].
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    /// Binds `cfg.listen` and starts accepting on the current tokio runtime. The table starts
    /// empty (every request gets a 404) until [`Proxy::set_routes`] or [`Proxy::apply_routes`].
    pub async fn start(cfg: ProxyConfig) -> Result<Proxy, ProxyError> {
        // First: it may fail on a certificate, and worker runtimes must not be dropped here.
        let (tls, tls_listeners) = match &cfg.tls {
            Some(t) => {
                let (state, listeners) = tls::prepare(t, cfg.workers).await?;
                (Some(state), Some(listeners))
            }
            None => (None, None),
        };
        let addr = bind_address(&cfg.listen);
        let bind_error = |source| ProxyError::Bind {
            addr: cfg.listen.clone(),
            source,
        };
        let (listener, workers) = if cfg.workers == 0 {
            (
                Some(TcpListener::bind(&addr).await.map_err(bind_error)?),
                None,
            )
        } else {
            let resolved = tokio::net::lookup_host(&addr)
                .await
                .map_err(bind_error)?
                .next()
                .ok_or_else(|| bind_error(std::io::ErrorKind::AddrNotAvailable.into()))?;
            let listeners = worker::bind_all(resolved, cfg.workers).map_err(bind_error)?;
            let runtimes = worker::runtimes(cfg.workers).map_err(ProxyError::Workers)?;
            (None, Some((listeners, runtimes)))
        };
        let local_addr = match (&listener, &workers) {
            (Some(l), _) => l.local_addr(),
            (None, Some((ls, _))) => ls.first().map_or_else(
                || Err(std::io::ErrorKind::NotFound.into()),
                |l| l.local_addr(),
            ),
            (None, None) => Err(std::io::ErrorKind::NotFound.into()),
        }
        .map_err(bind_error)?;

        let connections = Connections::new(cfg.max_connections);
        let shared = Arc::new(Shared {
            metrics: MetricsRegistry::default(),
            upstreams: UpstreamRegistry::new(
                cfg.breaker_failures,
                cfg.breaker_cooldown,
                cfg.workers,
            ),
            cfg,
            table: ArcSwap::from_pointee(RouteTable::empty()),
            routes_changed: watch::Sender::new(0),
            epoch: Instant::now(),
            phase: watch::Sender::new(Phase::Running),
            live: Arc::new(LiveTasks {
                count: AtomicUsize::new(0),
                zero: Notify::new(),
            }),
            held: AtomicU64::new(0),
            connections,
            local_addr,
            tls,
        });
        let mut per_worker_tls = Vec::new();
        match tls_listeners {
            Some(TlsListeners::Shared(l)) => {
                let token = shared.live.enter();
                tokio::spawn(accept_loop(shared.clone(), l, Scheme::Https, token));
            }
            Some(TlsListeners::PerWorker(ls)) => per_worker_tls = ls,
            None => {}
        }
        if shared.tls.is_some() {
            tokio::spawn(tls::watch(shared.clone()));
        }
        if let Some(listener) = listener {
            let token = shared.live.enter();
            tokio::spawn(keep_timers_armed(shared.clone()));
            tokio::spawn(accept_loop(shared.clone(), listener, Scheme::Http, token));
        }
        if let Some((listeners, runtimes)) = workers
            && let Err(e) = worker::spawn(&shared, listeners, per_worker_tls, runtimes)
        {
            // Stop the workers that did start.
            shared.phase.send_replace(Phase::Stopped);
            return Err(ProxyError::Workers(e));
        }
        Ok(Proxy { shared })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The TLS listener's address actually bound, when there is one.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.shared.tls.as_ref().map(|t| t.local_addr)
    }

    /// Reads the certificate files again now and serves them to new handshakes (they are also
    /// reloaded when they change, every `reload_interval`). On error the certificates in use
    /// stay. Without TLS there is nothing to do.
    pub fn reload_tls(&self) -> Result<(), ProxyError> {
        match &self.shared.tls {
            Some(t) => Ok(t.reload()?),
            None => Ok(()),
        }
    }

    /// Validates and atomically installs a new routing table. Requests already routed finish
    /// on the table they started with; requests held on a paused route look again. On error
    /// the running table is untouched and every problem is listed.
    pub fn set_routes(&self, routes: Vec<Route>) -> Result<(), ProxyError> {
        let issues = validate(&routes);
        if !issues.is_empty() {
            return Err(ProxyError::InvalidRoutes { issues });
        }
        self.install(routes);
        Ok(())
    }

    /// Installs every valid route of `routes` atomically and leaves out only the invalid ones,
    /// so one bad route never takes the others down; returns the routes left out and why, in
    /// table order (empty when all went in). Of two routes with the same host and prefix the
    /// first valid one is kept. A route whose targets have no upstreams yet is valid: it
    /// answers 503 until a later table gives it replicas.
    pub fn apply_routes(&self, routes: Vec<Route>) -> Vec<RejectedRoute> {
        let issues = validate(&routes);
        let rejected = RejectedRoute::from_issues(&issues);
        let kept = if rejected.is_empty() {
            routes
        } else {
            routes
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !rejected.iter().any(|r| r.route == *i))
                .map(|(_, r)| r)
                .collect()
        };
        self.install(kept);
        rejected
    }

    fn install(&self, routes: Vec<Route>) {
        let table = RouteTable::compile(routes, &self.shared.metrics, &self.shared.upstreams);
        self.shared.table.store(Arc::new(table));
        self.shared.routes_changed.send_modify(|g| *g += 1);
    }

    /// The table in force, as it was given.
    pub fn routes(&self) -> Arc<Vec<Route>> {
        self.shared.table.load().source.clone()
    }

    /// Cumulative stats of a revision since it first appeared in a table (zero if never).
    pub fn stats(&self, revision: &str) -> RevisionStats {
        self.shared
            .metrics
            .get(revision)
            .map(|m| m.snapshot())
            .unwrap_or_default()
    }

    /// Everything counted about every revision the proxy still keeps (until
    /// [`Proxy::forget`]), with its weight and its replicas' breakers in the table in force.
    /// Sorted by service, route and revision. A snapshot: cheap enough for every scrape.
    pub fn traffic(&self) -> Vec<RevisionTraffic> {
        let table = self.shared.table.load();
        let now = self.shared.now_us();
        let mut out: Vec<RevisionTraffic> = self
            .shared
            .metrics
            .all()
            .iter()
            .map(|m| m.traffic())
            .collect();
        out.sort_by(|a, b| {
            (&a.service, &a.route, &a.revision).cmp(&(&b.service, &b.route, &b.revision))
        });
        for r in table.source.iter() {
            for t in &r.targets {
                if let Some(x) = out.iter_mut().find(|x| x.revision == t.revision) {
                    x.weight = Some(x.weight.unwrap_or(0) + t.weight);
                }
            }
        }
        for r in &table.routes {
            for t in &r.targets {
                let Some(x) = out.iter_mut().find(|x| x.revision == t.metrics.revision()) else {
                    continue;
                };
                for u in &t.upstreams {
                    match u.breaker.state(now) {
                        BreakerState::Closed => x.breakers.closed += 1,
                        BreakerState::Open => x.breakers.open += 1,
                        BreakerState::HalfOpen => x.breakers.half_open += 1,
                    }
                }
            }
        }
        out
    }

    /// Requests open on a revision, counting streaming bodies until they end and upgraded
    /// connections until they close.
    pub fn in_flight(&self, revision: &str) -> u64 {
        self.shared
            .metrics
            .get(revision)
            .map_or(0, |m| m.in_flight())
    }

    /// Forgets a retired revision's stats (about 11 KB each) so a long-lived daemon does not
    /// keep every revision it ever served. Refused (false) while the table in force still
    /// names the revision.
    pub fn forget(&self, revision: &str) -> bool {
        let in_use = self
            .shared
            .table
            .load()
            .source
            .iter()
            .any(|r| r.targets.iter().any(|t| t.revision == revision));
        !in_use && self.shared.metrics.remove(revision)
    }

    /// Requests currently held on paused routes (they resume or get a 503 after
    /// `pause_timeout`).
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets open requests and streams finish for up to `grace`, then closes
    /// whatever is left. Returns once the listener is closed and every connection is gone.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.phase.send_replace(Phase::Draining);
        if !self.shared.live.wait_idle(Instant::now() + grace).await {
            self.shared.phase.send_replace(Phase::Stopped);
            // Connections drop at their next poll; this only waits for them to notice.
            self.shared
                .live
                .wait_idle(Instant::now() + Duration::from_secs(5))
                .await;
        }
    }
}

/// Resolves once the phase satisfies `done` (or the proxy is gone). Drops the watch guard before
/// returning, so callers' futures stay `Send`.
pub(crate) async fn wait_for_phase(
    phase: &mut watch::Receiver<Phase>,
    done: impl Fn(Phase) -> bool,
) {
    let _ = phase.wait_for(|p| done(*p)).await;
}

/// tokio wakes its own driver (an `eventfd` write) whenever a new timer is due before every
/// timer it already holds, and each request arms one for `request_timeout`. A short tick on
/// each runtime keeps an earlier timer pending at all times, which saves that system call on
/// most requests (bench/proxy/README.md).
pub(crate) async fn keep_timers_armed(shared: Arc<Shared>) {
    let Some(period) = tick_period(shared.cfg.request_timeout) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut phase = shared.phase.subscribe();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wait_for_phase(&mut phase, |p| p == Phase::Stopped) => return,
        }
    }
}

/// Half the request timeout, at most one second; none when requests have no timeout.
fn tick_period(request_timeout: Duration) -> Option<Duration> {
    (!request_timeout.is_zero()).then(|| (request_timeout / 2).min(Duration::from_secs(1)))
}

/// hyper's server, held to the same limits as the proxy's own front.
pub(crate) fn hyper_builder(cfg: &ProxyConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper refuses a head that does not fit its read buffer with a 431, as the front does
    // past `max_head_bytes`. `head_timeout` is the connection's own (`front::Prefixed`):
    // hyper's would count the idle wait between keep-alive requests too.
    builder
        .http1()
        .keep_alive(true)
        .max_buf_size(cfg.head_limit())
        .max_headers(cfg.header_limit())
        .header_read_timeout(None);
    builder
        .http2()
        .max_header_list_size(u32::try_from(cfg.head_limit()).unwrap_or(u32::MAX));
    builder
}

/// Accepts connections on one listener until the proxy drains. Plain and TLS listeners
/// share it: the same admission under `max_connections`, the scheme for forwarded headers.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    scheme: Scheme,
    _token: LiveToken,
) {
    let builder = Arc::new(hyper_builder(&shared.cfg));
    let port = listener.local_addr().map_or(0, |a| a.port());
    let listening = Listening::new(scheme, port);
    let mut phase = shared.phase.subscribe();
    loop {
        tokio::select! {
            biased;
            () = wait_for_phase(&mut phase, |p| p != Phase::Running) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match (shared.connections.admit(), scheme) {
                    (Admission::In(slot), _) => {
                        let token = shared.live.enter();
                        let conn = Accepted { stream, peer, listening: listening.clone(), slot };
                        let (shared, builder) = (shared.clone(), builder.clone());
                        match scheme {
                            Scheme::Http => tokio::spawn(serve_connection(shared, builder, conn, token)),
                            Scheme::Https => tokio::spawn(tls::serve_tls(shared, builder, conn, token)),
                        };
                    }
                    (Admission::Full, Scheme::Http) => shared.connections.refuse(stream),
                    (Admission::Full, Scheme::Https) => {
                        tokio::spawn(tls::refuse_tls(shared.clone(), stream));
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, scheme = scheme.as_str(), "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    debug!(port, scheme = scheme.as_str(), "proxy stopped accepting");
}

/// A client connection just accepted, and what it reached.
pub(crate) struct Accepted {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    /// The listener's scheme and port, for the forwarded headers.
    pub(crate) listening: Listening,
    /// Its place under `max_connections`.
    pub(crate) slot: Option<ConnSlot>,
}

async fn serve_connection(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    conn: Accepted,
    _token: LiveToken,
) {
    let Accepted {
        stream,
        peer,
        listening,
        slot,
    } = conn;
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "set_nodelay failed");
    }
    let origin = Origin::new(peer.ip(), &listening, shared.cfg.trusts(peer.ip()));
    let conn_state = Arc::new(ConnState::new(origin, slot, shared.epoch));
    let mut phase = shared.phase.subscribe();
    let mut idle_check = IdleCheck::new(shared.cfg.idle_timeout);

    // Redirected requests all get the same small answer: no fast path needed.
    let io = if shared.cfg.fast_http1 && !tls::redirects(&shared) {
        let front = front::serve(shared.clone(), conn_state.clone(), stream);
        tokio::pin!(front);
        loop {
            tokio::select! {
                biased;
                outcome = front.as_mut() => match outcome {
                    front::Outcome::Closed => return,
                    front::Outcome::Handoff(io) => break io,
                },
                _ = phase.changed() => match *phase.borrow_and_update() {
                    Phase::Running => {}
                    // An idle connection closes now; a busy one after its response.
                    Phase::Draining => {
                        conn_state.close_after_response();
                        if conn_state.idle_deadline(Duration::ZERO).is_some() {
                            return;
                        }
                    }
                    Phase::Stopped => return,
                },
                () = idle_check.wait() => {
                    if idle_check.expired(&conn_state) {
                        return;
                    }
                }
            }
        }
    } else {
        Prefixed::new(stream, conn_state.clone(), shared.cfg.head_timeout)
    };
    serve_hyper(shared, builder, io, peer, conn_state, phase, idle_check).await;
}

/// Serves a connection with hyper's server (HTTP/1.1 or h2, by its preface) until it ends,
/// idles out or the proxy stops.
pub(crate) async fn serve_hyper<I>(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    io: I,
    peer: SocketAddr,
    conn_state: Arc<ConnState>,
    mut phase: watch::Receiver<Phase>,
    mut idle_check: IdleCheck,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let shared = shared.clone();
        let conn_state = conn_state.clone();
        service_fn(move |req: Request<Incoming>| {
            let shared = shared.clone();
            let conn_state = conn_state.clone();
            async move {
                if let Some(resp) = tls::redirect(&shared, &conn_state, &req) {
                    return Ok::<_, Infallible>(resp);
                }
                let req = req.map(ClientBody::Hyper);
                Ok::<_, Infallible>(forward::handle(shared, conn_state, req).await)
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = conn_state.closing();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(%peer, error = %e, "client connection ended with an error");
                }
                return;
            }
            _ = phase.changed() => {
                match *phase.borrow_and_update() {
                    Phase::Running => {}
                    Phase::Draining => {
                        if !closing {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                    Phase::Stopped => return,
                }
            }
            () = idle_check.wait(), if !closing => {
                if idle_check.expired(&conn_state) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// One timer per connection for its idle limit, re-armed only when it fires, so requests
/// themselves never touch it.
pub(crate) struct IdleCheck {
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl IdleCheck {
    pub(crate) fn new(idle: Duration) -> Self {
        let first = if idle.is_zero() {
            Instant::now() + Duration::from_secs(86_400 * 365)
        } else {
            Instant::now() + idle
        };
        IdleCheck {
            idle,
            sleep: Box::pin(tokio::time::sleep_until(first)),
        }
    }

    async fn wait(&mut self) {
        self.sleep.as_mut().await;
    }

    /// After the timer fired: whether the connection has been idle long enough, re-arming
    /// the timer for the next check if not.
    fn expired(&mut self, conn: &ConnState) -> bool {
        match conn.idle_deadline(self.idle) {
            Some(deadline) if deadline <= Instant::now() => true,
            Some(deadline) => {
                self.sleep.as_mut().reset(deadline);
                false
            }
            None => {
                self.sleep.as_mut().reset(Instant::now() + self.idle);
                false
            }
        }
    }
}
