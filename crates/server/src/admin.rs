//! Admin HTTP on TCP (127.0.0.1:7070 by default), for load balancers and
//! monitors: `GET /health` is 200 while the aggregate meets the threshold and
//! 503 otherwise; `GET /ready` is 200 once every service is up; `GET /metrics`
//! is the platform in the Prometheus text format (see [`crate::metrics`]);
//! `GET /` is a read-only dashboard (embedded HTML, CSS and JS) that renders
//! the `/health` summary once a second.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

use crate::daemon::Shared;

/// Serve the admin endpoints until the task is aborted.
pub async fn serve(listener: TcpListener, shared: Shared) {
    let mut stopped = shared.stopped.clone();
    let app = Router::new()
        .route("/", get(dashboard_page))
        .route("/dashboard.js", get(dashboard_js))
        .route("/dashboard.css", get(dashboard_css))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(shared);
    let shutdown = async move {
        let _ = stopped.wait_for(|v| *v).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("admin API stopped: {e}");
    }
}

fn summary(s: &Shared) -> (bool, bool, serde_json::Value) {
    let st = s.runtime.status();
    let services: serde_json::Map<String, serde_json::Value> = st
        .services
        .iter()
        .map(|svc| {
            (
                svc.name.clone(),
                json!({ "state": svc.phase, "reason": svc.reason }),
            )
        })
        .collect();
    let body = json!({
        "status": if st.ok { "ok" } else { "degraded" },
        "healthy": st.healthy,
        "total": st.total,
        "threshold": st.threshold,
        "ready": st.ready,
        "services": services,
    });
    (st.ok, st.ready, body)
}

async fn health(State(s): State<Shared>) -> Response {
    let (ok, _, body) = summary(&s);
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn ready(State(s): State<Shared>) -> Response {
    let (_, ready, body) = summary(&s);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<Shared>) -> Response {
    let snapshot = crate::metrics::collect(&s).await;
    let body = crate::metrics::render(&snapshot);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::text::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

// Embedded so the binary needs no JavaScript toolchain nor asset directory.
const DASHBOARD_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn dashboard_page() -> Response {
    asset("text/html; charset=utf-8", DASHBOARD_HTML)
}

async fn dashboard_js() -> Response {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

async fn dashboard_css() -> Response {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}
