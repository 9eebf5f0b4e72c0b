//! The control API: HTTP+JSON on the project's unix socket (and on TCP when
//! `control.listen` is set; [`crate::control`] guards both). Every CLI command
//! but `up` and `validate` is a request here.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /v1/status | platform status: every service, aggregate health |
//! | GET | /v1/daemon | the daemon: pid, run, admin address |
//! | GET | /v1/services/{name} | one service |
//! | POST | /v1/services/{name}/{stop,start,restart} | control one service |
//! | GET | /v1/logs?service=&tail=&follow= | log lines as NDJSON (streamed with follow) |
//! | GET | /v1/events?service=&after=&limit=&follow= | the event log (NDJSON, streamed, with follow) |
//! | POST | /v1/down | stop everything and exit |
//! | POST | /v1/deploy | `{services: [definitions], strategy}`: start releases |
//! | POST | /v1/services/{name}/{promote,abort,rollback,pause,resume,maintenance-on,maintenance-off} | deploy control |
//! | GET | /v1/releases?service=&limit= | release history |
//! | GET | /v1/routes | how traffic is split, with per-revision figures |
//! | GET | /v1/instances | every running revision of every service (live, canary, warm...) |
//! | POST | /v1/control/rotate-token | a new bearer token for the TCP listener (see [`crate::control`]) |
//! | POST | /v1/backups/{name}[/restore?from=ID] | take or restore a backup (see [`crate::backups`]) |
//! | GET | /v1/jobs | scheduled jobs: schedule, next run, the run going, the last runs |
//! | POST | /v1/jobs/{name}/run | start a run of a scheduled job now |

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

use crate::daemon::Shared;

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
        .route("/v1/deploy", post(deploy))
        .route("/v1/releases", get(releases))
        .route("/v1/routes", get(routes))
        .route("/v1/instances", get(instances))
        .merge(crate::backups::router())
        .route("/v1/jobs", get(crate::scheduler::api::jobs))
        .route("/v1/jobs/{name}/run", post(crate::scheduler::api::run_now))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(shared)
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

async fn status(State(s): State<Shared>) -> Response {
    let st = s.runtime.status();
    // The routing table follows runtime changes a moment later; make sure
    // every replica this answer calls ready is already in it, so that `up -d`
    // returning means the proxy serves.
    if let Some(d) = &s.deployer {
        d.publish();
    }
    Json(st).into_response()
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

#[derive(Debug, Deserialize)]
struct ControlQuery {
    to: Option<String>,
}

async fn control(
    State(s): State<Shared>,
    Path((name, action)): Path<(String, String)>,
    Query(q): Query<ControlQuery>,
) -> Response {
    if matches!(
        action.as_str(),
        "promote"
            | "abort"
            | "rollback"
            | "pause"
            | "resume"
            | "maintenance-on"
            | "maintenance-off"
    ) {
        return deploy_control(&s, &name, &action, q.to.as_deref()).await;
    }
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
                format!(
                    "unknown action `{other}`; expected stop, start, restart, promote, abort, rollback, pause, resume, maintenance-on or maintenance-off"
                ),
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
        && !s.scheduler.is_job(name)
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
    #[serde(default)]
    follow: bool,
}

async fn events(State(s): State<Shared>, Query(q): Query<EventQuery>) -> Response {
    if q.follow {
        return crate::follow::events(&s, q.service, q.after, q.limit.unwrap_or(200));
    }
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

#[derive(Debug, Deserialize)]
struct DownQuery {
    #[serde(default)]
    volumes: bool,
}

async fn down(State(s): State<Shared>, Query(q): Query<DownQuery>) -> Response {
    if q.volumes {
        s.remove_volumes
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let _ = s.shutdown.send(true);
    let mut stopped = s.stopped.clone();
    let _ = stopped.wait_for(|v| *v).await;
    let st = s.runtime.status();
    let volumes = s
        .removed_volumes
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    Json(json!({ "stopped": st.services.len(), "volumes_removed": volumes })).into_response()
}

fn no_proxy() -> Response {
    error(
        StatusCode::CONFLICT,
        "no service of this platform has a `route:`, so there is no proxy to deploy behind",
    )
}

async fn deploy_control(s: &Shared, name: &str, action: &str, to: Option<&str>) -> Response {
    let Some(d) = &s.deployer else {
        return no_proxy();
    };
    let res: Result<String, orchestra_deploy::DeployError> = match action {
        "promote" => d.promote(name).map(|r| format!("promoting release {r}")),
        "abort" => d.abort(name).map(|r| format!("aborting release {r}")),
        "rollback" => d.rollback(name, to).await,
        "pause" => d
            .set_paused(name, true)
            .map(|_| "paused: requests are held".to_owned()),
        "resume" => d.set_paused(name, false).map(|_| "resumed".to_owned()),
        "maintenance-on" => d
            .set_maintenance(name, Some(format!("{name} is down for maintenance")))
            .map(|_| "maintenance page on".to_owned()),
        _ => d
            .set_maintenance(name, None)
            .map(|_| "maintenance page off".to_owned()),
    };
    match res {
        Ok(r) => Json(json!({ "service": name, "result": r })).into_response(),
        Err(e) => {
            let code = match e {
                orchestra_deploy::DeployError::Refused(_)
                | orchestra_deploy::DeployError::RollbackFailed(_) => StatusCode::CONFLICT,
                orchestra_deploy::DeployError::UnknownService(_)
                | orchestra_deploy::DeployError::UnknownRevision { .. } => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            error(code, e.to_string())
        }
    }
}

#[derive(Debug, Deserialize)]
struct DeployBody {
    services: Vec<orchestra_manifest::Service>,
    strategy: Option<orchestra_manifest::Strategy>,
}

async fn deploy(
    State(s): State<Shared>,
    body: Result<Json<DeployBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad deploy request: {e}")),
    };
    let Some(d) = &s.deployer else {
        return no_proxy();
    };
    let started = d.deploy(body.services.clone(), body.strategy);
    for (svc, st) in body.services.iter().zip(&started) {
        if st.release.is_some()
            && let Err(e) = crate::daemon::record_injections(&s.state, Some(s.info.run_id), svc)
        {
            tracing::warn!("cannot record the secrets given to {}: {e}", svc.name);
        }
    }
    Json(started).into_response()
}

#[derive(Debug, Deserialize)]
struct ReleaseQuery {
    service: Option<String>,
    limit: Option<usize>,
}

async fn releases(State(s): State<Shared>, Query(q): Query<ReleaseQuery>) -> Response {
    match s
        .state
        .releases(q.service.as_deref(), q.limit.unwrap_or(50))
    {
        Ok(r) => Json(r).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn routes(State(s): State<Shared>) -> Response {
    match &s.deployer {
        Some(d) => Json(json!({
            "proxy": s.info.proxy,
            "proxy_tls": s.info.proxy_tls,
            "routes": d.splits(),
        }))
        .into_response(),
        None => Json(json!({ "proxy": null, "routes": [] })).into_response(),
    }
}

async fn instances(State(s): State<Shared>) -> Response {
    let all: Vec<_> = s
        .runtime
        .plan()
        .order
        .iter()
        .flat_map(|name| s.runtime.instances(name))
        .collect();
    Json(all).into_response()
}
