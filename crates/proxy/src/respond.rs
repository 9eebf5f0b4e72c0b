//! Answers the proxy gives itself: JSON errors carrying the request id, and maintenance pages.

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::body::ProxyBody;
use crate::guard::RequestGuard;
use crate::headers::X_REQUEST_ID;

/// Why the proxy answered instead of an upstream.
#[derive(Debug)]
pub(crate) enum Reject {
    NoRoute,
    Maintenance(Bytes),
    PausedTooLong,
    NoTarget,
    /// The chosen revision has no ready replica yet; the plain-text body names it.
    NotReady(Bytes),
    NoHealthyUpstream,
    ConnectFailed,
    UpstreamFailed,
    UpstreamTimeout,
    BadPath,
    /// The client's body was malformed (a bad chunk) or cut short.
    BadBody,
    /// Over `ProxyConfig::max_body_bytes`.
    BodyTooLarge,
    /// A transfer coding other than `chunked`.
    UnsupportedCoding,
}

impl Reject {
    fn status(&self) -> StatusCode {
        match self {
            Reject::NoRoute => StatusCode::NOT_FOUND,
            Reject::BadPath | Reject::BadBody => StatusCode::BAD_REQUEST,
            Reject::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
            Reject::Maintenance(_)
            | Reject::PausedTooLong
            | Reject::NoTarget
            | Reject::NotReady(_)
            | Reject::NoHealthyUpstream => StatusCode::SERVICE_UNAVAILABLE,
            Reject::ConnectFailed | Reject::UpstreamFailed => StatusCode::BAD_GATEWAY,
            Reject::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Reject::NoRoute => "no route for this host and path",
            Reject::BadPath => "request path cannot be forwarded",
            Reject::BadBody => "malformed request body",
            Reject::BodyTooLarge => "request body too large",
            Reject::UnsupportedCoding => "unsupported transfer coding",
            Reject::Maintenance(_) => "service in maintenance",
            Reject::PausedTooLong => "route paused; timed out waiting for it to resume",
            Reject::NoTarget => "no revision takes traffic on this route",
            Reject::NotReady(_) => "no ready replica yet",
            Reject::NoHealthyUpstream => "no healthy upstream (circuit breakers open)",
            Reject::ConnectFailed => "could not connect to upstream",
            Reject::UpstreamFailed => "upstream connection failed",
            Reject::UpstreamTimeout => "upstream did not answer in time",
        }
    }

    /// The response for the client; `guard` (if any) is released with the body.
    pub(crate) fn into_response(
        self,
        request_id: &HeaderValue,
        guard: Option<RequestGuard>,
    ) -> Response<ProxyBody> {
        let status = self.status();
        // Replicas that are starting are usually ready within a second or two.
        let retry_after = match self {
            Reject::NotReady(_) => "1",
            _ => "5",
        };
        let (content_type, body) = match self {
            Reject::Maintenance(page) => (maintenance_type(&page), page),
            Reject::NotReady(text) => (HeaderValue::from_static("text/plain; charset=utf-8"), text),
            other => {
                let json = serde_json::json!({
                    "error": other.message(),
                    "request_id": request_id.to_str().unwrap_or_default(),
                });
                (
                    HeaderValue::from_static("application/json"),
                    Bytes::from(json.to_string()),
                )
            }
        };
        let mut resp = Response::new(ProxyBody::full(body, guard));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(X_REQUEST_ID, request_id.clone());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
        }
        resp
    }
}

/// A page that looks like HTML is served as HTML, anything else as plain text.
fn maintenance_type(page: &[u8]) -> HeaderValue {
    if page.trim_ascii_start().starts_with(b"<") {
        HeaderValue::from_static("text/html; charset=utf-8")
    } else {
        HeaderValue::from_static("text/plain; charset=utf-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(resp: Response<ProxyBody>) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn errors_are_json_with_the_request_id() {
        let id = HeaderValue::from_static("req-1");
        let resp = Reject::UpstreamTimeout.into_response(&id, None);
        assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(resp.headers()["x-request-id"], "req-1");
        let v: serde_json::Value = serde_json::from_str(&body_of(resp).await).unwrap();
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["error"], "upstream did not answer in time");
    }

    #[tokio::test]
    async fn not_ready_is_plain_text_and_retries_soon() {
        let id = HeaderValue::from_static("r");
        let body = Bytes::from_static(b"no ready replica of api (revision v1) yet\n");
        let resp = Reject::NotReady(body).into_response(&id, None);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(resp.headers()["x-request-id"], "r");
        assert_eq!(
            body_of(resp).await,
            "no ready replica of api (revision v1) yet\n"
        );
        let resp = Reject::NoHealthyUpstream.into_response(&id, None);
        assert_eq!(resp.headers()["retry-after"], "5");
    }

    #[tokio::test]
    async fn maintenance_serves_the_page() {
        let id = HeaderValue::from_static("r");
        let resp = Reject::Maintenance(Bytes::from_static(b" <h1>back soon</h1>"))
            .into_response(&id, None);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(body_of(resp).await, " <h1>back soon</h1>");
        let resp = Reject::Maintenance(Bytes::from_static(b"later")).into_response(&id, None);
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    }
}
