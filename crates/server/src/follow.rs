//! `GET /v1/events?follow=true`: the latest events as NDJSON, then each new
//! one as it is recorded, until the client goes away or the daemon stops.
//!
//! Events are written to the state database by several owners (the runtime's
//! recorder, deploys, the control guards), so the database is the one place
//! that sees them all: the stream reads it after the last id it sent, woken
//! by runtime changes and, for the others, a short poll.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use orchestra_state::{EventRecord, StateStore};
use tokio::sync::watch;

use crate::daemon::Shared;

/// How long a follower waits for a runtime change before looking anyway.
const POLL: Duration = Duration::from_millis(200);
/// Most events read at once after the first batch.
const PAGE: usize = 10_000;

struct Cursor {
    state: Arc<StateStore>,
    service: Option<String>,
    after: i64,
    /// Events in the first batch; `None` once it is sent.
    first: Option<usize>,
    changes: watch::Receiver<u64>,
    stopped: watch::Receiver<bool>,
    done: bool,
}

/// NDJSON lines for `rows`, one object per event.
fn ndjson(rows: &[EventRecord]) -> String {
    let mut out = String::new();
    for r in rows {
        if let Ok(j) = serde_json::to_string(r) {
            out.push_str(&j);
            out.push('\n');
        }
    }
    out
}

/// Resolves once the daemon has stopped everything (the watch's guard is not
/// `Send`, so it must not outlive this future).
async fn stop(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.map(|_| ());
}

impl Cursor {
    async fn read(&mut self) -> Result<Vec<EventRecord>, String> {
        let state = self.state.clone();
        let service = self.service.clone();
        let after = self.after;
        let first = self.first.take();
        let (rows, newest) = tokio::task::spawn_blocking(move || {
            // The first batch is only the latest `limit`: what is older (or
            // another service's) must not come through on the next read.
            let newest = match first {
                Some(_) => state.events(after, None, 1)?.last().map(|e| e.id),
                None => None,
            };
            let rows = match first {
                Some(0) => Vec::new(),
                Some(n) => state.events(after, service.as_deref(), n)?,
                None => state.events(after, service.as_deref(), PAGE)?,
            };
            Ok::<_, orchestra_state::StateError>((rows, newest))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let last = rows.last().map(|e| e.id);
        self.after = self.after.max(newest.unwrap_or(0)).max(last.unwrap_or(0));
        Ok(rows)
    }

    /// The next chunk to send, or `None` at the end.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            match self.read().await {
                Ok(rows) if !rows.is_empty() => return Some(Bytes::from(ndjson(&rows))),
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Bytes::from(
                        serde_json::json!({ "error": e }).to_string() + "\n",
                    ));
                }
            }
            let stopped = *self.stopped.borrow();
            if stopped {
                return None;
            }
            tokio::select! {
                r = self.changes.changed() => {
                    // The runtime is gone: the daemon is stopping; poll until it has.
                    if r.is_err() {
                        tokio::time::sleep(POLL).await;
                    }
                }
                _ = tokio::time::sleep(POLL) => {}
                // One more read after the stop: the last `stopped` events are sent.
                () = stop(&mut self.stopped) => {}
            }
        }
    }
}

/// The streamed answer to `GET /v1/events?follow=true`.
pub fn events(s: &Shared, service: Option<String>, after: i64, limit: usize) -> Response {
    let cursor = Cursor {
        state: s.state.clone(),
        service,
        after,
        first: Some(limit.min(PAGE)),
        changes: s.runtime.subscribe(),
        stopped: s.stopped.clone(),
        done: false,
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        c.next()
            .await
            .map(|chunk| (Ok::<Bytes, Infallible>(chunk), c))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
