//! Readiness under load: `BackoffLayer` next to tower's `ConcurrencyLimit` (limit 1)
//! and `Buffer` (one slot), each inside and outside the layer, with clones of the
//! service called from many tasks while the host is in backoff.
//!
//! Run it with `cargo run --example readiness`. For each stack it prints how many calls
//! were short-circuited, and whether a call to a healthy host still gets through
//! afterwards while every clone is still alive: a concurrency permit or buffer slot
//! reserved by `poll_ready` and never given back would block it.

use std::convert::Infallible;
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
use tokio::sync::Semaphore;
use tower::buffer::BufferLayer;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use url_backoff_registry::{BackoffError, BackoffLayer, BackoffRegistry, Rule};

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// How hard the example pushes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Tasks calling at once, each with its own clone of the service.
    pub(crate) tasks: usize,
    /// Calls each task makes.
    pub(crate) calls: usize,
}

/// What one stack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StackReport {
    pub(crate) name: &'static str,
    /// Calls refused by the layer.
    pub(crate) short_circuited: usize,
    /// Calls that reached the server or failed in another way (expected: none).
    pub(crate) other: usize,
    /// Tasks that panicked (expected: none).
    pub(crate) panicked: usize,
    /// Tasks still waiting for readiness after ten seconds, when they are given up
    /// (expected: none; a kept reservation starves the other clones).
    pub(crate) stalled: usize,
    /// Free permits of the concurrency limit afterwards, for the limit stacks.
    pub(crate) free_permits: Option<usize>,
    /// Whether a call to a healthy host succeeded afterwards, within a second.
    pub(crate) healthy_call_ok: bool,
}

#[tokio::main]
async fn main() {
    let summary = run(Load {
        tasks: 32,
        calls: 500,
    })
    .await;
    for stack in &summary.stacks {
        println!(
            "{:<14} short-circuited={} other={} panicked={} stalled={} free_permits={} \
             healthy_call_ok={}",
            stack.name,
            stack.short_circuited,
            stack.other,
            stack.panicked,
            stack.stalled,
            stack.free_permits.map_or("-".to_owned(), |n| n.to_string()),
            stack.healthy_call_ok,
        );
    }
    println!(
        "the failing server saw {} request(s)",
        summary.failing_server_hits
    );
}

/// What the whole run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) stacks: Vec<StackReport>,
    /// Requests that reached the failing server: only the one that tripped it.
    pub(crate) failing_server_hits: usize,
}

/// Runs the four stacks one after another against two local servers.
pub(crate) async fn run(load: Load) -> Summary {
    let (failing, failing_hits) = start_server(StatusCode::SERVICE_UNAVAILABLE).await;
    let (healthy, _) = start_server(StatusCode::OK).await;
    let registry = BackoffRegistry::new();
    registry
        .set_rule(&failing.to_string(), Rule::default().threshold(1))
        .expect("a valid rule");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let layer = BackoffLayer::new(registry.clone());
    let target = Target {
        failing: format!("http://{failing}/"),
        healthy: format!("http://{healthy}/"),
    };

    // One real failure puts the failing server into backoff for two minutes.
    let mut first = ServiceBuilder::new()
        .layer(layer.clone())
        .service(client.clone());
    let ready = first.ready().await.expect("the client is ready");
    let response = ready
        .call(get(&target.failing))
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(registry.should_backoff(&failing.to_string()));

    let mut reports = Vec::new();

    let permits = Arc::new(Semaphore::new(1));
    let stack = ServiceBuilder::new()
        .layer(layer.clone())
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(permits.clone()))
        .service(client.clone());
    reports.push(storm("limit inside", stack, &target, load, Some(&permits)).await);

    let permits = Arc::new(Semaphore::new(1));
    let stack = ServiceBuilder::new()
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(permits.clone()))
        .layer(layer.clone())
        .service(client.clone());
    reports.push(storm("limit outside", stack, &target, load, Some(&permits)).await);

    let stack = ServiceBuilder::new()
        .layer(layer.clone())
        .layer(BufferLayer::new(1))
        .service(client.clone());
    reports.push(storm("buffer inside", stack, &target, load, None).await);

    let stack = ServiceBuilder::new()
        .layer(BufferLayer::new(1))
        .layer(layer.clone())
        .service(client.clone());
    reports.push(storm("buffer outside", stack, &target, load, None).await);

    Summary {
        stacks: reports,
        failing_server_hits: failing_hits.load(Ordering::SeqCst),
    }
}

/// The URIs of the two servers.
struct Target {
    failing: String,
    healthy: String,
}

/// Calls the failing host from `load.tasks` clones of `service` at once, keeps every
/// clone alive, then checks the limit's permits and calls the healthy host.
async fn storm<S>(
    name: &'static str,
    service: S,
    target: &Target,
    load: Load,
    permits: Option<&Arc<Semaphore>>,
) -> StackReport
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = BoxError>,
    S: Clone + Send + 'static,
    S::Future: Send,
{
    let mut tasks = Vec::new();
    for _ in 0..load.tasks {
        let clone = service.clone();
        let uri = target.failing.clone();
        tasks.push(tokio::spawn(call_repeatedly(clone, uri, load.calls)));
    }

    let mut report = StackReport {
        name,
        short_circuited: 0,
        other: 0,
        panicked: 0,
        stalled: 0,
        free_permits: None,
        healthy_call_ok: false,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut clones = Vec::new();
    for mut task in tasks {
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok((short_circuited, other, clone))) => {
                report.short_circuited += short_circuited;
                report.other += other;
                clones.push(clone);
            }
            Ok(Err(_)) => report.panicked += 1,
            Err(_) => {
                task.abort();
                report.stalled += 1;
            }
        }
    }

    // Every clone is still alive here: a reservation one of them kept would show now.
    report.free_permits = permits.map(|permits| permits.available_permits());
    let mut probe = service.clone();
    let healthy = async { probe.ready().await?.call(get(&target.healthy)).await };
    let outcome = tokio::time::timeout(Duration::from_secs(1), healthy).await;
    report.healthy_call_ok = matches!(outcome, Ok(Ok(response)) if response.status() == 200);
    drop(clones);
    report
}

/// Makes `calls` calls to `uri`; returns the refusals, the other outcomes, and the
/// clone itself so that the caller decides when it is dropped.
async fn call_repeatedly<S>(mut service: S, uri: String, calls: usize) -> (usize, usize, S)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = BoxError>,
{
    let (mut short_circuited, mut other) = (0, 0);
    for _ in 0..calls {
        let result = match service.ready().await {
            Ok(ready) => ready.call(get(&uri)).await,
            Err(error) => Err(error),
        };
        match result {
            Err(error) if BackoffError::is_backoff(&error) => short_circuited += 1,
            _ => other += 1,
        }
        tokio::task::yield_now().await;
    }
    (short_circuited, other, service)
}

fn get(uri: &str) -> Request<Empty<Bytes>> {
    Request::get(uri)
        .body(Empty::new())
        .expect("a valid request")
}

/// Starts a server on `127.0.0.1:0` that answers every request with `status`.
async fn start_server(status: StatusCode) -> (SocketAddr, Arc<AtomicUsize>) {
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
                let mut response = Response::new(Full::new(Bytes::from_static(b"")));
                *response.status_mut() = status;
                async move { Ok::<_, Infallible>(response) }
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
