//! The control API: HTTP+JSON on the project's unix socket. Every CLI command
//! but `up` and `validate` is a request here.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /v1/status | platform status: every service, aggregate health |
//! | GET | /v1/daemon | the daemon: pid, run, admin address |
//! | GET | /v1/services/{name} | one service |
//! | POST | /v1/services/{name}/{stop,start,restart} | control one service |
//! | GET | /v1/logs?service=&tail=&follow= | log lines as NDJSON (streamed with follow) |
//! | GET | /v1/events?service=&after=&limit= | the event log |
//! | POST | /v1/down | stop everything and exit |

use std::convert::Infallible;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::net::UnixListener;

use crate::daemon::Shared;

/// Serve the control API until the task is aborted.
pub async fn serve(listener: UnixListener, shared: Shared) {
    let mut stopped = shared.stopped.clone();
    let app = router(shared);
    let shutdown = async move {
        let _ = stopped.wait_for(|v| *v).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("control API stopped: {e}");
    }
}

/// The control API's routes.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/daemon", get(daemon))
        .route("/v1/services/{name}", get(service))
        .route("/v1/services/{name}/{action}", post(control))
        .route("/v1/logs", get(logs))
        .route("/v1/events", get(events))
        .route("/v1/down", post(down))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(shared)
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

async fn status(State(s): State<Shared>) -> Response {
    Json(s.runtime.status()).into_response()
}

async fn daemon(State(s): State<Shared>) -> Response {
    Json(s.info.as_ref().clone()).into_response()
}

async fn service(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    match s.runtime.service(&name) {
        Some(st) => Json(st).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no service `{name}` in this platform"),
        ),
    }
}

async fn control(
    State(s): State<Shared>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let rt = &s.runtime;
    let result = match action.as_str() {
        "stop" => rt.stop_service(&name).await.map(|_| "stopped"),
        "start" => rt.start_service(&name).map(|started| {
            if started {
                "starting"
            } else {
                "already running"
            }
        }),
        "restart" => rt.restart_service(&name).await.map(|_| "restarting"),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown action `{other}`; expected stop, start or restart"),
            );
        }
    };
    match result {
        Ok(what) => Json(json!({ "service": name, "result": what })).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    service: Option<String>,
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
}

async fn logs(State(s): State<Shared>, Query(q): Query<LogQuery>) -> Response {
    if let Some(name) = &q.service
        && s.runtime.service(name).is_none()
    {
        return error(
            StatusCode::NOT_FOUND,
            format!("no service `{name}` in this platform"),
        );
    }
    let hub = s.runtime.logs();
    // Subscribe before reading the tail so no line falls between the two.
    let rx = hub.subscribe();
    let tail = hub.tail(q.service.as_deref(), q.tail.unwrap_or(100));
    let mut head = String::new();
    for l in &tail {
        if let Ok(j) = serde_json::to_string(l) {
            head.push_str(&j);
            head.push('\n');
        }
    }
    let ndjson = [(header::CONTENT_TYPE, "application/x-ndjson")];
    if !q.follow {
        return (ndjson, head).into_response();
    }
    let filter = q.service.clone();
    let stopped = s.stopped.clone();
    let stream =
        futures_util::stream::unfold((Some(head), rx, filter), move |(head, mut rx, filter)| {
            let mut stopped = stopped.clone();
            async move {
                if let Some(h) = head {
                    return Some((Ok::<Bytes, Infallible>(Bytes::from(h)), (None, rx, filter)));
                }
                loop {
                    tokio::select! {
                        r = rx.recv() => match r {
                            Ok(line) => {
                                if filter.as_ref().is_some_and(|f| *f != line.service) {
                                    continue;
                                }
                                let mut j = serde_json::to_string(&line).unwrap_or_default();
                                j.push('\n');
                                return Some((Ok(Bytes::from(j)), (None, rx, filter)));
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                                let note = json!({"lagged": n}).to_string() + "\n";
                                return Some((Ok(Bytes::from(note)), (None, rx, filter)));
                            }
                            Err(_) => return None,
                        },
                        _ = stopped.wait_for(|v| *v) => return None,
                    }
                }
            }
        });
    (ndjson, Body::from_stream(stream)).into_response()
}

#[derive(Debug, Deserialize)]
struct EventQuery {
    service: Option<String>,
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

async fn events(State(s): State<Shared>, Query(q): Query<EventQuery>) -> Response {
    let state = s.state.clone();
    let res = tokio::task::spawn_blocking(move || {
        state.events(
            q.after,
            q.service.as_deref(),
            q.limit.unwrap_or(200).min(10_000),
        )
    })
    .await;
    match res {
        Ok(Ok(ev)) => Json(ev).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn down(State(s): State<Shared>) -> Response {
    let _ = s.shutdown.send(true);
    let mut stopped = s.stopped.clone();
    let _ = stopped.wait_for(|v| *v).await;
    let st = s.runtime.status();
    Json(json!({ "stopped": st.services.len() })).into_response()
}
