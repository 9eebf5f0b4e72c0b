//! Protocol upgrades (WebSocket): after the upstream answers 101, the client's connection is
//! taken over from hyper and spliced to the upstream socket with `copy_bidirectional`. The request stays in flight on its
//! revision until either side closes; shutdown's hard stop ends the tunnel.

use std::sync::Arc;

use hyper::Response;
use hyper::header::HeaderValue;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tracing::debug;

use crate::body::ProxyBody;
use crate::guard::RequestGuard;
use crate::h1::{ResponseHead, UpstreamConn};
use crate::headers::{self, X_REQUEST_ID};
use crate::server::{Phase, Shared, wait_for_phase};

/// Answers the client with the upstream's 101 and spawns the tunnel between the two.
pub(crate) fn tunnel(
    shared: &Arc<Shared>,
    head: ResponseHead,
    upstream: UpstreamConn,
    client: OnUpgrade,
    guard: RequestGuard,
    request_id: &HeaderValue,
) -> Response<ProxyBody> {
    let ResponseHead {
        status,
        mut headers,
        ..
    } = head;
    headers::strip_hop_by_hop(&mut headers, true);
    headers.insert(X_REQUEST_ID, request_id.clone());
    // Bytes the upstream sent right behind its 101 belong to the new protocol.
    let (mut upstream, early) = upstream.into_parts();

    let token = shared.live.enter();
    let mut phase = shared.phase.subscribe();
    tokio::spawn(async move {
        let _guard = guard;
        let _token = token;
        let splice = async {
            let mut client = TokioIo::new(client.await?);
            if !early.is_empty() {
                client.write_all(&early).await?;
            }
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        };
        tokio::select! {
            result = splice => {
                if let Err(e) = result {
                    debug!(error = %e, "upgraded connection ended with an error");
                }
            }
            () = wait_for_phase(&mut phase, |p| p == Phase::Stopped) => {}
        }
    });
    let mut resp = Response::new(ProxyBody::empty());
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}
