//! Protocol upgrades (WebSocket): after the upstream answers 101, both connections are taken
//! over from hyper and spliced with `copy_bidirectional`. The request stays in flight on its
//! revision until either side closes; shutdown's hard stop ends the tunnel.

use std::sync::Arc;

use hyper::Response;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::body::ProxyBody;
use crate::guard::RequestGuard;
use crate::headers::{self, X_REQUEST_ID};
use crate::server::{Phase, Shared, wait_for_phase};

/// Answers the client with the upstream's 101 and spawns the tunnel between the two.
pub(crate) fn tunnel(
    shared: &Arc<Shared>,
    mut resp: Response<Incoming>,
    client: OnUpgrade,
    guard: RequestGuard,
    request_id: &HeaderValue,
) -> Response<ProxyBody> {
    let upstream = hyper::upgrade::on(&mut resp);
    let (mut parts, _empty) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, true);
    parts.headers.insert(X_REQUEST_ID, request_id.clone());

    let token = shared.live.enter();
    let mut phase = shared.phase.subscribe();
    tokio::spawn(async move {
        let _guard = guard;
        let _token = token;
        let splice = async {
            let (client, upstream) = tokio::try_join!(client, upstream)?;
            let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
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
    Response::from_parts(parts, ProxyBody::empty())
}
