//! The scheduler's part of the control API.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::RunNowError;
use crate::daemon::Shared;

/// `GET /v1/jobs`: every scheduled job.
pub async fn jobs(State(s): State<Shared>) -> Response {
    Json(s.scheduler.jobs()).into_response()
}

/// `POST /v1/jobs/{name}/run`: a run now.
pub async fn run_now(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    match s.scheduler.run_now(&name).await {
        Ok(result) => Json(json!({ "job": name, "result": result })).into_response(),
        Err(e) => {
            let code = match e {
                RunNowError::Unknown(_) => StatusCode::NOT_FOUND,
                RunNowError::NotScheduled(_) => StatusCode::BAD_REQUEST,
                RunNowError::Running { .. } | RunNowError::Stopping => StatusCode::CONFLICT,
            };
            (code, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}
