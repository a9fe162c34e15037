//! An outbound proxy built with axum: it forwards `/{upstream}/{path}` to one of two
//! real upstream servers through a hyper-util client wrapped in `BackoffLayer`. While
//! an upstream is in backoff, the proxy answers at once with 503 and a `Retry-After`
//! header holding the seconds left (`BackoffError::to_response`), without touching the
//! upstream.
//!
//! Run it with `cargo run --example axum_proxy`. The `flaky` upstream answers its first
//! request with 503 and `Retry-After: 2`; the `steady` one always answers 200. The
//! example sends a few requests through the proxy and prints what came back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http::header::{HOST, RETRY_AFTER};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use url_backoff_registry::{BackoffError, BackoffLayer, BackoffRegistry, BackoffService};

/// The proxy's outbound client: hyper-util behind the backoff layer.
type Outbound = BackoffService<Client<HttpConnector, Body>>;

#[derive(Clone)]
struct Proxy {
    client: Outbound,
    upstreams: Arc<HashMap<String, SocketAddr>>,
}

/// What one request through the proxy got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    pub(crate) path: &'static str,
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
    /// Requests the flaky upstream had seen once this one was answered.
    pub(crate) flaky_hits: usize,
}

#[tokio::main]
async fn main() {
    for exchange in run().await {
        println!("{exchange:?}");
    }
}

/// Starts the upstreams and the proxy, then sends requests through the proxy: two to
/// `flaky` (the second is refused), one to `steady`, one to `flaky` a second later
/// (still refused), and one after the server's two seconds (forwarded). Time comes from
/// tokio, so a test can run it with tokio's clock paused.
pub(crate) async fn run() -> Vec<Exchange> {
    let flaky_hits = Arc::new(AtomicUsize::new(0));
    let flaky = start_upstream(flaky_upstream(Arc::clone(&flaky_hits))).await;
    let steady = start_upstream(Router::new().fallback(|| async { "steady ok" })).await;
    let upstreams = HashMap::from([("flaky".to_owned(), flaky), ("steady".to_owned(), steady)]);

    let client = ServiceBuilder::new()
        .layer(BackoffLayer::new(BackoffRegistry::new()))
        .service(Client::builder(TokioExecutor::new()).build_http());
    let proxy = Proxy {
        client,
        upstreams: Arc::new(upstreams),
    };
    let app = Router::new()
        .route("/{upstream}/{*path}", any(forward))
        .with_state(proxy);
    let proxy_addr = start_upstream(app).await;

    let caller = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut exchanges = Vec::new();
    for (wait, path) in [
        (0, "/flaky/items"),
        (0, "/flaky/items"),
        (0, "/steady/items"),
        (1, "/flaky/items"),
        (1, "/flaky/items"),
    ] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let uri = format!("http://{proxy_addr}{path}");
        let response = caller
            .request(
                Request::get(uri)
                    .body(Empty::new())
                    .expect("a valid request"),
            )
            .await
            .expect("the proxy answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        exchanges.push(Exchange {
            path,
            status,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
            flaky_hits: flaky_hits.load(Ordering::SeqCst),
        });
    }
    exchanges
}

/// Forwards the request to the named upstream; turns a refusal into the layer's 503.
async fn forward(
    State(proxy): State<Proxy>,
    Path((upstream, path)): Path<(String, String)>,
    mut request: Request<Body>,
) -> Response {
    let Some(addr) = proxy.upstreams.get(&upstream) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let Ok(uri) = format!("http://{addr}/{path}{query}").parse::<Uri>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    *request.uri_mut() = uri;
    // The client sets `Host` from the new URI.
    request.headers_mut().remove(HOST);

    match proxy.client.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(error) => match BackoffError::find(&*error) {
            Some(backoff) => backoff.to_response(),
            None => StatusCode::BAD_GATEWAY.into_response(),
        },
    }
}

/// An upstream that answers its first request with 503 and `Retry-After: 2`, and 200
/// afterwards.
fn flaky_upstream(hits: Arc<AtomicUsize>) -> Router {
    Router::new().fallback(move || {
        let hits = Arc::clone(&hits);
        async move {
            if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                let headers = [(RETRY_AFTER, "2")];
                (StatusCode::SERVICE_UNAVAILABLE, headers, "flaky busy").into_response()
            } else {
                "flaky ok".into_response()
            }
        }
    })
}

/// Serves `app` on `127.0.0.1:0` and returns its address.
async fn start_upstream(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener has an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
