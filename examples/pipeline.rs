//! `BackoffLayer` in a `ServiceBuilder` pipeline with tower's `Timeout` and `Retry`,
//! against a real server on loopback, showing how the order of the layers changes
//! what counts.
//!
//! Run it with `cargo run --example pipeline`. Three scenarios, each with a fresh
//! registry (three failures trip a host):
//!
//! 1. `retry > backoff > timeout` calling an endpoint that never answers: each timeout
//!    happens *inside* the backoff layer, so it is a failure; the third one trips the
//!    host, and the retry policy stops at the refusal instead of retrying it.
//! 2. `timeout > backoff` calling the same endpoint: the timeout *outside* the backoff
//!    layer drops the call, which counts as nothing, so the host never trips.
//! 3. `retry > backoff > timeout` calling an endpoint that answers 503: the retries
//!    trip the host, and again the refusal is not retried.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::retry::{Policy, RetryLayer};
use tower::timeout::error::Elapsed;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{BackoffError, BackoffLayer, BackoffRegistry};

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// How long a call may take before the timeout layer gives up on it.
const TIMEOUT: Duration = Duration::from_millis(500);

/// How many times the retry policy retries one request at most.
const MAX_RETRIES: usize = 5;

/// What one scenario did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    /// How each call made by the caller ended.
    pub(crate) results: Vec<&'static str>,
    /// Attempts the retry policy saw, refusals included (0 without a retry layer).
    pub(crate) attempts: usize,
    /// Requests that reached the server.
    pub(crate) server_hits: usize,
    /// Failures the registry counted for the server.
    pub(crate) failures: usize,
    /// Whether the server's key ended in backoff.
    pub(crate) in_backoff: bool,
}

#[tokio::main]
async fn main() {
    for scenario in run().await {
        println!("{scenario:?}");
    }
}

/// Runs the three scenarios, each against its own server and registry.
pub(crate) async fn run() -> Vec<Scenario> {
    vec![
        timeout_inside().await,
        timeout_outside().await,
        retries_stop_at_the_refusal().await,
    ]
}

/// `retry > backoff > timeout > client`, calling an endpoint that never answers.
async fn timeout_inside() -> Scenario {
    let (server, hits) = start_server(Behaviour::NeverAnswer).await;
    let registry = registry();
    let attempts = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryFailures::new(&attempts)))
        .layer(BackoffLayer::new(registry.clone()))
        .layer(TimeoutLayer::new(TIMEOUT))
        .service(client());

    let result = call(service, server).await;
    finish(
        "timeout inside",
        vec![result],
        &attempts,
        &hits,
        &registry,
        server,
    )
}

/// `timeout > backoff > client`, calling an endpoint that never answers.
async fn timeout_outside() -> Scenario {
    let (server, hits) = start_server(Behaviour::NeverAnswer).await;
    let registry = registry();
    let service = ServiceBuilder::new()
        .layer(TimeoutLayer::new(TIMEOUT))
        .layer(BackoffLayer::new(registry.clone()))
        .service(client());

    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(call(service.clone(), server).await);
    }
    let attempts = AtomicUsize::new(0).into();
    finish(
        "timeout outside",
        results,
        &attempts,
        &hits,
        &registry,
        server,
    )
}

/// `retry > backoff > timeout > client`, calling an endpoint that answers 503.
async fn retries_stop_at_the_refusal() -> Scenario {
    let (server, hits) = start_server(Behaviour::Unavailable).await;
    let registry = registry();
    let attempts = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(RetryFailures::new(&attempts)))
        .layer(BackoffLayer::new(registry.clone()))
        .layer(TimeoutLayer::new(TIMEOUT))
        .service(client());

    let result = call(service, server).await;
    finish(
        "503 with retries",
        vec![result],
        &attempts,
        &hits,
        &registry,
        server,
    )
}

/// A retry policy that retries errors and 5xx responses, but never a refusal of the
/// backoff layer: the host is in backoff, so an immediate retry would only be refused
/// again. The refusal goes back to the caller instead.
#[derive(Clone)]
pub(crate) struct RetryFailures {
    retries_left: usize,
    attempts: Arc<AtomicUsize>,
}

impl RetryFailures {
    fn new(attempts: &Arc<AtomicUsize>) -> Self {
        Self {
            retries_left: MAX_RETRIES,
            attempts: Arc::clone(attempts),
        }
    }
}

impl<B> Policy<Request<Empty<Bytes>>, Response<B>, BoxError> for RetryFailures {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<Empty<Bytes>>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let worth_retrying = match result {
            Ok(response) => response.status().is_server_error(),
            Err(error) => !BackoffError::is_backoff(error),
        };
        if !worth_retrying || self.retries_left == 0 {
            return None;
        }
        self.retries_left -= 1;
        Some(ready(()))
    }

    fn clone_request(&mut self, request: &Request<Empty<Bytes>>) -> Option<Request<Empty<Bytes>>> {
        let mut clone = Request::new(Empty::new());
        *clone.method_mut() = request.method().clone();
        *clone.uri_mut() = request.uri().clone();
        *clone.version_mut() = request.version();
        *clone.headers_mut() = request.headers().clone();
        Some(clone)
    }
}

/// Makes one call and names how it ended.
async fn call<S>(service: S, server: SocketAddr) -> &'static str
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = BoxError>,
{
    let request = Request::get(format!("http://{server}/"))
        .body(Empty::new())
        .expect("a valid request");
    match service.oneshot(request).await {
        Ok(response) if response.status().is_success() => "ok",
        Ok(_) => "error status",
        Err(error) if BackoffError::is_backoff(&error) => "refused by backoff",
        Err(error) if error.is::<Elapsed>() => "timed out",
        Err(_) => "other error",
    }
}

fn finish(
    name: &'static str,
    results: Vec<&'static str>,
    attempts: &Arc<AtomicUsize>,
    hits: &Arc<AtomicUsize>,
    registry: &BackoffRegistry,
    server: SocketAddr,
) -> Scenario {
    let stats = registry.stats(&server.to_string());
    Scenario {
        name,
        results,
        attempts: attempts.load(Ordering::SeqCst),
        server_hits: hits.load(Ordering::SeqCst),
        failures: stats.failures_in_window,
        in_backoff: stats.in_backoff,
    }
}

fn registry() -> BackoffRegistry {
    BackoffRegistry::builder()
        .threshold(3)
        .backoff(Duration::from_secs(60))
        .build()
        .expect("valid settings")
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug, Clone, Copy)]
enum Behaviour {
    NeverAnswer,
    Unavailable,
}

/// Starts a server on `127.0.0.1:0` that behaves as told, counting requests.
async fn start_server(behaviour: Behaviour) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener has an address");
    let hits = Arc::new(AtomicUsize::new(0));

    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            let service = service_fn(move |_request| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if let Behaviour::NeverAnswer = behaviour {
                        std::future::pending::<()>().await;
                    }
                    let mut response = Response::new(Full::new(Bytes::from_static(b"")));
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    (addr, hits)
}
