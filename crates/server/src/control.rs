//! The control API's listeners and their guards: the unix socket (created
//! 0600, every request's peer uid checked) and the optional TCP listener
//! (every request needs the bearer token). Both serve the routes of
//! [`crate::api::router`], plus `POST /v1/control/rotate-token`. A refused
//! request is answered 403 (socket) or 401 (TCP) and recorded as a
//! `control-refused` event.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use axum::Json;
use axum::Router;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::IncomingStream;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
};
use serde_json::json;
use tokio::net::{TcpListener, UnixListener};

use crate::auth::{self, Bearer};
use crate::daemon::Shared;

/// Event kind recorded for every refused control request.
pub const REFUSED_EVENT: &str = "control-refused";
/// Event kind recorded when the token is rotated.
pub const ROTATED_EVENT: &str = "control-token-rotated";

/// Who may use the control API, as the daemon checks it.
#[derive(Debug)]
pub struct ControlAuth {
    /// `.orchestra/control.token`
    pub token_file: PathBuf,
    token: RwLock<String>,
    /// The daemon's own uid: the one peer (besides root) the socket serves.
    pub uid: u32,
}

impl ControlAuth {
    /// The guard for a daemon running as `uid` whose token is `token`, kept in `token_file`.
    pub fn new(token_file: PathBuf, token: String, uid: u32) -> Self {
        Self {
            token_file,
            token: RwLock::new(token),
            uid,
        }
    }

    fn check(&self, header: Option<&[u8]>) -> Bearer {
        let t = self.token.read().unwrap_or_else(|p| p.into_inner());
        auth::check_bearer(header, &t)
    }

    /// Write a new token and use it from the next request on.
    pub fn rotate(&self) -> Result<String, auth::TokenError> {
        let new = auth::generate_token();
        // Under the lock: two rotations at once leave the file and the memory agreeing.
        let mut t = self.token.write().unwrap_or_else(|p| p.into_inner());
        auth::write_token(&self.token_file, &new)?;
        *t = new.clone();
        Ok(new)
    }
}

/// Bind the control socket at `path`, mode 0600 before it listens: until
/// `listen`, a `connect` is refused, so no other user gets in through a
/// window between creating and restricting it (the umask is not relied on).
pub fn bind_socket(path: &Path) -> std::io::Result<UnixListener> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    let restricted = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| listen(&fd, Backlog::MAXCONN).map_err(std::io::Error::from));
    if let Err(e) = restricted {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
}

/// The unix-socket peer, as the kernel reports it when it connected.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// Its uid; `None` when the kernel could not say (refused).
    pub uid: Option<u32>,
    /// Its pid, when known.
    pub pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(c) => Peer {
                uid: Some(c.uid()),
                pid: c.pid(),
            },
            Err(_) => Peer {
                uid: None,
                pid: None,
            },
        }
    }
}

fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/v1/control/rotate-token", post(rotate))
        .with_state(shared.clone())
        .merge(crate::api::router(shared))
}

/// Serve the control API on the unix socket until the daemon stops.
pub async fn serve_unix(listener: UnixListener, shared: Shared) {
    let mut stopped = shared.stopped.clone();
    let app = routes(shared.clone()).layer(from_fn_with_state(shared, unix_guard));
    let shutdown = async move {
        let _ = stopped.wait_for(|v| *v).await;
    };
    if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("control API stopped: {e}");
    }
}

/// Serve the control API on TCP, bearer token required, until the daemon stops.
pub async fn serve_tcp(listener: TcpListener, shared: Shared) {
    let mut stopped = shared.stopped.clone();
    let app = routes(shared.clone()).layer(from_fn_with_state(shared, tcp_guard));
    let shutdown = async move {
        let _ = stopped.wait_for(|v| *v).await;
    };
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    {
        tracing::error!("control API (TCP) stopped: {e}");
    }
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// What the event log says about a request: method and path, bounded (the
/// path is the peer's to choose).
fn request_line(req: &Request) -> String {
    let path: String = req.uri().path().chars().take(200).collect();
    format!("{} {path}", req.method())
}

fn record_refusal(s: &Shared, reason: &str) {
    tracing::warn!("{reason}");
    if let Err(e) = s
        .state
        .record_event(Some(s.info.run_id), None, None, REFUSED_EVENT, reason)
    {
        tracing::warn!("cannot record event: {e}");
    }
}

async fn unix_guard(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    if peer
        .uid
        .is_some_and(|uid| auth::peer_allowed(uid, s.auth.uid))
    {
        return next.run(req).await;
    }
    let who = match (peer.uid, peer.pid) {
        (Some(uid), Some(pid)) => format!("uid {uid} (pid {pid})"),
        (Some(uid), None) => format!("uid {uid}"),
        _ => "a peer whose uid the kernel did not report".to_owned(),
    };
    let allowed = match s.auth.uid {
        0 => "root".to_owned(),
        uid => format!("uid {uid} and root"),
    };
    record_refusal(
        &s,
        &format!(
            "control socket refused {who} on {}: only {allowed} may use it",
            request_line(&req)
        ),
    );
    error(
        StatusCode::FORBIDDEN,
        format!("this daemon's control socket serves only {allowed}"),
    )
}

async fn tcp_guard(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let verdict = s.auth.check(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    if verdict == Bearer::Valid {
        return next.run(req).await;
    }
    record_refusal(
        &s,
        &format!(
            "control API refused {addr} on {}: {}",
            request_line(&req),
            verdict.reason()
        ),
    );
    // RFC 6750: a presented but bad token is `invalid_token`; none at all gets the bare challenge.
    let challenge = match verdict {
        Bearer::Missing => r#"Bearer realm="orchestra""#,
        _ => r#"Bearer realm="orchestra", error="invalid_token""#,
    };
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        format!(
            "the control API needs `Authorization: Bearer <token>` (it got {}); the token is in .orchestra/control.token, printed by `orchestra control token`",
            verdict.reason()
        ),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

async fn rotate(State(s): State<Shared>) -> Response {
    match s.auth.rotate() {
        Ok(token) => {
            let _ = s.state.record_event(
                Some(s.info.run_id),
                None,
                None,
                ROTATED_EVENT,
                "the control API token was rotated; the previous one no longer works",
            );
            Json(json!({ "token": token, "file": s.auth.token_file })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
